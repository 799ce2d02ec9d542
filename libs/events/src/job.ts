import type { Config, EventKind } from '@angos/config';
import { EVENT_KINDS } from '@angos/config';
import { type JobHandler, TerminalJobError } from '@angos/jobs';
import type { Logger, Metrics } from '@angos/observability';
import { deliverOnce } from './delivery.js';

/** The queue and job kind of `async` deliveries (`angos worker --queue events`). */
export const EVENTS_QUEUE = 'events';
export const EVENT_DELIVERY_JOB = 'event.delivery';

/**
 * One `async` delivery: one event to one webhook. It carries the encoded body, so every attempt
 * sends (and signs) the same bytes with the same event id, whoever runs it and whenever.
 */
export interface EventDeliveryPayload {
  /** The `[event_webhook.<name>]` it goes to; its url, token and timeout are read when it runs. */
  readonly webhook: string;
  readonly kind: EventKind;
  readonly eventId: string;
  /** The encoded event (`encodeEvent`). */
  readonly body: string;
}

/** Unique per delivery: the queue never joins two events into one job. */
export function eventDeliveryLockKey(payload: Pick<EventDeliveryPayload, 'webhook' | 'eventId'>): string {
  return `event:${payload.webhook}:${payload.eventId}`;
}

/** Checks a stored payload; throws (the runner dead-letters the job) when it is not one. */
export function parseEventDeliveryPayload(value: unknown): EventDeliveryPayload {
  if (typeof value !== 'object' || value === null) throw new Error('payload is not an object');
  const { webhook, kind, eventId, body } = value as Record<string, unknown>;
  if (typeof webhook !== 'string' || webhook === '') throw new Error('invalid webhook');
  if (typeof kind !== 'string' || !(EVENT_KINDS as readonly string[]).includes(kind)) {
    throw new Error('invalid event kind');
  }
  if (typeof eventId !== 'string' || eventId === '') throw new Error('invalid eventId');
  if (typeof body !== 'string') throw new Error('invalid body');
  return { webhook, kind: kind as EventKind, eventId, body };
}

export interface EventDeliveryHandlerDeps {
  /** The configuration of the runner: a reload's new url or token applies to the next claims. */
  readonly config: Config;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
}

/**
 * The `event.delivery` job kind: one attempt per run. A failed attempt throws, and the runner
 * retries with backoff up to the job's attempt budget (`max_retries` + 1, set at enqueue), then
 * dead-letters it (`/v2/_ext/jobs/failed?queue=events`). A webhook removed from the
 * configuration dead-letters its jobs at once, so nothing is dropped silently.
 */
export function eventDeliveryHandler(deps: EventDeliveryHandlerDeps): JobHandler<EventDeliveryPayload> {
  const logger = deps.logger.child('angos::events');
  return {
    kind: EVENT_DELIVERY_JOB,
    parse: parseEventDeliveryPayload,
    async run({ payload, signal }) {
      const webhook = deps.config.event_webhook[payload.webhook];
      if (webhook === undefined) {
        throw new TerminalJobError(`event webhook "${payload.webhook}" is no longer configured`);
      }
      try {
        await deliverOnce(
          { name: payload.webhook, webhook, kind: payload.kind, body: payload.body },
          deps.metrics,
          signal,
        );
      } catch (error) {
        logger.warn('event delivery failed', {
          webhook: payload.webhook,
          event: payload.kind,
          event_id: payload.eventId,
          error: String(error),
        });
        throw error;
      }
      logger.debug('event delivered', {
        webhook: payload.webhook,
        event: payload.kind,
        event_id: payload.eventId,
      });
    },
  };
}
