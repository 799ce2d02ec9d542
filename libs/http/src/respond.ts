import type { ServerResponse } from 'node:http';
import type { Logger } from '@angos/observability';
import { errorBody, OciError } from '@angos/oci';
import { requestPath } from './handler.js';

export type HeaderValues = Readonly<Record<string, string | number | readonly string[]>>;

function isHead(res: ServerResponse): boolean {
  return res.req?.method === 'HEAD';
}

/** Writes a complete response with a known length; HEAD gets the headers only. */
export function sendBody(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers: HeaderValues = {},
): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, {
    ...headers,
    'content-type': contentType,
    'content-length': bytes.length,
  });
  if (isHead(res)) res.end();
  else res.end(bytes);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: HeaderValues = {},
): void {
  sendBody(res, status, 'application/json', JSON.stringify(value), headers);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: HeaderValues = {},
): void {
  sendBody(res, status, 'text/plain; charset=utf-8', text, headers);
}

/**
 * The client went away: nothing can be written and nothing is wrong with the server. A response
 * has no socket of its own yet while an earlier response on the same keep-alive connection is
 * still being written; it must still be answered then, so the connection is judged by the
 * request's socket until the response gets one.
 */
function clientGone(res: ServerResponse): boolean {
  return res.destroyed || (res.socket ?? res.req.socket).destroyed;
}

/**
 * Backend failures that outlived their retries mark themselves `transient` (StorageError of
 * @angos/storage, LockTimeoutError and LockLostError of @angos/lock): the service is unavailable
 * for now, nothing is wrong with the request or the code. Duck-typed: this layer depends on neither.
 */
function isTransientFailure(error: unknown): boolean {
  return (error as { transient?: unknown } | null)?.transient === true;
}

/**
 * The one place an error becomes a response. An OciError answers with its status and
 * `{"errors":[…]}`; a transient backend failure answers 503 UNAVAILABLE; anything else is a bug.
 * Both are logged with their stack; the bug is answered 500 INTERNAL. When
 * the headers are already out there is no way to signal an error in HTTP/1.1 except cutting the
 * connection, so the socket is destroyed and the client sees a truncated body.
 */
export function sendError(res: ServerResponse, error: unknown, logger: Logger): void {
  const req = res.req;
  const where = { method: req?.method, path: req === undefined ? undefined : requestPath(req) };

  if (clientGone(res)) {
    logger.debug('request ended after the client disconnected', { ...where, error });
    return;
  }

  const oci = error instanceof OciError ? error : undefined;
  if (oci === undefined || oci.status >= 500) {
    logger.error('request failed', { ...where, error });
  }

  if (res.headersSent) {
    if (oci !== undefined) logger.warn('error after response headers were sent', { ...where, error });
    res.destroy();
    return;
  }

  const reply = oci ?? new OciError(isTransientFailure(error) ? 'UNAVAILABLE' : 'INTERNAL');
  // A body the failure left part-read (a full disk, a failed S3 part) stays in the socket: Node
  // discards only bodies never read, and the connection's next request would wait behind it for
  // good. The connection closes after this answer instead, as Go's net/http does.
  const partRead = req?.readableDidRead && !req.complete;
  sendBody(
    res,
    reply.status,
    'application/json',
    errorBody([reply]),
    partRead ? { connection: 'close' } : {},
  );
}
