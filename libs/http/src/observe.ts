import type { IncomingMessage } from 'node:http';
import {
  type Context,
  extractContext,
  type Logger,
  type Metrics,
  SpanKind,
  SpanStatusCode,
  tracer,
  tracingActive,
} from '@angos/observability';
import { actionFor, isApiPath, parseRoute, UI_ASSET_ACTION, UI_METHODS } from '@angos/oci';
import { context, trace } from '@opentelemetry/api';
import { ACCESS_LOG_TARGET, authMethod, bytesIn, bytesOut, identityName } from './access-log.js';
import { getContext } from './context.js';
import { type Handler, requestPath, requestQuery } from './handler.js';
import { assignRequestId } from './request-id.js';

/** Endpoints served outside the OCI API, labelled by their name (`healthz`, `readyz`, `metrics`). */
const SERVICE_ROUTES: Readonly<Record<string, string>> = {
  '/healthz': 'healthz',
  '/readyz': 'readyz',
  '/metrics': 'metrics',
};

/** A path no route matches, or a method its route does not allow. */
const UNKNOWN_ROUTE = 'unknown';

/**
 * The `route` label: the action the request performs (`get-manifest`, `start-upload`… the names
 * access policies use; `ui-asset` for a page or file of the web UI while `webUi`), the service
 * endpoint's name, or `unknown`; never the raw path, so the number of series stays bounded
 * whatever clients send.
 */
export function routeLabel(
  pathname: string,
  method: string,
  query: URLSearchParams,
  options: { readonly webUi?: boolean } = {},
): string {
  const service = SERVICE_ROUTES[pathname];
  if (service !== undefined) return service;
  if (!isApiPath(pathname)) {
    return options.webUi && UI_METHODS.includes(method) ? UI_ASSET_ACTION : UNKNOWN_ROUTE;
  }
  const route = parseRoute(pathname);
  return (route && actionFor(route, method, query)) ?? UNKNOWN_ROUTE;
}

/** The route labels of SERVICE_ROUTES: no server span for them. */
const UNTRACED_ROUTES: ReadonlySet<string> = new Set(Object.values(SERVICE_ROUTES));

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS']);

/** Any other method (clients can send arbitrary tokens) is counted as `other`. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'other';
}

/** nginx's "client closed request": the connection ended before the response was complete. */
export const CLIENT_CLOSED_STATUS = 499;

export interface ObservabilityOptions {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Which service answered, for the access log (`server`, `gateway`, `registry-api`). */
  readonly service: string;
  /**
   * Whether the web UI is on now (`[ui] enabled`, read per request: a reload may turn it on or
   * off): its paths are then counted as `ui-asset`, not `unknown`. Default: off.
   */
  readonly webUi?: () => boolean;
}

/**
 * Request metrics (in flight, count, duration), the request id (assigned, echoed in
 * `X-Request-Id`) and the access log: one `info` line per request on the `angos::access` target,
 * written when the response ends.
 */
export function withObservability(handler: Handler, options: ObservabilityOptions): Handler {
  const { requestsTotal, requestDuration, requestsInFlight } = options.metrics.http;
  const { service, webUi } = options;
  const access = options.logger.child(ACCESS_LOG_TARGET);
  // The filter is fixed for a logger's life: decided once, not per request.
  const logging = access.isEnabled('info');

  return (req, res) => {
    const started = performance.now();
    const path = requestPath(req);
    const route = routeLabel(path, req.method ?? '', requestQuery(req), { webUi: webUi?.() });
    const method = methodLabel(req.method);
    const requestId = assignRequestId(req, res);
    requestsInFlight.inc();

    const logAccess = (status: number, milliseconds: number): void => {
      const request = getContext(req);
      access.info('request', {
        request_id: requestId,
        service,
        method: req.method,
        path,
        status,
        bytes_in: bytesIn(req.socket),
        bytes_out: bytesOut(req.socket),
        duration_ms: Math.round(milliseconds * 1e3) / 1e3,
        auth: authMethod(request.identity),
        identity: identityName(request.identity),
        client_ip: request.clientIp,
      });
    };
    // With tracing off this is all it costs: one test per request. Probes and scrapes are not
    // traced: a trace every few seconds per replica would bury the requests.
    const traced =
      tracingActive() && !UNTRACED_ROUTES.has(route)
        ? startServerSpan(req, method, route, path, requestId)
        : undefined;

    res.once('close', () => {
      requestsInFlight.dec();
      const milliseconds = performance.now() - started;
      const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED_STATUS;
      requestsTotal.inc({ method, route, status: String(status) });
      requestDuration.observe({ method, route }, milliseconds);
      if (traced !== undefined) endServerSpan(traced, status);
      if (!logging) return;
      // In the request's span, so the access line carries its trace id.
      if (traced === undefined) logAccess(status, milliseconds);
      else context.with(traced, () => logAccess(status, milliseconds));
    });

    if (traced !== undefined) return context.with(traced, () => handler(req, res));
    return handler(req, res);
  };
}

/**
 * The server span of one request, continuing the caller's `traceparent` (a client's, or the
 * gateway's on the internal hop), named by its action (`put-manifest`, the `route` label): the
 * path would make every repository a span name of its own.
 */
function startServerSpan(
  req: IncomingMessage,
  method: string,
  route: string,
  path: string,
  requestId: string,
): Context {
  const parent = extractContext(req.headers, context.active());
  const span = tracer().startSpan(
    route,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        'http.route': route,
        'url.path': path,
        'angos.request_id': requestId,
      },
    },
    parent,
  );
  return trace.setSpan(parent, span);
}

function endServerSpan(traced: Context, status: number): void {
  const span = trace.getSpan(traced);
  if (span === undefined) return;
  span.setAttribute('http.response.status_code', status);
  // Server spans fail on 5xx only: a 4xx is the client's mistake, answered as designed.
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
