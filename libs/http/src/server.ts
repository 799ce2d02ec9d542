import { createServer, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger, Metrics } from '@angos/observability';
import { errorBody, OciError } from '@angos/oci';
import type { Handler } from './handler.js';
import type { InFlightCounter } from './in-flight.js';
import { BODY_IDLE_TIMEOUT_MS, type RequestLimits, withRequestLimits } from './limits.js';
import { sendError } from './respond.js';

/** Larger request headers are answered 431 by the parser, before any handler runs. */
export const MAX_HEADER_SIZE = 16 * 1024;
/**
 * The request headers the services behind the gateway accept: the gateway's signed context
 * carries the caller as policies see it, OIDC claims included, which came in a token of up to
 * MAX_HEADER_SIZE and are forwarded base64url-encoded (see MAX_CONTEXT_LENGTH).
 */
export const INTERNAL_MAX_HEADER_SIZE = 64 * 1024;

/** Longer than the idle timeouts of docker's and containerd's HTTP clients, so they close first. */
export const KEEP_ALIVE_TIMEOUT_MS = 75_000;

/**
 * Time a client gets to send a complete request head. Heads are at most
 * 16 KiB, so only a stalled or hostile client (slowloris) needs anywhere near this long.
 */
export const HEADERS_TIMEOUT_MS = 80_000;

export interface HttpServerOptions {
  readonly logger: Logger;
  /**
   * `server.query_timeout + query_timeout_grace_period` and `global.max_concurrent_requests`,
   * read per request so that reloads apply. Default: the configuration defaults (3660 s) and no
   * concurrency limit (for tests and embedded use).
   */
  readonly limits?: (() => RequestLimits) | undefined;
  /** Where `http_requests_refused_total` is counted. */
  readonly metrics?: Metrics | undefined;
  /** Tests shorten these; services use HEADERS_TIMEOUT_MS and BODY_IDLE_TIMEOUT_MS. */
  readonly headersTimeoutMs?: number | undefined;
  readonly bodyIdleTimeoutMs?: number | undefined;
  /** Where `max_concurrent_requests` counts (shared by the serving threads of one service). */
  readonly inFlight?: InFlightCounter | undefined;
  /** Default MAX_HEADER_SIZE; INTERNAL_MAX_HEADER_SIZE behind the gateway. */
  readonly maxHeaderSize?: number | undefined;
}

const UNLIMITED: RequestLimits = {
  queryTimeoutSecs: 3600 + 60,
  maxConcurrentRequests: Number.POSITIVE_INFINITY,
};

/** Runs the handler, turning a throw or a rejection into an error response instead of a crash. */
function guarded(handler: Handler, logger: Logger): Handler {
  return (req, res) => {
    const fail = (error: unknown) => sendError(res, error, logger);
    try {
      const result = handler(req, res);
      if (result !== undefined) result.then(undefined, fail);
    } catch (error) {
      fail(error);
    }
  };
}

function statusFor(code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    default:
      return 400;
  }
}

/**
 * A request that never reached a handler (bad framing, oversized headers, timeout). With a
 * `clientError` listener Node leaves the socket to us: answer when nothing of a response has been
 * written yet (as Node's own default does), then close; never throw.
 */
function answerClientError(logger: Logger) {
  return (error: NodeJS.ErrnoException, socket: Duplex): void => {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const status = statusFor(error.code);
    logger.debug('rejected malformed request', { status, code: error.code });
    // Clients get an OCI error body here too, like every other refusal of the API.
    const body = errorBody([new OciError('REQUEST_INVALID', undefined, 'malformed HTTP request')]);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  };
}

/** A node:http server with the limits every Angos service runs with. */
export function createHttpServer(handler: Handler, options: HttpServerOptions): Server {
  const headersTimeout = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const limited = withRequestLimits(guarded(handler, options.logger), {
    limits: options.limits ?? (() => UNLIMITED),
    bodyIdleTimeoutMs: options.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS,
    logger: options.logger,
    metrics: options.metrics,
    inFlight: options.inFlight,
  });
  const server = createServer(
    {
      maxHeaderSize: options.maxHeaderSize ?? MAX_HEADER_SIZE,
      // No deadline on receiving a whole request: it would cut a legitimate slow upload. Stalled
      // bodies are cut by withRequestLimits' body-progress timeout instead.
      requestTimeout: 0,
      headersTimeout,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // Node checks the headers timeout in a periodic sweep (30 s by default); short timeouts need a finer one.
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, headersTimeout / 4)),
      noDelay: true,
    },
    limited,
  );
  server.on('clientError', answerClientError(options.logger));
  return server;
}
