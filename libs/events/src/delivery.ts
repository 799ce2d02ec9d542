import type { EventKind, EventWebhookConfig } from '@angos/config';
import type { Metrics } from '@angos/observability';
import { context, propagation } from '@opentelemetry/api';
import { recordDeliveryAttempt } from './metrics.js';
import { SIGNATURE_HEADER, signBody } from './signature.js';

/** A delivery attempt that did not get a 2xx answer in time. */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

/** One event's request to one webhook. */
export interface Delivery {
  /** The `[event_webhook.<name>]` name (the `webhook` metric label, logs). */
  readonly name: string;
  readonly webhook: Pick<EventWebhookConfig, 'url' | 'token' | 'timeout_ms'>;
  readonly kind: EventKind;
  /** The encoded event (`encodeEvent`): sent and signed as these exact bytes. */
  readonly body: string;
}

/** The headers of a delivery: the event type, the token and the signature of `body`, the trace context. */
export function deliveryHeaders(delivery: Delivery): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'X-Registry-Event': delivery.kind,
  };
  const token = delivery.webhook.token;
  if (token !== undefined) {
    headers['Authorization'] = `Bearer ${token}`;
    headers[SIGNATURE_HEADER] = signBody(token, delivery.body);
  }
  // W3C traceparent/tracestate of the operation that caused the event; nothing without tracing.
  propagation.inject(context.active(), headers);
  return headers;
}

/**
 * One POST of the event, bounded by `timeout_ms` (and `signal`). Resolves on a 2xx answer; throws
 * a `DeliveryError` otherwise (non-2xx, redirect, network failure, timeout). Every attempt is
 * counted in `event_webhook_deliveries_total` and timed in `event_webhook_delivery_duration_seconds`.
 */
export async function deliverOnce(
  delivery: Delivery,
  metrics: Metrics | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const timeout = AbortSignal.timeout(delivery.webhook.timeout_ms);
  const started = performance.now();
  let error: DeliveryError | undefined;
  try {
    const response = await fetch(delivery.webhook.url, {
      method: 'POST',
      headers: deliveryHeaders(delivery),
      body: delivery.body,
      // A redirect is a failure: the signed body is not re-sent to wherever it points.
      redirect: 'manual',
      signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
    });
    // Drained, not read: the answer's body means nothing, and the connection is reused.
    await response.body?.cancel().catch(() => undefined);
    if (response.status < 200 || response.status > 299) {
      error = new DeliveryError(`webhook "${delivery.name}" answered ${response.status}`);
    }
  } catch (cause) {
    const reason = timeout.aborted
      ? `timed out after ${delivery.webhook.timeout_ms} ms`
      : cause instanceof Error
        ? messageOf(cause)
        : String(cause);
    error = new DeliveryError(`webhook "${delivery.name}" unreachable: ${reason}`);
  }
  if (metrics !== undefined) {
    recordDeliveryAttempt(metrics, {
      webhook: delivery.name,
      event: delivery.kind,
      result: error ? 'error' : 'success',
      seconds: (performance.now() - started) / 1000,
    });
  }
  if (error) throw error;
}

/** fetch's `TypeError: fetch failed` hides the reason in `cause` (ECONNREFUSED…). */
function messageOf(error: Error): string {
  const cause = error.cause;
  if (cause instanceof Error)
    return `${error.message} (${(cause as NodeJS.ErrnoException).code ?? cause.message})`;
  return error.message;
}

/** The pause before retry `retry` (1-based) of a synchronous delivery: 100 ms · 2^(retry-1). */
export function syncRetryDelayMs(retry: number): number {
  return 100 * 2 ** Math.min(retry - 1, 16);
}

/**
 * A synchronous delivery (`required`, `optional`): the first attempt and up to `max_retries`
 * retries, 100 ms · 2^(n-1) apart. Throws the last attempt's `DeliveryError` when all failed.
 */
export async function deliverWithRetries(
  delivery: Delivery,
  maxRetries: number,
  metrics: Metrics | undefined,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await deliverOnce(delivery, metrics);
      return;
    } catch (error) {
      if (attempt >= maxRetries) throw error;
      await new Promise((resolve) => setTimeout(resolve, syncRetryDelayMs(attempt + 1)));
    }
  }
}
