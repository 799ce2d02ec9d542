import type { Logger, Metrics } from '@angos/observability';
import { actionFor, parseRoute } from '@angos/oci';
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
 * access policies use), the service endpoint's name, or `unknown`; never the raw path, so the
 * number of series stays bounded whatever clients send.
 */
export function routeLabel(pathname: string, method: string, query: URLSearchParams): string {
  const service = SERVICE_ROUTES[pathname];
  if (service !== undefined) return service;
  const route = parseRoute(pathname);
  return (route && actionFor(route, method, query)) ?? UNKNOWN_ROUTE;
}

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
}

/**
 * Request metrics (in flight, count, duration), the request id (assigned, echoed in
 * `X-Request-Id`) and the access log: one `info` line per request on the `angos::access` target,
 * written when the response ends.
 */
export function withObservability(handler: Handler, options: ObservabilityOptions): Handler {
  const { requestsTotal, requestDuration, requestsInFlight } = options.metrics.http;
  const { service } = options;
  const access = options.logger.child(ACCESS_LOG_TARGET);
  // The filter is fixed for a logger's life: decided once, not per request.
  const logging = access.isEnabled('info');

  return (req, res) => {
    const started = performance.now();
    const path = requestPath(req);
    const route = routeLabel(path, req.method ?? '', requestQuery(req));
    const method = methodLabel(req.method);
    const requestId = assignRequestId(req, res);
    requestsInFlight.inc();

    res.once('close', () => {
      requestsInFlight.dec();
      const milliseconds = performance.now() - started;
      const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED_STATUS;
      requestsTotal.inc({ method, route, status: String(status) });
      requestDuration.observe({ method, route }, milliseconds);
      if (!logging) return;
      const context = getContext(req);
      access.info('request', {
        request_id: requestId,
        service,
        method: req.method,
        path,
        status,
        bytes_in: bytesIn(req.socket),
        bytes_out: bytesOut(req.socket),
        duration_ms: Math.round(milliseconds * 1e3) / 1e3,
        auth: authMethod(context.identity),
        identity: identityName(context.identity),
        client_ip: context.clientIp,
      });
    });

    return handler(req, res);
  };
}
