import type { Config, EventKind } from '@angos/config';
import { EVENT_KINDS } from '@angos/config';
import { type JobHandler, TerminalJobError } from '@angos/jobs';
import type { Logger, Metrics } from '@angos/observability';
import { deliverOnce } from './delivery.js';
import { registerDeliveryMetrics } from './metrics.js';

/** The queue and job kind of `async` deliveries (`angos worker --queue events`). */
export const EVENTS_QUEUE = 'events';
export const EVENT_DELIVERY_JOB = 'event.delivery';

/** One event of a delivery job, encoded: every attempt sends (and signs) these bytes. */
export interface QueuedEvent {
  readonly kind: EventKind;
  readonly eventId: string;
  /** The encoded event (`encodeEvent`). */
  readonly body: string;
}

/**
 * One `async` delivery job: the events of one operation (a push by tag makes `manifest.push` and
 * `tag.create`) for one webhook, posted one request each, in order. One job per operation and
 * webhook rather than per event: fewer writes before the client's answer. The events carry their
 * encoded bodies, so every attempt sends the same bytes with the same ids, whoever runs it.
 */
export interface EventDeliveryPayload {
  /** The `[event_webhook.<name>]` it goes to; its url, token and timeout are read when it runs. */
  readonly webhook: string;
  readonly events: readonly QueuedEvent[];
}

/** Unique per job (its first event's id): the queue never joins two operations' events into one job. */
export function eventDeliveryLockKey(payload: EventDeliveryPayload): string {
  return `event:${payload.webhook}:${payload.events[0]?.eventId ?? ''}`;
}

/** Checks a stored payload; throws (the runner dead-letters the job) when it is not one. */
export function parseEventDeliveryPayload(value: unknown): EventDeliveryPayload {
  if (typeof value !== 'object' || value === null) throw new Error('payload is not an object');
  const { webhook, events } = value as Record<string, unknown>;
  if (typeof webhook !== 'string' || webhook === '') throw new Error('invalid webhook');
  if (!Array.isArray(events) || events.length === 0) throw new Error('invalid events');
  return { webhook, events: events.map(parseQueuedEvent) };
}

function parseQueuedEvent(value: unknown): QueuedEvent {
  if (typeof value !== 'object' || value === null) throw new Error('event is not an object');
  const { kind, eventId, body } = value as Record<string, unknown>;
  if (typeof kind !== 'string' || !(EVENT_KINDS as readonly string[]).includes(kind)) {
    throw new Error('invalid event kind');
  }
  if (typeof eventId !== 'string' || eventId === '') throw new Error('invalid eventId');
  if (typeof body !== 'string') throw new Error('invalid body');
  return { kind: kind as EventKind, eventId, body };
}

export interface EventDeliveryHandlerDeps {
  /** The configuration of the runner: a reload's new url or token applies to the next claims. */
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
}

/**
 * The `event.delivery` job kind: one attempt of each event per run, in order. A failed attempt
 * throws, and the runner retries the job with backoff up to its attempt budget (`max_retries` + 1,
 * set at enqueue), then dead-letters it (`/v2/_ext/jobs/failed?queue=events`). A retry posts the
 * job's events again from the first (at least once: receivers de-duplicate on the id). A webhook
 * removed from the configuration dead-letters its jobs at once, so nothing is dropped silently.
 */
export function eventDeliveryHandler(deps: EventDeliveryHandlerDeps): JobHandler<EventDeliveryPayload> {
  const logger = deps.logger.child('angos::events');
  if (deps.metrics !== undefined) registerDeliveryMetrics(deps.metrics);
  return {
    kind: EVENT_DELIVERY_JOB,
    parse: parseEventDeliveryPayload,
    async run({ payload, signal }) {
      const webhook = deps.config.event_webhook[payload.webhook];
      if (webhook === undefined) {
        throw new TerminalJobError(`event webhook "${payload.webhook}" is no longer configured`);
      }
      for (const event of payload.events) {
        try {
          await deliverOnce(
            { name: payload.webhook, webhook, kind: event.kind, body: event.body },
            deps.metrics,
            signal,
          );
        } catch (error) {
          logger.warn('event delivery failed', {
            webhook: payload.webhook,
            event: event.kind,
            event_id: event.eventId,
            error: String(error),
          });
          throw error;
        }
        logger.debug('event delivered', {
          webhook: payload.webhook,
          event: event.kind,
          event_id: event.eventId,
        });
      }
    },
  };
}
