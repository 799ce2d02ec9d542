import { createRequire } from 'node:module';
import type { ConfigIssue, KeyPath } from '@angos/config';
import { formatKeyPath } from '@angos/config';
import type { Logger } from '@angos/observability';
import type * as Cel from '@marcbachmann/cel-js';

/**
 * What every CEL rule of the configuration shares, whatever it decides (access policies here,
 * retention policies in @angos/scrub): loading cel-js, compiling and type-checking a rule with its
 * key path, and rate-limiting the warnings of rules that fail at run time.
 */

export type CelEnvironment = Cel.Environment;

const require = createRequire(import.meta.url);

/**
 * A new, empty cel-js environment. cel-js costs ~6 MiB of RSS, so it is loaded by the first rule
 * compiled, not with this module: a configuration without rules never loads it. Loaded with
 * require (an ES module, which Node ≥ 20.19 loads synchronously) because rules are compiled by
 * the configuration checks, which the CLI runs synchronously at startup and on reload.
 */
export function newCelEnvironment(): CelEnvironment {
  const { Environment } = require('@marcbachmann/cel-js') as typeof Cel;
  return new Environment();
}

/** A rule ready to run: its evaluator and where the configuration defines it, for logs. */
export interface CompiledRule {
  /** `repository."team".access_policy.rules[2]` */
  readonly locator: string;
  readonly source: string;
  readonly evaluate: (activation: Record<string, unknown>) => unknown;
}

/** The first line of a cel-js error: its message without the source excerpt under it. */
export function celErrorSummary(error: Error & { summary?: string }): string {
  return error.summary ?? error.message.split('\n')[0] ?? error.message;
}

/**
 * Compiles and type-checks one rule against `env`. A rule that does not parse, reads an unknown
 * field, or is not boolean adds an issue at `path` (`global.retention_policy.rules[2]`) and
 * yields undefined. `dyn` (a claim, say) is accepted and must turn out boolean when the rule runs.
 * `hint`, when given, may add advice to a type-check message (a common mistake and its fix).
 */
export function compileCelRule(
  env: CelEnvironment,
  source: string,
  path: KeyPath,
  issues: ConfigIssue[],
  hint: (message: string) => string | undefined = () => undefined,
): CompiledRule | undefined {
  const locator = formatKeyPath(path);
  const checked = env.check(source);
  if (!checked.valid) {
    const error = checked.error as (Error & { summary?: string }) | undefined;
    const message = error ? celErrorSummary(error) : 'unknown error';
    const advice = hint(message);
    issues.push({
      path: locator,
      message: `invalid CEL rule: ${message}${advice === undefined ? '' : ` (${advice})`}`,
    });
    return undefined;
  }
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    issues.push({ path: locator, message: `CEL rule must evaluate to bool, not ${checked.type}` });
    return undefined;
  }
  const evaluate = env.parse(source);
  return { locator, source, evaluate: (activation) => evaluate(activation) };
}

/**
 * Runs a compiled rule. Returns its boolean, or the reason it failed: an evaluation error (a
 * field read without `has()`, a division by zero) or a result that is not a boolean.
 */
export function runCelRule(
  rule: CompiledRule,
  activation: Record<string, unknown>,
): { readonly result: boolean } | { readonly failure: string } {
  try {
    const result = rule.evaluate(activation);
    return typeof result === 'boolean' ? { result } : { failure: 'did not evaluate to a boolean' };
  } catch (error) {
    return { failure: (error as Error).message.split('\n')[0] ?? 'evaluation error' };
  }
}

/** A failing rule usually fails for every request (or image) of a kind; warn about each rule this often. */
export const RULE_FAILURE_WARN_INTERVAL_MS = 60_000;

/**
 * Logs rules that failed at run time: a warning per rule at most once per interval (with how many
 * failures it stands for), every occurrence at debug level, so a rule that reads a field some
 * requests or images lack does not flood the log.
 */
export class RuleFailureLog {
  private readonly lastWarned = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** `fields` should name the rule (`rule: locator`) and the reason; `message` says what the failure decided. */
  report(locator: string, message: string, fields: Record<string, unknown>): void {
    const previous = this.lastWarned.get(locator);
    const now = this.now();
    if (previous !== undefined && now - previous.at < RULE_FAILURE_WARN_INTERVAL_MS) {
      previous.suppressed += 1;
      this.logger.debug(message, fields);
      return;
    }
    this.lastWarned.set(locator, { at: now, suppressed: 0 });
    this.logger.warn(message, {
      ...fields,
      ...(previous === undefined ? {} : { failures_since_last_warning: previous.suppressed }),
    });
  }
}
