import type { Logger } from '@angos/observability';
import type { Identity } from '../identity.js';
import type { AccessRequest } from '../request.js';
import type { CompiledPolicy, CompiledRule } from './compile.js';
import { activation } from './environment.js';

export type PolicyDecision = 'allow' | 'deny';

/** A failing rule usually fails for every request of a kind; warn about each rule this often. */
export const RULE_FAILURE_WARN_INTERVAL_MS = 60_000;

/**
 * Logs rules that failed at run time: a warning per rule at most once per interval (with how many
 * failures it stands for), every occurrence at debug level, so a rule that reads a field
 * anonymous requests lack does not flood the log. `outcome` says what the failure decided.
 */
export class RuleFailureLog {
  private readonly lastWarned = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  report(rule: CompiledRule, request: AccessRequest, reason: string, outcome: FailedRuleOutcome): void {
    const message = FAILED_RULE_MESSAGES[outcome];
    const fields = { rule: rule.locator, action: request.action, reason };
    const previous = this.lastWarned.get(rule.locator);
    const now = this.now();
    if (previous !== undefined && now - previous.at < RULE_FAILURE_WARN_INTERVAL_MS) {
      previous.suppressed += 1;
      this.logger.debug(message, fields);
      return;
    }
    this.lastWarned.set(rule.locator, { at: now, suppressed: 0 });
    this.logger.warn(message, {
      ...fields,
      ...(previous === undefined ? {} : { failures_since_last_warning: previous.suppressed }),
    });
  }
}

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
    let result: unknown;
    let failure: string | undefined;
    try {
      result = rule.evaluate(variables);
      if (typeof result !== 'boolean') failure = 'did not evaluate to a boolean';
    } catch (error) {
      failure = (error as Error).message.split('\n')[0] ?? 'evaluation error';
    }
    if (failure !== undefined) {
      // Fail closed: a refusing rule that cannot be evaluated refuses.
      const outcome: FailedRuleOutcome = policy.default === 'allow' ? 'denied' : 'skipped';
      failures.report(rule, request, failure, outcome);
      if (outcome === 'denied') return 'deny';
      continue;
    }
    if (result) return policy.default === 'deny' ? 'allow' : 'deny';
  }
  return policy.default;
}
