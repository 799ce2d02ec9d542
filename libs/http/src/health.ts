import type { Logger, Metrics } from '@angos/observability';
import { OciError } from '@angos/oci';
import { type Handler, requestPath } from './handler.js';
import { sendBody, sendError, sendText } from './respond.js';

export interface HealthOptions {
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Readiness of the service; ready when absent. A throw counts as not ready. */
  readonly ready?: () => boolean | Promise<boolean>;
}

const READ_METHODS = 'GET, HEAD';

const SERVICE_ENDPOINTS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** `/healthz`, `/readyz` and `/metrics`: the endpoints operators use, served outside the OCI API. */
export function isServiceEndpoint(path: string): boolean {
  return SERVICE_ENDPOINTS.has(path);
}

/**
 * Serves `/healthz` (alive), `/readyz` (ready for traffic, 503 otherwise) and `/metrics`
 * (Prometheus text) in front of `next`, which gets every other request.
 */
export function healthHandler(next: Handler, options: HealthOptions): Handler {
  const { metrics, logger, ready } = options;

  const readiness = async (): Promise<boolean> => {
    if (ready === undefined) return true;
    try {
      return await ready();
    } catch (error) {
      logger.warn('readiness check failed', { error });
      return false;
    }
  };

  return async (req, res) => {
    const path = requestPath(req);
    if (!isServiceEndpoint(path)) return next(req, res);

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', READ_METHODS);
      sendError(res, new OciError('METHOD_NOT_ALLOWED'), logger);
      return;
    }
    switch (path) {
      case '/healthz':
        sendText(res, 200, 'ok\n');
        return;
      case '/readyz':
        if (await readiness()) sendText(res, 200, 'ready\n');
        else sendText(res, 503, 'not ready\n');
        return;
      default: {
        const { contentType, body } = await metrics.render();
        sendBody(res, 200, contentType, body);
      }
    }
  };
}
