import type { Config, EventKind, EventWebhookConfig } from '@angos/config';
import { repositoryFor } from '@angos/config';

/** A configured webhook, by its `[event_webhook.<name>]` name. */
export interface NamedWebhook {
  readonly name: string;
  readonly webhook: EventWebhookConfig;
}

// Compiled repository_filter patterns, per webhook table (a reload makes new tables).
const compiled = new WeakMap<EventWebhookConfig, RegExp[]>();

/** `repository_filter`: the namespace matches one of the patterns (every namespace without it). */
export function matchesRepositoryFilter(webhook: EventWebhookConfig, namespace: string): boolean {
  const filter = webhook.repository_filter;
  if (filter === undefined) return true;
  let patterns = compiled.get(webhook);
  if (patterns === undefined) {
    // The configuration loader has rejected invalid patterns.
    patterns = filter.map((pattern) => new RegExp(pattern));
    compiled.set(webhook, patterns);
  }
  return patterns.some((pattern) => pattern.test(namespace));
}

/**
 * The webhooks an event of `kind` in `namespace` goes to: the `event_webhooks` of the repository
 * that governs the namespace when it sets them (an override, empty included), `global.event_webhooks`
 * otherwise; then those that list the kind in `events` and whose `repository_filter` matches.
 */
export function webhooksFor(config: Config, namespace: string, kind: EventKind): NamedWebhook[] {
  const names = repositoryFor(config, namespace)?.event_webhooks ?? config.global.event_webhooks;
  const selected: NamedWebhook[] = [];
  for (const name of new Set(names)) {
    const webhook = config.event_webhook[name];
    // References are checked at load; a missing one here is a config without the table.
    if (webhook === undefined) continue;
    if (webhook.events.includes(kind) && matchesRepositoryFilter(webhook, namespace)) {
      selected.push({ name, webhook });
    }
  }
  return selected;
}

/** Whether any webhook takes events of `kind` in `namespace` (skip building events otherwise). */
export function wantsEvent(config: Config, namespace: string, kind: EventKind): boolean {
  return webhooksFor(config, namespace, kind).length > 0;
}
