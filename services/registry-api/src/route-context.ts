import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '@angos/config';
import type { EventActor, EventDispatcher } from '@angos/events';
import type { Identity } from '@angos/http';
import type { JobQueue } from '@angos/jobs';
import type { Logger } from '@angos/observability';
import type { Readable, Registry } from '@angos/registry';
import type { ReplicationEvents } from '@angos/replication';

/** What every route handler receives. */
export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly query: URLSearchParams;
  readonly registry: Registry;
  /** The job queues of the metadata store, for the jobs API. */
  readonly jobs: JobQueue;
  readonly config: Config;
  readonly logger: Logger;
  /** Namespaces the gateway judged readable for a cross-repository mount in this request. */
  readonly mountAllowedFrom: readonly string[];
  /**
   * `X-Angos-Source-Timestamp` of a manifest push or delete, when the gateway judged the caller
   * allowed to replicate; undefined otherwise.
   */
  readonly sourceTimestamp: string | undefined;
  /** Where manifest pushes and deletes that changed something are queued for the downstreams. */
  readonly replication: ReplicationEvents | undefined;
  /** Where committed changes and served pulls go to the event webhooks; undefined: no events. */
  readonly events: EventDispatcher | undefined;
  /** Who made the request, for the events' `actor`. */
  readonly actor: EventActor;
  /** Who the gateway authenticated (absent: anonymous). */
  readonly identity: Identity | undefined;
  /** Whether the caller may see a namespace in a cross-namespace listing (namespace-access.ts). */
  readable: Readable;
  /** The angos version, for `/v2/_ext/_ui/config`. */
  readonly version: string;
}

/** Ends a response with no body. */
export function sendEmpty(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | number>,
): void {
  res.writeHead(status, { ...headers, 'Content-Length': 0 });
  res.end();
}

/** `Link` header of the next page of a paginated list; `params` are the list's other query parameters. */
export function nextPageLink(
  path: string,
  n: number,
  last: string,
  params: Readonly<Record<string, string>> = {},
): string {
  const leading = Object.entries(params).map(([name, value]) => `${name}=${encodeURIComponent(value)}&`);
  return `<${path}?${leading.join('')}n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}
