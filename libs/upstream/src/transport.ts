import { readFileSync } from 'node:fs';
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Writable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import type { UpstreamConfig } from '@angos/config';
import {
  injectContext,
  recordFailure,
  type Span,
  SpanKind,
  SpanStatusCode,
  tracer,
  tracingActive,
} from '@angos/observability';
import { UpstreamError, UpstreamSetupError } from './errors.js';

/** How long the client waits on an upstream. */
export interface UpstreamTimeouts {
  /** From sending a request until its response headers arrive, connecting and TLS included. */
  readonly responseMs: number;
  /** The longest silence on a connection, while waiting for headers or reading a body. */
  readonly idleMs: number;
}

export const DEFAULT_UPSTREAM_TIMEOUTS: UpstreamTimeouts = { responseMs: 30_000, idleMs: 30_000 };

/** How long a kept-alive connection may sit idle before it is closed. */
const IDLE_SOCKET_TIMEOUT_MS = 30_000;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * A request body: bytes, or a writer that streams it into the request (called once per attempt,
 * so a redirected request is sent again in full). The request is ended after it resolves.
 */
export type RequestBody = Buffer | ((request: Writable) => Promise<void>);

export interface SendOptions {
  /** GET and HEAD for pulls; replication also pushes (POST, PUT, PATCH) and deletes. */
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  readonly body?: RequestBody | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The `Authorization` header, sent to `url`'s origin only: a redirect to another origin (blob
   * GETs are commonly redirected to object storage with a signed URL) goes without it.
   */
  readonly authorization?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

