import type { AccessPolicyConfig, Config, ConfigIssue, PolicyDefault } from '@angos/config';
import { type KeyPath, quoted } from '@angos/config';
import { type CompiledRule, compileCelRule } from './cel.js';
import { policyEnvironment } from './environment.js';

export type { CompiledRule } from './cel.js';

export interface CompiledPolicy {
  readonly default: PolicyDefault;
  readonly rules: readonly CompiledRule[];
}

/** Every access policy of a configuration, compiled. */
export interface CompiledPolicies {
  readonly global: CompiledPolicy;
  /** By repository key; only repositories with an `access_policy` table. */
  readonly repositories: ReadonlyMap<string, CompiledPolicy>;
}

function compilePolicy(policy: AccessPolicyConfig, path: KeyPath, issues: ConfigIssue[]): CompiledPolicy {
  const rules: CompiledRule[] = [];
  policy.rules.forEach((source, index) => {
    const rule = compileCelRule(policyEnvironment(), source, [...path, 'rules', index], issues);
    if (rule !== undefined) rules.push(rule);
  });
  return { default: policy.default, rules };
}

export class PolicyCompileError extends Error {
  override readonly name = 'PolicyCompileError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n'));
  }
}

/**
 * Compiles and type-checks every access policy rule of a configuration. Throws
 * PolicyCompileError listing every rule that does not compile, each with its key path
 * (`repository."x".access_policy.rules[2]`).
 */
export function compilePolicies(config: Config): CompiledPolicies {
  const issues: ConfigIssue[] = [];
  const global = compilePolicy(config.global.access_policy, ['global', 'access_policy'], issues);
  const repositories = new Map<string, CompiledPolicy>();
  for (const [key, repository] of Object.entries(config.repository)) {
    if (repository.access_policy === undefined) continue;
    repositories.set(
      key,
      compilePolicy(repository.access_policy, ['repository', quoted(key), 'access_policy'], issues),
    );
  }
  if (issues.length > 0) throw new PolicyCompileError(issues);
  return { global, repositories };
}
