import type { Logger } from '@angos/observability';
import type { Identity } from '../identity.js';
import type { AccessRequest } from '../request.js';
import type { CompiledPolicy, CompiledRule } from './compile.js';
import { activation } from './environment.js';

export type PolicyDecision = 'allow' | 'deny';

/** A failing rule usually fails for every request of a kind; warn about each rule this often. */
export const RULE_FAILURE_WARN_INTERVAL_MS = 60_000;

/**
 * Logs rules skipped at run time: a warning per rule at most once per interval (with how many
 * failures it stands for), every occurrence at debug level, so a rule that reads a field
 * anonymous requests lack does not flood the log.
 */
export class RuleFailureLog {
  private readonly lastWarned = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  report(rule: CompiledRule, request: AccessRequest, reason: string): void {
    const fields = { rule: rule.locator, action: request.action, reason };
    const previous = this.lastWarned.get(rule.locator);
    const now = this.now();
    if (previous !== undefined && now - previous.at < RULE_FAILURE_WARN_INTERVAL_MS) {
      previous.suppressed += 1;
      this.logger.debug('access policy rule failed, skipped', fields);
      return;
    }
    this.lastWarned.set(rule.locator, { at: now, suppressed: 0 });
    this.logger.warn('access policy rule failed, skipped', {
      ...fields,
      ...(previous === undefined ? {} : { failures_since_last_warning: previous.suppressed }),
    });
  }
}

/**
 * Evaluates one access policy. Its rules run in order; the first that is true decides the
 * opposite of `default` (under `default = "deny"` rules grant, under `default = "allow"` they
 * refuse); when none is true, `default` decides. A rule that fails at run time (a field read
 * without `has()`, a claim of the wrong type) or yields a non-boolean is skipped and logged.
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
    let result: unknown;
    try {
      result = rule.evaluate(variables);
    } catch (error) {
      failures.report(rule, request, (error as Error).message.split('\n')[0] ?? 'evaluation error');
      continue;
    }
    if (typeof result !== 'boolean') {
      failures.report(rule, request, 'did not evaluate to a boolean');
      continue;
    }
    if (result) return policy.default === 'deny' ? 'allow' : 'deny';
  }
  return policy.default;
}
