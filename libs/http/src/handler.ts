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

/**
 * Whether the request announces a body (RFC 9112 §6.3: a transfer coding, or a Content-Length
 * other than 0). Not a validation: registry-api answers a malformed length itself.
 */
export function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
