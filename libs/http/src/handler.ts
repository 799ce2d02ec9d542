import type { IncomingMessage, ServerResponse } from 'node:http';

/** What every service and middleware is: plain node:http, no framework on the hot path. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** The path of a request without its query string (`/v2/a/blobs/uploads/`). */
export function requestPath(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** The query string of a request, parsed (empty when there is none). */
export function requestQuery(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return new URLSearchParams(query === -1 ? '' : url.slice(query + 1));
}
