import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AuthWebhookConfig } from '@angos/config';
import { injectContext, inSpan, type Logger, SpanKind, tracingActive } from '@angos/observability';
import type { AuthCache } from '../cache/types.js';
import type { Identity } from '../identity.js';
import type { AuthMetrics } from '../metrics.js';
import type { AccessRequest } from '../request.js';
import { type ClientRequestDetails, webhookCredentials, webhookHeaders } from './headers.js';

export type WebhookDecision = 'allow' | 'deny';

/** How long a kept-alive connection to a webhook may sit idle. */
const IDLE_SOCKET_TIMEOUT_MS = 30_000;

/** A webhook's TLS files could not be read: a configuration problem, reported at load. */
export class WebhookSetupError extends Error {
  override readonly name = 'WebhookSetupError';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
  }
}

function readPem(
  config: AuthWebhookConfig,
  option: 'server_ca_bundle' | 'client_certificate_bundle' | 'client_private_key',
) {
  const path = config[option];
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw new WebhookSetupError(
      option,
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/**
 * Keep-alive connections to the webhook, with its CA and client certificate when it has them.
 * Throws WebhookSetupError when a TLS file cannot be read.
 */
export function createWebhookAgent(config: AuthWebhookConfig): HttpAgent | HttpsAgent {
  const url = new URL(config.url);
  // Idle connections close on their own, so a client replaced by a reload needs no teardown that
  // could cut a call still in flight.
  const options = { keepAlive: true, maxSockets: 256, timeout: IDLE_SOCKET_TIMEOUT_MS };
  if (url.protocol === 'http:') return new HttpAgent(options);
  const ca = readPem(config, 'server_ca_bundle');
  const cert = readPem(config, 'client_certificate_bundle');
  const key = readPem(config, 'client_private_key');
  return new HttpsAgent({
    ...options,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  });
}

type Outcome =
  | { readonly kind: 'status'; readonly status: number }
  | { readonly kind: 'failed'; readonly reason: string };

/**
 * `[auth.webhook.<name>]`: asks an external service whether a request may proceed, with a GET
 * carrying the request, its identity and the `forward_headers` as headers. 2xx allows; 401 and 403
 * deny; both are cached for `cache_ttl` seconds per distinct set of headers. Anything else (another
 * status, a redirect, a timeout after `timeout_ms`, a connection or TLS error) denies and is not
 * cached: the webhook fails closed and is asked again next time.
 */
export class WebhookAuthorizer {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly url: URL;
  private readonly credentials: string | undefined;

  constructor(
    readonly name: string,
    private readonly config: AuthWebhookConfig,
    private readonly deps: {
      readonly cache: () => AuthCache;
      readonly metrics: AuthMetrics;
      readonly logger: Logger;
    },
  ) {
    this.url = new URL(config.url);
    this.agent = createWebhookAgent(config);
    this.credentials = webhookCredentials(config);
  }

  async authorize(
    identity: Identity,
    request: AccessRequest,
    client: ClientRequestDetails,
  ): Promise<WebhookDecision> {
    const headers = webhookHeaders(this.config, identity, request, client);
    const cacheKey = this.cacheKey(headers);
    if (cacheKey !== undefined) {
      const cached = await this.deps.cache().get(cacheKey);
      if (cached === 'allow' || cached === 'deny') {
        this.deps.metrics.webhookDecision(this.name, cached === 'allow' ? 'cached_allow' : 'cached_deny');
        return cached;
      }
    }

    if (this.credentials !== undefined) headers['authorization'] = this.credentials;
    const started = performance.now();
    const outcome = tracingActive() ? await this.tracedCall(headers, request) : await this.call(headers);
    this.deps.metrics.webhookDuration(this.name, (performance.now() - started) / 1000);

    if (outcome.kind === 'failed' || !isDecisive(outcome.status)) {
      this.deps.metrics.webhookDecision(this.name, 'error');
      this.deps.logger.warn('authorization webhook failed, denying', {
        webhook: this.name,
        action: request.action,
        namespace: request.namespace,
        ...(outcome.kind === 'failed' ? { reason: outcome.reason } : { status: outcome.status }),
      });
      return 'deny';
    }
    const decision: WebhookDecision = outcome.status < 300 ? 'allow' : 'deny';
    this.deps.metrics.webhookDecision(this.name, decision);
    if (cacheKey !== undefined) await this.deps.cache().set(cacheKey, decision, this.config.cache_ttl);
    return decision;
  }

  /** Closes every connection, in flight or idle: for shutdown. */
  close(): void {
    this.agent.destroy();
  }

  /** Decisions are cached per webhook definition and exact request context; undefined when caching is off. */
  private cacheKey(headers: Record<string, string>): string | undefined {
    if (this.config.cache_ttl === 0) return undefined;
    const context = Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const digest = createHash('sha256')
      .update(JSON.stringify([this.name, this.config.url, this.credentials ?? '', context]))
      .digest('hex');
    return `auth:webhook:${digest}`;
  }

  /** The call in a client span, its `traceparent` sent (after the cache key: it changes per request). */
  private tracedCall(headers: Record<string, string>, request: AccessRequest): Promise<Outcome> {
    const attributes = { 'angos.webhook': this.name, 'angos.action': request.action };
    return inSpan(
      `authorization webhook ${this.name}`,
      { kind: SpanKind.CLIENT, attributes },
      async (span) => {
        injectContext(headers);
        const outcome = await this.call(headers);
        if (outcome.kind === 'status') span.setAttribute('http.response.status_code', outcome.status);
        else span.setAttribute('error.type', outcome.reason);
        return outcome;
      },
    );
  }

  private call(headers: Record<string, string>): Promise<Outcome> {
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(outcome);
      };
      let req: ReturnType<typeof send>;
      try {
        req = send(this.url, { method: 'GET', headers, agent: this.agent });
      } catch (error) {
        finish({ kind: 'failed', reason: (error as Error).message });
        return;
      }
      timer = setTimeout(() => {
        finish({ kind: 'failed', reason: `no answer within ${this.config.timeout_ms} ms` });
        req.destroy();
      }, this.config.timeout_ms);
      req.on('response', (res: IncomingMessage) => {
        // Only the status matters; the body is read and dropped so the connection can be reused.
        res.resume();
        finish({ kind: 'status', status: res.statusCode ?? 0 });
      });
      req.on('error', (error) => finish({ kind: 'failed', reason: error.message }));
      req.end();
    });
  }
}

function isDecisive(status: number): boolean {
  return (status >= 200 && status < 300) || status === 401 || status === 403;
}
