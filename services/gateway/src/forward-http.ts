import {
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import {
  announcesBody,
  CONTEXT_HEADER,
  createRequestSigner,
  encodeContext,
  INTERNAL_HEADER_PREFIX,
  type RequestContext,
  type RequestSigner,
  SIGNATURE_HEADER,
} from '@angos/http';
import { injectContext, type Logger, TRACE_HEADERS, tracingActive } from '@angos/observability';
import { BulkReadAgent } from './bulk-read-agent.js';
import type { Forwarder } from './forwarder.js';
import { sendUpstreamUnavailable } from './upstream-error.js';

export interface HttpUpstreamOptions {
  /** Base URL of registry-api (`http://registry-api:8000`). */
  readonly url: string;
  /** `[services] internal_token`: the signing key of every forwarded request is derived from it. */
  readonly internalToken: string;
  readonly logger: Logger;
  /** How long establishing a connection may take before the request fails with 502. */
  readonly connectTimeoutMs?: number;
  /** Concurrent connections to the upstream. */
  readonly maxSockets?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_SOCKETS = 1024;

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus Expect: Node already answered it. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
]);

/**
 * The client's credentials: the gateway has used them, and registry-api needs only the identity it
 * receives in the signed context. Forwarding them would hand a password or token to one more
 * process (and its logs) for nothing. (Proxy-Authorization is hop-by-hop above.)
 */
const CLIENT_CREDENTIALS = new Set(['authorization', 'cookie']);

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const value = headers.connection;
  if (value === undefined) return new Set();
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()));
}

function endToEndHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionTokens(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function requestHeaders(
  req: IncomingMessage,
  sign: RequestSigner,
  context: RequestContext,
): OutgoingHttpHeaders {
  const headers = endToEndHeaders(req.headers);
  for (const name of Object.keys(headers)) {
    // The gateway strips these on entry; this keeps the forwarder safe on its own.
    if (name.startsWith(INTERNAL_HEADER_PREFIX) || CLIENT_CREDENTIALS.has(name)) delete headers[name];
  }
  // A body of unknown length is re-chunked: Node frames it once the header says so.
  if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] === undefined) {
    headers['transfer-encoding'] = 'chunked';
  }
  if (tracingActive()) {
    // registry-api continues the gateway's span, not the client's: the client's trace is already
    // continued here. Outside the signature on purpose: a trace context grants nothing (a client
    // chooses its own), and an attacker who could rewrite it on the internal hop could rewrite
    // the unsigned body too. Without tracing here the client's headers pass through unchanged.
    for (const name of TRACE_HEADERS) delete headers[name];
    injectContext(headers);
  }
  const encoded = encodeContext(context);
  headers[CONTEXT_HEADER] = encoded;
  // Signed over the target registry-api routes on, without registry_api_url's path prefix (a proxy
  // in between may strip it). Signed now, not when a connection frees up: a request that waits for
  // one longer than the signature window is refused.
  headers[SIGNATURE_HEADER] = sign(req.method ?? 'GET', req.url ?? '/', encoded);
  return headers;
}

/**
 * Forwards to registry-api over HTTP for the split deployment. Bodies stream both ways without
 * buffering; whichever side goes away first, the other is torn down. Location headers are relative
 * paths (registry-api never writes its own host), so they pass unchanged.
 */
export function createHttpForwarder(options: HttpUpstreamOptions): Forwarder {
  const base = new URL(options.url);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new Error(`registry_api_url must be http or https: ${options.url}`);
  }
  const secure = base.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
    scheduling: 'lifo' as const,
  };
  const agent = secure ? new HttpsAgent(agentOptions) : new BulkReadAgent(agentOptions);
  const pathPrefix = base.pathname.replace(/\/+$/, '');
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const { logger } = options;
  const sign = createRequestSigner(options.internalToken);

  return (req: IncomingMessage, res: ServerResponse, context: RequestContext) =>
    new Promise<void>((resolve) => {
      const upstream = send({
        protocol: base.protocol,
        hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: base.port,
        method: req.method,
        path: pathPrefix + (req.url ?? '/'),
        headers: requestHeaders(req, sign, context),
        agent,
      });

      upstream.on('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => upstream.destroy(new Error(`connect timeout after ${connectTimeoutMs} ms`)),
          connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });

      upstream.on('response', (upstreamRes) => {
        res.writeHead(
          upstreamRes.statusCode ?? 502,
          upstreamRes.statusMessage,
          endToEndHeaders(upstreamRes.headers),
        );
        // pipe rather than pipeline: pipeline allocates an AbortController per call and aborts it
        // (a DOMException with a stack trace) when done, ~10% of the gateway's CPU per request.
        // The client going away is handled by res' close listener below.
        upstreamRes.once('error', () => {
          // The upstream failed mid-body: the client must see a truncated response, not a short one.
          upstream.destroy();
          res.destroy();
        });
        upstreamRes.pipe(res);
      });

      upstream.on('error', (error) => {
        // Whatever the client still sends has nowhere to go: discard it so the connection stays usable.
        req.unpipe(upstream);
        req.resume();
        // Once the response has started, the response pipeline completes it or cuts it.
        if (res.headersSent) return;
        if (!res.destroyed) {
          logger.warn('upstream request failed', { upstream: options.url, error });
          sendUpstreamUnavailable(res, !req.complete);
        }
        resolve();
      });

      // The client went away (or the response is done): release the upstream request with it.
      res.once('close', () => {
        if (!res.writableFinished) upstream.destroy();
        resolve();
      });

      if (announcesBody(req)) {
        req.pipe(upstream);
      } else {
        // Nothing to stream (most requests: GET, HEAD, DELETE): end at once instead of piping.
        upstream.end();
        req.resume();
      }
    });
}
