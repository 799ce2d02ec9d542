import type { Metrics } from '@angos/observability';
import type { AuthMethod } from './identity.js';

/** Outcomes of a webhook authorization, as the `result` label spells them. */
export type WebhookResult = 'allow' | 'deny' | 'cached_allow' | 'cached_deny' | 'error';

/** Seconds; webhook timeouts are typically configured between 100 ms and a few seconds. */
const WEBHOOK_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface AuthMetrics {
  /** `auth_attempts_total{method,result}`: one per method that saw credentials it handles. */
  attempt(method: AuthMethod, result: 'success' | 'failed'): void;
  /** `webhook_authorization_requests_total{webhook,result}`. */
  webhookDecision(webhook: string, result: WebhookResult): void;
  /** `webhook_authorization_duration_seconds{webhook}`: calls that reached the network. */
  webhookDuration(webhook: string, seconds: number): void;
}

export function createAuthMetrics(metrics: Metrics): AuthMetrics {
  const attempts = metrics.counter<'method' | 'result'>({
    name: 'auth_attempts_total',
    help: 'Authentication attempts, by method (mtls, oidc, basic) and result (success, failed)',
    labelNames: ['method', 'result'],
  });
  const decisions = metrics.counter<'webhook' | 'result'>({
    name: 'webhook_authorization_requests_total',
    help: 'Authorization webhook decisions, by webhook and result (allow, deny, cached_allow, cached_deny, error)',
    labelNames: ['webhook', 'result'],
  });
  const durations = metrics.histogram<'webhook'>({
    name: 'webhook_authorization_duration_seconds',
    help: 'Duration of authorization webhook requests, by webhook',
    labelNames: ['webhook'],
    buckets: WEBHOOK_DURATION_BUCKETS,
  });
  return {
    attempt: (method, result) => attempts.inc({ method, result }),
    webhookDecision: (webhook, result) => decisions.inc({ webhook, result }),
    webhookDuration: (webhook, seconds) => durations.observe({ webhook }, seconds),
  };
}
