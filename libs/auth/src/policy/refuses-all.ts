import type { Config } from '@angos/config';

/** Where the option that decides it lives, for the warning. */
export const GLOBAL_ACCESS_POLICY_KEY = 'global.access_policy';

/**
 * Why the global access policy refuses every request, or undefined when some request could pass.
 * Every request must pass the global policy (authorize.ts), so this holds whatever the repository
 * policies and webhooks say. Only what is certain without running a rule is reported: no rules
 * under `default = "deny"` (also what a configuration without the section gets), rules that are
 * all the literal `false` under it, or a literal `true` rule under `default = "allow"`.
 */
export function refusesEveryRequest(config: Config): string | undefined {
  const { default: fallback, rules } = config.global.access_policy;
  const literal = rules.map((rule) => rule.trim());
  if (fallback === 'deny' && literal.every((rule) => rule === 'false')) {
    return rules.length === 0
      ? 'default = "deny" and no rules: add rules that allow requests, or set default = "allow"'
      : 'default = "deny" and no rule can be true: add rules that allow requests, or set default = "allow"';
  }
  if (fallback === 'allow' && literal.includes('true')) {
    return 'default = "allow" with a rule that is always true, which refuses every request';
  }
  return undefined;
}
