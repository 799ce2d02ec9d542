import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The request id: logged on the access line of every service a request passes through, and echoed
 * to the client, so a client's report, the gateway's line and registry-api's line can be matched.
 */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Longest client-sent id reused; longer ones are replaced. */
const MAX_REQUEST_ID_LENGTH = 128;

/** Letters, digits and `-_.:+/=@`: what tracing systems send (UUIDs, hex, base64), nothing to escape. */
const SANE_REQUEST_ID = /^[\w.:+/=@-]+$/;

/** A client's (or the gateway's) id when it is sane; otherwise a new one. */
function requestIdOf(req: IncomingMessage): string | undefined {
  const sent = req.headers[REQUEST_ID_HEADER];
  return typeof sent === 'string' && sent.length <= MAX_REQUEST_ID_LENGTH && SANE_REQUEST_ID.test(sent)
    ? sent
    : undefined;
}

/**
 * Gives the request its id and echoes it in the response. The id a client sent is kept when it is
 * sane; else a new UUID replaces it in the request's headers too, so that the gateway forwards it
 * to registry-api with the rest of the headers and both log the same id.
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  let id = requestIdOf(req);
  if (id === undefined) {
    id = randomUUID();
    req.headers[REQUEST_ID_HEADER] = id;
  }
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}
