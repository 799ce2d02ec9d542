import type { IncomingMessage } from 'node:http';
import type { Logger, Metrics } from '@angos/observability';
import { parseRoute } from '@angos/oci';
import { type Handler, requestPath } from './handler.js';

/** Endpoints served outside the OCI API, labelled by name. */
const SERVICE_ROUTES: Readonly<Record<string, string>> = {
  '/healthz': 'health',
  '/readyz': 'health',
  '/metrics': 'metrics',
};

/**
 * The `route` label: the kind of endpoint (`manifest`, `blob`, `upload`…), never the raw path,
 * so the number of series stays bounded whatever clients send.
 */
export function routeLabel(pathname: string): string {
  return SERVICE_ROUTES[pathname] ?? parseRoute(pathname)?.kind ?? 'other';
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

function clientIp(req: IncomingMessage): string | undefined {
  return req.socket.remoteAddress;
}

/** Request metrics (in flight, count, duration) and a debug-level access log around a handler. */
export function withObservability(handler: Handler, options: ObservabilityOptions): Handler {
  const { requestsTotal, requestDuration, requestsInFlight } = options.metrics.http;
  const { logger, service } = options;

  return (req, res) => {
    const started = performance.now();
    const path = requestPath(req);
    const route = routeLabel(path);
    const method = methodLabel(req.method);
    requestsInFlight.inc({ route });

    res.once('close', () => {
      requestsInFlight.dec({ route });
      const seconds = (performance.now() - started) / 1000;
      const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED_STATUS;
      requestsTotal.inc({ method, route, status: String(status) });
      requestDuration.observe({ method, route }, seconds);
      if (logger.isEnabled('debug')) {
        logger.debug('request completed', {
          service,
          method: req.method,
          path,
          route,
          status,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
          client_ip: clientIp(req),
        });
      }
    });

    return handler(req, res);
  };
}
