import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger, Metrics } from '@angos/observability';
import { errorBody, OciError } from '@angos/oci';
import { announcesBody, type Handler, requestPath } from './handler.js';
import { isServiceEndpoint } from './health.js';
import { type InFlightCounter, localInFlightCounter } from './in-flight.js';
import { sendBody } from './respond.js';

/** The configured limits, read for every request so a configuration reload applies to the next one. */
export interface RequestLimits {
  /**
   * Seconds a handler may take to start its response once the request has been fully received:
   * `server.query_timeout + query_timeout_grace_period`. Time spent receiving the body does not
   * count (the body-progress timeout bounds that), nor does streaming the response.
   */
  readonly queryTimeoutSecs: number;
  /** Requests handled at once (`global.max_concurrent_requests`); more are refused with 503. */
  readonly maxConcurrentRequests: number;
}

/** Why the server refused or cut off a request, the `reason` label of `http_requests_refused_total`. */
export type RefusalReason = 'max_concurrent_requests' | 'body_idle_timeout' | 'query_timeout';

/**
 * Seconds a refused client is told to wait. Most requests finish in well under a second (manifests,
 * HEADs), so a slot is usually free by then; clients that ignore the header retry on their own.
 */
export const RETRY_AFTER_SECS = 1;

/**
 * How long a request body may make no progress before the connection is closed. A whole-request
 * deadline would cut a legitimate slow transfer (10 GiB at 2 MB/s takes 85 minutes); a client
 * that sends nothing for a minute is gone or hostile. Waiting on our side (storage applying
 * backpressure) does not count.
 */
export const BODY_IDLE_TIMEOUT_MS = 60_000;

/** The watchdog looks at in-flight requests this often, at most; finer for short test timeouts. */
const MAX_SWEEP_INTERVAL_MS = 1000;
const MIN_SWEEP_INTERVAL_MS = 25;

export interface LimitOptions {
  readonly limits: () => RequestLimits;
  readonly bodyIdleTimeoutMs: number;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
  /** Where requests in flight are counted; default: this handler's own count. */
  readonly inFlight?: InFlightCounter | undefined;
}

interface Watched {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly queryTimeoutMs: number;
  bytesRead: number;
  progressAt: number;
  receivedAt: number | undefined;
}

/**
 * Answers on the raw socket and closes the connection once the answer is flushed. The handler may
 * still hold the response object; what it writes afterwards goes nowhere, and its reads of the
 * request end with an abort error.
 */
function cutOff(socket: Socket, status: number, error: OciError): void {
  if (socket.destroyed) return;
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return;
  }
  const body = errorBody([error]);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    // A stalled client may never close its side; do not leave the connection half-open.
    () => socket.destroy(),
  );
}

/**
 * Enforces `max_concurrent_requests`, the body-progress timeout and the query timeout in front of
 * `handler`. The health and metrics endpoints are neither counted nor refused: operators need them
 * most when the service is saturated.
 */
export function withRequestLimits(handler: Handler, options: LimitOptions): Handler {
  const { limits, bodyIdleTimeoutMs, logger } = options;
  const refused = options.metrics?.http.requestsRefused;
  const watched = new Set<Watched>();
  const sweepEvery = Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(MIN_SWEEP_INTERVAL_MS, bodyIdleTimeoutMs / 4));
  let sweeper: NodeJS.Timeout | undefined;
  const inFlight = options.inFlight ?? localInFlightCounter();

  const cut = (entry: Watched, reason: RefusalReason, status: number, error: OciError) => {
    watched.delete(entry);
    refused?.inc({ reason });
    const where = { reason, method: entry.req.method, path: requestPath(entry.req) };
    // A stalled client is the client's business; a handler past its deadline is ours.
    if (reason === 'query_timeout') logger.warn('request cut off', where);
    else logger.info('request cut off', where);
    cutOff(entry.req.socket, status, error);
  };

  const sweep = () => {
    const now = performance.now();
    for (const entry of watched) {
      const { req, res } = entry;
      // Once the response has started, the request is the client's to finish or abandon.
      if (res.headersSent || res.writableEnded) {
        watched.delete(entry);
        continue;
      }
      if (!req.complete) {
        const bytesRead = req.socket.bytesRead;
        // Bytes arrived, or we hold some unread (the handler is behind): the client is not stalled.
        if (bytesRead !== entry.bytesRead || req.readableLength > 0 || req.socket.isPaused()) {
          entry.bytesRead = bytesRead;
          entry.progressAt = now;
        } else if (now - entry.progressAt >= bodyIdleTimeoutMs) {
          const detail = { idle_timeout_secs: bodyIdleTimeoutMs / 1000 };
          cut(
            entry,
            'body_idle_timeout',
            408,
            new OciError('REQUEST_INVALID', detail, 'request body stalled'),
          );
        }
        continue;
      }
      entry.receivedAt ??= now;
      if (now - entry.receivedAt >= entry.queryTimeoutMs) {
        cut(
          entry,
          'query_timeout',
          503,
          new OciError('UNAVAILABLE', undefined, 'request took longer than server.query_timeout'),
        );
      }
    }
    if (watched.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const watch = (req: IncomingMessage, res: ServerResponse, queryTimeoutSecs: number) => {
    const now = performance.now();
    const entry: Watched = {
      req,
      res,
      queryTimeoutMs: Math.max(1, queryTimeoutSecs) * 1000,
      bytesRead: req.socket.bytesRead,
      progressAt: now,
      receivedAt: req.complete ? now : undefined,
    };
    watched.add(entry);
    res.once('close', () => watched.delete(entry));
    if (sweeper === undefined) {
      sweeper = setInterval(sweep, sweepEvery);
      sweeper.unref();
    }
  };

  return (req, res) => {
    const current = limits();
    if (!isServiceEndpoint(requestPath(req))) {
      if (!inFlight.tryEnter(current.maxConcurrentRequests)) {
        refused?.inc({ reason: 'max_concurrent_requests' });
        logger.debug('request refused: max_concurrent_requests reached', { in_flight: inFlight.current() });
        // Not sendError: it logs every 5xx as an error, a line per refusal in a flood.
        const refusal = new OciError('UNAVAILABLE', undefined, 'too many requests in flight, retry later');
        sendBody(res, refusal.status, 'application/json', errorBody([refusal]), {
          'retry-after': String(RETRY_AFTER_SECS),
          // Reading a refused body to keep the connection could mean reading gigabytes: close instead.
          ...(announcesBody(req) && !req.complete ? { connection: 'close' } : {}),
        });
        return;
      }
      // 'close' also fires when the client aborts, so an abandoned request frees its slot.
      res.once('close', () => inFlight.leave());
    }
    watch(req, res, current.queryTimeoutSecs);
    return handler(req, res);
  };
}
