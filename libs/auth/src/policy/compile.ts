import type { AccessPolicyConfig, Config, ConfigIssue, PolicyDefault } from '@angos/config';
import { formatKeyPath, type KeyPath, quoted } from '@angos/config';
import { policyEnvironment } from './environment.js';

/** A rule ready to run: its evaluator and where the configuration defines it, for logs. */
export interface CompiledRule {
  /** `repository."team".access_policy.rules[2]` */
  readonly locator: string;
  readonly source: string;
  readonly evaluate: (activation: Record<string, unknown>) => unknown;
}

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

/** The first line of a cel-js error: its message without the source excerpt under it. */
function summary(error: Error & { summary?: string }): string {
  return error.summary ?? error.message.split('\n')[0] ?? error.message;
}

function compileRule(source: string, path: KeyPath, issues: ConfigIssue[]): CompiledRule | undefined {
  const env = policyEnvironment();
  const locator = formatKeyPath(path);
  const checked = env.check(source);
  if (!checked.valid) {
    const error = checked.error as (Error & { summary?: string }) | undefined;
    issues.push({ path: locator, message: `invalid CEL rule: ${error ? summary(error) : 'unknown error'}` });
    return undefined;
  }
  // `dyn` (a claim, say) is accepted here and must turn out boolean when the rule runs.
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    issues.push({ path: locator, message: `CEL rule must evaluate to bool, not ${checked.type}` });
    return undefined;
  }
  const evaluate = env.parse(source);
  return { locator, source, evaluate: (activation) => evaluate(activation) };
}

function compilePolicy(policy: AccessPolicyConfig, path: KeyPath, issues: ConfigIssue[]): CompiledPolicy {
  const rules: CompiledRule[] = [];
  policy.rules.forEach((source, index) => {
    const rule = compileRule(source, [...path, 'rules', index], issues);
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
