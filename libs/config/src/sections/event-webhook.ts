import { httpUrl, integer, nonEmptyString, oneOf, regexList } from '../scalars.js';
import { arrayOf, optional, record, required, table, withDefault } from '../schema.js';
import type { EventKind, EventWebhookConfig, EventWebhookPolicy } from '../types.js';

export const EVENT_KINDS = [
  'manifest.push',
  'manifest.pull',
  'manifest.delete',
  'blob.push',
  'blob.pull',
  'tag.create',
  'tag.delete',
] as const;
export const EVENT_WEBHOOK_POLICIES = ['required', 'optional', 'async'] as const;

export const eventWebhookSchema = table<EventWebhookConfig>({
  url: required(httpUrl()),
  policy: required(oneOf<EventWebhookPolicy>(EVENT_WEBHOOK_POLICIES)),
  events: required(
    arrayOf(oneOf<EventKind>(EVENT_KINDS), {
      expected: 'expected array of event types',
      minItems: 1,
      tooFew: 'must list at least one event type',
    }),
  ),
  // Also the HMAC signing secret: an empty one would sign with a known key.
  token: optional(nonEmptyString()),
  timeout_ms: withDefault(integer('u64'), 5000),
  max_retries: withDefault(integer('u32'), 0),
  repository_filter: optional(regexList()),
});

/** `[event_webhook.<name>]`. */
export const eventWebhooksSchema = record(eventWebhookSchema, { placeholder: '<name>' });
