import type { Config } from '@angos/config';
import type { Enqueue } from '@angos/jobs';
import type { Logger, Metrics } from '@angos/observability';
import { type Delivery, deliverWithRetries } from './delivery.js';
import { createEvent, type EventActor, type EventInput, encodeEvent } from './event.js';
import {
  EVENT_DELIVERY_JOB,
  EVENTS_QUEUE,
  type EventDeliveryPayload,
  eventDeliveryLockKey,
  type QueuedEvent,
} from './job.js';
import { registerDeliveryMetrics } from './metrics.js';
import { webhooksFor } from './selection.js';

/** A `required` webhook did not take the event after its retries. */
export class RequiredWebhookError extends Error {
  override readonly name = 'RequiredWebhookError';
  constructor(
    /** The webhooks that failed, by name. */
    readonly webhooks: readonly string[],
    message: string,
  ) {
    super(message);
  }
}

/** The `async` deliveries of an event could not be written to the durable queue. */
export class EventQueueError extends Error {
  override readonly name = 'EventQueueError';
}

/** Where the services report what they committed (or served). */
export interface EventDispatcher {
  /**
   * Builds one event per input (fresh id, dated now) and hands it to the webhooks that select it:
   * `async` ones are enqueued on the durable `events` queue (all of them before anything else),
   * then `required` and `optional` ones are delivered, with their retries, before this resolves.
   * Rejects with an `EventQueueError` when an enqueue failed, or a `RequiredWebhookError` when a
   * `required` webhook failed; an `optional` webhook's failure is logged only. Call it only once
   * the change is committed: an event never describes a change that then failed.
   */
  emit(inputs: readonly EventInput[], actor: EventActor | undefined): Promise<void>;
}

export interface EventDispatcherDeps {
  /** Read at each emit: a reload's webhooks apply to the next operation. */
  readonly config: () => Config;
  readonly enqueue: Enqueue;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
}

export function createEventDispatcher(deps: EventDispatcherDeps): EventDispatcher {
  const logger = deps.logger.child('angos::events');
  if (deps.metrics !== undefined) registerDeliveryMetrics(deps.metrics);
  return {
    async emit(inputs, actor) {
      const config = deps.config();
      // One job per async webhook, holding every event of this operation for it.
      const queued = new Map<string, QueuedEvent[]>();
      const immediate: Array<Delivery & { required: boolean; maxRetries: number; eventId: string }> = [];
      for (const input of inputs) {
        const webhooks = webhooksFor(config, input.namespace, input.kind);
        if (webhooks.length === 0) continue;
        const event = createEvent(config, input, actor);
        const body = encodeEvent(event);
        for (const { name, webhook } of webhooks) {
          if (webhook.policy === 'async') {
            const events = queued.get(name) ?? [];
            events.push({ kind: event.kind, eventId: event.id, body });
            queued.set(name, events);
          } else {
            immediate.push({
              name,
              webhook,
              kind: event.kind,
              body,
              eventId: event.id,
              required: webhook.policy === 'required',
              maxRetries: webhook.max_retries,
            });
          }
        }
      }
      const jobs = [...queued].map(([webhook, events]): EventDeliveryPayload => ({ webhook, events }));
      await enqueueAll(deps, config, jobs, logger);
      if (immediate.length === 0) return;
      // Webhooks in parallel; the events of one webhook in order (`manifest.push` before its
      // `tag.create`).
      const byWebhook = new Map<string, typeof immediate>();
      for (const delivery of immediate)
        byWebhook.set(delivery.name, [...(byWebhook.get(delivery.name) ?? []), delivery]);
      const failures = (
        await Promise.all(
          [...byWebhook.values()].map(async (deliveries) => {
            const failed: Array<{ name: string; error: unknown }> = [];
            for (const delivery of deliveries) {
              try {
                await deliverWithRetries(delivery, delivery.maxRetries, deps.metrics);
              } catch (error) {
                const fields = {
                  webhook: delivery.name,
                  event: delivery.kind,
                  event_id: delivery.eventId,
                  attempts: delivery.maxRetries + 1,
                  error: String(error),
                };
                if (delivery.required) logger.error('required event delivery failed', fields);
                else logger.warn('optional event delivery failed', fields);
                if (delivery.required) failed.push({ name: delivery.name, error });
              }
            }
            return failed;
          }),
        )
      ).flat();
      if (failures.length > 0) {
        const names = [...new Set(failures.map((failure) => failure.name))];
        throw new RequiredWebhookError(names, failures.map((failure) => String(failure.error)).join('; '));
      }
    },
  };
}

/** Every `async` delivery on the durable queue, each with its webhook's attempt budget. */
async function enqueueAll(
  deps: EventDispatcherDeps,
  config: Config,
  queued: readonly EventDeliveryPayload[],
  logger: Logger,
): Promise<void> {
  if (queued.length === 0) return;
  try {
    await Promise.all(
      queued.map((payload) =>
        deps.enqueue(EVENTS_QUEUE, EVENT_DELIVERY_JOB, eventDeliveryLockKey(payload), payload, {
          maxAttempts: (config.event_webhook[payload.webhook]?.max_retries ?? 0) + 1,
        }),
      ),
    );
  } catch (error) {
    logger.error('event deliveries not queued', { error: String(error), jobs: queued.length });
    throw new EventQueueError(`event deliveries could not be queued: ${String(error)}`);
  }
  logger.debug('event deliveries queued', { jobs: queued.length });
}
