import type { Identity } from '../identity.js';
import type { AccessRequest } from '../request.js';
import { type RuleFailureLog, runCelRule } from './cel.js';
import type { CompiledPolicy } from './compile.js';
import { activation } from './environment.js';

export { RULE_FAILURE_WARN_INTERVAL_MS, RuleFailureLog } from './cel.js';

export type PolicyDecision = 'allow' | 'deny';

/** What a rule that failed at run time did to the request. */
export type FailedRuleOutcome = 'skipped' | 'denied';

const FAILED_RULE_MESSAGES: Readonly<Record<FailedRuleOutcome, string>> = {
  skipped: 'access policy rule failed, skipped',
  denied: 'access policy rule failed, request denied',
};

/**
 * Evaluates one access policy. Its rules run in order; the first that is true decides the
 * opposite of `default` (under `default = "deny"` rules grant, under `default = "allow"` they
 * refuse); when none is true, `default` decides.
 *
 * A rule that fails at run time (a field read without `has()`, a claim of the wrong type) or
 * yields a non-boolean never grants more than it would have had it evaluated, and is logged:
 * under `default = "deny"` it grants nothing (it is skipped); under `default = "allow"`, where
 * rules refuse, it refuses. `request.action == 'delete-manifest' && identity.username != 'admin'`
 * fails for a caller without a username and so refuses the delete; written with
 * `has(identity.username)` it says what it means for every caller.
 */
export function evaluatePolicy(
  policy: CompiledPolicy,
  identity: Identity,
  request: AccessRequest,
  failures: RuleFailureLog,
): PolicyDecision {
  if (policy.rules.length === 0) return policy.default;
  const variables = activation(identity, request);
  for (const rule of policy.rules) {
    const run = runCelRule(rule, variables);
    if ('failure' in run) {
      // Fail closed: a refusing rule that cannot be evaluated refuses.
      const outcome: FailedRuleOutcome = policy.default === 'allow' ? 'denied' : 'skipped';
      failures.report(rule.locator, FAILED_RULE_MESSAGES[outcome], {
        rule: rule.locator,
        action: request.action,
        reason: run.failure,
      });
      if (outcome === 'denied') return 'deny';
      continue;
    }
    if (run.result) return policy.default === 'deny' ? 'allow' : 'deny';
  }
  return policy.default;
}
