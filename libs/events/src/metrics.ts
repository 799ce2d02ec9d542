import type { Metrics } from '@angos/observability';

/** Seconds; a webhook answers in milliseconds, and `timeout_ms` defaults to 5 s. */
const DELIVERY_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** The event webhook metrics of the metrics reference, with its names and labels. */
function deliveryMetrics(metrics: Metrics) {
  return {
    deliveries: metrics.counter({
      name: 'event_webhook_deliveries_total',
      help: 'Event webhook delivery attempts, by webhook, event type and result (success, error)',
      labelNames: ['webhook', 'event', 'result'],
    }),
    duration: metrics.histogram({
      name: 'event_webhook_delivery_duration_seconds',
      help: 'Event webhook delivery attempt duration, by webhook and event type',
      labelNames: ['webhook', 'event'],
      buckets: DELIVERY_DURATION_BUCKETS,
    }),
  };
}

/**
 * Registers both metrics, so `/metrics` lists them (with no samples) before the first delivery:
 * every process that can deliver calls it when it wires the dispatcher or the job handler.
 */
export function registerDeliveryMetrics(metrics: Metrics): void {
  deliveryMetrics(metrics);
}

/** One delivery attempt: counted by result, and timed. */
export function recordDeliveryAttempt(
  metrics: Metrics,
  attempt: { webhook: string; event: string; result: 'success' | 'error'; seconds: number },
): void {
  const m = deliveryMetrics(metrics);
  m.duration.observe({ webhook: attempt.webhook, event: attempt.event }, attempt.seconds);
  m.deliveries.inc({ webhook: attempt.webhook, event: attempt.event, result: attempt.result });
}