interface TlsFiles {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

function readPem(
  config: UpstreamConfig,
  option: 'server_ca_bundle' | 'client_certificate' | 'client_private_key',
) {
  const path = config[option];
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UpstreamSetupError(
      option,
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/**
 * HTTP to one upstream: keep-alive connections, its TLS settings, timeouts, redirects up to
 * `max_redirect`, and every failure to get an answer as an `unavailable` UpstreamError.
 *
 * The upstream's own origin is spoken to with `server_ca_bundle` as the only trusted CA and with
 * the client certificate. Any other origin (a token realm elsewhere, object storage a blob GET is
 * redirected to) gets no client certificate, and trusts the public CAs plus `server_ca_bundle`.
 */
export class Transport {
  private readonly origin: string;
  private readonly upstreamAgent: HttpAgent | HttpsAgent;
  private readonly foreignHttp: HttpAgent;
  private readonly foreignHttps: HttpsAgent;

  constructor(
    private readonly config: UpstreamConfig,
    private readonly timeouts: UpstreamTimeouts,
  ) {
    const url = new URL(config.url);
    this.origin = url.origin;
    const tls: TlsFiles = {
      ...optional('ca', readPem(config, 'server_ca_bundle')),
      ...optional('cert', readPem(config, 'client_certificate')),
      ...optional('key', readPem(config, 'client_private_key')),
    };
    // Idle connections close on their own, so a client replaced by a reload needs no teardown
    // that could cut a transfer still in flight.
    const pool = { keepAlive: true, maxSockets: 256, timeout: IDLE_SOCKET_TIMEOUT_MS };
    this.upstreamAgent = url.protocol === 'http:' ? new HttpAgent(pool) : new HttpsAgent({ ...pool, ...tls });
    this.foreignHttp = new HttpAgent(pool);
    this.foreignHttps = new HttpsAgent({
      ...pool,
      ...(tls.ca === undefined ? {} : { ca: [...rootCertificates, tls.ca.toString('utf8')] }),
    });
  }

  /**
   * Sends a request and follows redirects, up to `max_redirect`. Resolves with the final answer
   * whatever its status; rejects with an `unavailable` UpstreamError when no answer comes (or with
   * the AbortError when `signal` aborts).
   */
  async send(options: SendOptions): Promise<IncomingMessage> {
    const authorizedOrigin = options.url.origin;
    let url = options.url;
    for (let redirects = 0; ; redirects++) {
      const headers =
        options.authorization !== undefined && url.origin === authorizedOrigin
          ? { ...options.headers, authorization: options.authorization }
          : options.headers;
      const response = await this.once(options.method, url, headers, options.signal, options.body);
      if (!REDIRECT_STATUSES.has(response.statusCode ?? 0)) return response;
      response.resume();
      const location = response.headers.location;
      if (location === undefined) {
        throw this.error(
          'invalid-response',
          `${url.host} answered ${response.statusCode} without a Location`,
        );
      }
      if (redirects >= this.config.max_redirect) {
        throw this.error(
          'unavailable',
          `more than max_redirect (${this.config.max_redirect}) redirects from ${url.host}`,
        );
      }
      try {
        url = new URL(location, url);
      } catch {
        throw this.error('invalid-response', `${url.host} redirected to an invalid URL`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw this.error('invalid-response', `${options.url.host} redirected to a ${url.protocol} URL`);
      }
    }
  }

  /** Closes every connection, in flight or idle: for shutdown. */
  close(): void {
    this.upstreamAgent.destroy();
    this.foreignHttp.destroy();
    this.foreignHttps.destroy();
  }

  /** An UpstreamError of this upstream. */
  error(
    kind: UpstreamError['kind'],
    message: string,
    details: Omit<ConstructorParameters<typeof UpstreamError>[2], 'upstream'> = {},
  ) {
    return new UpstreamError(kind, message, { ...details, upstream: this.config.url });
  }

  /**
   * A failure while `doing` something as the error to throw: an UpstreamError or AbortError as it
   * is, anything else (a socket or TLS error, a body cut short) as `unavailable`.
   */
  failure(error: unknown, doing: string): Error {
    if (error instanceof UpstreamError) return error;
    if (error instanceof Error && error.name === 'AbortError') return error;
    const { code, message } = error as NodeJS.ErrnoException;
    const reason = code === undefined || message.includes(code) ? message : `${code} (${message})`;
    return this.error('unavailable', `${doing}: ${reason}`, { cause: error });
  }

  private agentFor(url: URL): HttpAgent | HttpsAgent {
    if (url.origin === this.origin) return this.upstreamAgent;
    return url.protocol === 'https:' ? this.foreignHttps : this.foreignHttp;
  }

  /**
   * One request, in a client span of its own when tracing is on (the pull-through fill, a
   * replication push), with its `traceparent` sent along so the upstream or downstream registry
   * can continue the trace. The span ends when the response headers arrive: the body streams on.
   */
  private once(
    method: string,
    url: URL,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal | undefined,
    body?: RequestBody,
  ): Promise<IncomingMessage> {
    if (!tracingActive()) return this.sendOnce(method, url, headers, signal, body);
    return tracer().startActiveSpan(
      `${method} ${url.host}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': method,
          'server.address': url.hostname,
          'url.full': `${url.origin}${url.pathname}`,
        },
      },
      (span: Span) => {
        const traced: Record<string, string> = { ...headers };
        injectContext(traced);
        return this.sendOnce(method, url, traced, signal, body).then(
          (response) => {
            const status = response.statusCode ?? 0;
            span.setAttribute('http.response.status_code', status);
            if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
            span.end();
            return response;
          },
          (error: unknown) => {
            recordFailure(span, error);
            span.end();
            throw error;
          },
        );
      },
    );
  }

  private sendOnce(
    method: string,
    url: URL,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal | undefined,
    body?: RequestBody,
  ): Promise<IncomingMessage> {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let response: IncomingMessage | undefined;
      let request: ClientRequest;
      try {
        request = send(url, { method, headers, agent: this.agentFor(url), ...(signal ? { signal } : {}) });
      } catch (error) {
        reject(this.failure(error, `cannot reach ${url.host}`));
        return;
      }
      const deadline = setTimeout(() => {
        request.destroy(
          this.error('unavailable', `no answer from ${url.host} within ${this.timeouts.responseMs} ms`),
        );
      }, this.timeouts.responseMs);
      request.setTimeout(this.timeouts.idleMs, () => {
        const error = this.error('unavailable', `${url.host} silent for ${this.timeouts.idleMs} ms`);
        if (response === undefined) request.destroy(error);
        else response.destroy(error);
      });
      request.on('response', (res) => {
        clearTimeout(deadline);
        response = res;
        resolve(res);
      });
      // Kept after the response too: a late socket error must not go unhandled.
      request.on('error', (error) => {
        clearTimeout(deadline);
        reject(this.failure(error, `cannot reach ${url.host}`));
      });
      if (body === undefined || Buffer.isBuffer(body)) {
        request.end(body);
        return;
      }
      body(request).then(
        () => request.end(),
        (error: unknown) => request.destroy(error instanceof Error ? error : new Error(String(error))),
      );
    });
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** The first value of a response header. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Reads a response body of at most `limit` bytes. Over the limit (declared or actual) it throws
 * `invalid-response` and drops the connection; a body cut short throws `unavailable`.
 */
export async function readBody(
  transport: Transport,
  response: IncomingMessage,
  limit: number,
  what: string,
): Promise<Buffer> {
  const declared = Number(header(response.headers, 'content-length') ?? Number.NaN);
  const tooLarge = () => {
    response.destroy();
    return transport.error('invalid-response', `${what} is larger than ${limit} bytes`);
  };
  if (declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of response) {
      length += (chunk as Buffer).length;
      if (length > limit) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    throw transport.failure(error, `reading ${what}`);
  }
  return Buffer.concat(chunks, length);
}
