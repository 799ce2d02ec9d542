import { type CompiledRule, compileCelRule } from '@angos/auth/cel';
import {
  type Config,
  type ConfigIssue,
  type ConfigWarning,
  formatKeyPath,
  type KeyPath,
  quoted,
  repositoryKeyFor,
} from '@angos/config';
import { retentionEnvironment } from './environment.js';

/** The rules of one `retention_policy` table, compiled. */
export interface CompiledRetentionPolicy {
  /** `global.retention_policy`, `repository."team".retention_policy` */
  readonly locator: string;
  readonly rules: readonly CompiledRule[];
}

/** Every retention policy of a configuration, compiled. */
export interface CompiledRetentionPolicies {
  readonly global: CompiledRetentionPolicy;
  /** By repository key; only repositories with a `retention_policy` table. */
  readonly repositories: ReadonlyMap<string, CompiledRetentionPolicy>;
}

export class RetentionCompileError extends Error {
  override readonly name = 'RetentionCompileError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n'));
  }
}

/** Advice for the mistake rules ported from other registries make: `image.tag != null`. */
function hint(message: string): string | undefined {
  return /\bnull\b/.test(message)
    ? 'an untagged image has no image.tag: test it with has(image.tag)'
    : undefined;
}

function compileInto(
  rules: readonly string[],
  path: KeyPath,
  issues: ConfigIssue[],
): CompiledRetentionPolicy {
  const compiled: CompiledRule[] = [];
  rules.forEach((source, index) => {
    const rule = compileCelRule(retentionEnvironment(), source, [...path, 'rules', index], issues, hint);
    if (rule !== undefined) compiled.push(rule);
  });
  return { locator: formatKeyPath(path), rules: compiled };
}

/**
 * Compiles and type-checks the rules of one retention policy, `path` being where the table is
 * (`['global', 'retention_policy']`). Throws RetentionCompileError naming each rule that does not
 * compile (`global.retention_policy.rules[2]: invalid CEL rule: …`).
 */
export function compileRetentionPolicy(rules: readonly string[], path: KeyPath): CompiledRetentionPolicy {
  const issues: ConfigIssue[] = [];
  const policy = compileInto(rules, path, issues);
  if (issues.length > 0) throw new RetentionCompileError(issues);
  return policy;
}

/** Compiles every retention policy of a configuration; RetentionCompileError lists every bad rule. */
export function compileRetentionPolicies(config: Config): CompiledRetentionPolicies {
  const issues: ConfigIssue[] = [];
  const global = compileInto(config.global.retention_policy.rules, ['global', 'retention_policy'], issues);
  const repositories = new Map<string, CompiledRetentionPolicy>();
  for (const [key, repository] of Object.entries(config.repository)) {
    if (repository.retention_policy === undefined) continue;
    repositories.set(
      key,
      compileInto(repository.retention_policy.rules, ['repository', quoted(key), 'retention_policy'], issues),
    );
  }
  if (issues.length > 0) throw new RetentionCompileError(issues);
  return { global, repositories };
}

/**
 * The retention rules of a configuration that do not compile or type-check, each with its key
 * path. Startup fails on any; a reload with any is rejected and the running configuration stays.
 */
export function checkRetentionConfig(config: Config): ConfigIssue[] {
  try {
    compileRetentionPolicies(config);
    return [];
  } catch (error) {
    if (error instanceof RetentionCompileError) return [...error.issues];
    throw error;
  }
}

/** Rule text that reads pull times. */
const READS_PULL_TIMES = /\b(last_pulled_at|top_pulled)\b/;

/**
 * Rules that read pull times while `global.update_pull_time` is off: no pull is ever recorded, so
 * `image.last_pulled_at` stays 0 and `top_pulled` is never true. Allowed (pull times recorded
 * before stay), but worth a warning at startup, from the process that would record them.
 */
export function retentionWarnings(config: Config): ConfigWarning[] {
  if (config.global.update_pull_time) return [];
  const policies: Array<[KeyPath, readonly string[]]> = [
    [['global', 'retention_policy'], config.global.retention_policy.rules],
    ...Object.entries(config.repository).map(([key, repository]): [KeyPath, readonly string[]] => [
      ['repository', quoted(key), 'retention_policy'],
      repository.retention_policy?.rules ?? [],
    ]),
  ];
  return policies.flatMap(([path, rules]) =>
    rules.flatMap((rule, index) =>
      READS_PULL_TIMES.test(rule)
        ? [
            {
              path: formatKeyPath([...path, 'rules', index]),
              message: 'reads pull times, which are not recorded: set global.update_pull_time = true',
            },
          ]
        : [],
    ),
  );
}

/**
 * The policies that decide for a namespace: the global one and, when the namespace belongs to a
 * `[repository."<key>"]` with a `retention_policy`, that one too. A manifest is kept when any rule
 * of any of them keeps it.
 */
export function retentionPoliciesFor(
  policies: CompiledRetentionPolicies,
  config: Config,
  namespace: string,
): CompiledRetentionPolicy[] {
  const key = repositoryKeyFor(config, namespace);
  const repository = key === undefined ? undefined : policies.repositories.get(key);
  return repository === undefined ? [policies.global] : [policies.global, repository];
}
