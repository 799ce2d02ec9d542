import { randomUUID } from 'node:crypto';
import { type Config, type EventKind, repositoryKeyFor } from '@angos/config';

/** Who caused an event, as far as the registry knows; every field is optional. */
export interface EventActor {
  /** Basic auth: the `[auth.identity.<name>]` that matched. */
  readonly id?: string | undefined;
  /** Basic auth username, OIDC subject, or the client certificate's common name. */
  readonly username?: string | undefined;
  readonly client_ip?: string | undefined;
  /** The registry's own process that acted (`cache`, `prune`); absent for a client's request. */
  readonly internal?: string | undefined;
}

/** What happened, as the operation that committed it describes it. */
export interface EventInput {
  readonly kind: EventKind;
  readonly namespace: string;
  readonly digest?: string | undefined;
  /** The tag or digest the request named. */
  readonly reference?: string | undefined;
  /** The tag created, deleted or pulled by. */
  readonly tag?: string | undefined;
}

/** One event as delivered: the JSON body of every webhook request of it. */
export interface RegistryEvent extends EventInput {
  /** UUID v4, the same on every delivery attempt of this event: receivers de-duplicate on it. */
  readonly id: string;
  /** When the change committed (RFC 3339, UTC). */
  readonly timestamp: string;
  /** The `[repository."<key>"]` that governs the namespace, or its first path segment without one. */
  readonly repository: string;
  readonly actor?: EventActor | undefined;
}

/** The repository named in an event of `namespace`. */
export function eventRepository(config: Pick<Config, 'repository'>, namespace: string): string {
  return repositoryKeyFor(config, namespace) ?? namespace.split('/', 1)[0] ?? namespace;
}

/** A new event of a committed change: fresh id, dated now. */
export function createEvent(
  config: Pick<Config, 'repository'>,
  input: EventInput,
  actor: EventActor | undefined,
  now: Date = new Date(),
): RegistryEvent {
  return {
    id: randomUUID(),
    timestamp: now.toISOString(),
    kind: input.kind,
    namespace: input.namespace,
    repository: eventRepository(config, input.namespace),
    digest: input.digest,
    reference: input.reference,
    tag: input.tag,
    actor: actor === undefined || Object.values(actor).every((v) => v === undefined) ? undefined : actor,
  };
}

/**
 * The body of the event's requests: fields in a fixed order, absent ones left out. Encoded once
 * per event; every attempt (and every webhook) sends these bytes, which the signature covers.
 */
export function encodeEvent(event: RegistryEvent): string {
  const actor = event.actor && {
    id: event.actor.id,
    username: event.actor.username,
    client_ip: event.actor.client_ip,
    internal: event.actor.internal,
  };
  return JSON.stringify({
    id: event.id,
    timestamp: event.timestamp,
    kind: event.kind,
    namespace: event.namespace,
    repository: event.repository,
    digest: event.digest,
    reference: event.reference,
    tag: event.tag,
    actor,
  });
}
