import type { IncomingMessage } from 'node:http';
import { type Handler, healthHandler, requestPath, sendError, stripInternalHeaders } from '@angos/http';
import type { Logger, Metrics } from '@angos/observability';
import { OciError, parseRoute } from '@angos/oci';
import { authorize } from './authorize.js';
import { createHttpForwarder } from './forward-http.js';
import { type Forwarder, inProcessForwarder } from './forwarder.js';
import type { PolicyConfig } from './policy.js';

export type Upstream =
  | { readonly kind: 'in-process'; readonly handler: Handler }
  | { readonly kind: 'http'; readonly url: string; readonly internalToken: string };

export interface GatewayDeps {
  /** The current configuration; read per request so hot reloads apply at once. */
  readonly config: () => PolicyConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly upstream: Upstream;
  /** Readiness for /readyz (ready when absent). */
  readonly ready?: () => boolean | Promise<boolean>;
}

/** The challenge docker, podman and skopeo answer with `login` credentials. */
export const AUTHENTICATE_CHALLENGE = 'Basic realm="Angos"';

/** Distribution sets it on every /v2 response; clients use it to recognise a v2 registry. */
const API_VERSION_HEADER = ['docker-distribution-api-version', 'registry/2.0'] as const;

function isApiPath(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

function forwarderFor(upstream: Upstream, logger: Logger): Forwarder {
  return upstream.kind === 'in-process'
    ? inProcessForwarder(upstream.handler)
    : createHttpForwarder({ url: upstream.url, internalToken: upstream.internalToken, logger });
}

function isAnonymous(_req: IncomingMessage): boolean {
  // Authentication (mTLS, OIDC, basic) comes with the auth issue; until then every caller is anonymous.
  return true;
}

/**
 * The public edge: health and metrics endpoints, then for everything under /v2 authorization and
 * forwarding to registry-api. Clients can never speak the internal trust headers.
 */
export function buildGateway(deps: GatewayDeps): Handler {
  const { logger } = deps;
  const forward = forwarderFor(deps.upstream, logger);

  const api: Handler = (req, res) => {
    const path = requestPath(req);
    if (!isApiPath(path)) {
      sendError(res, new OciError('ROUTE_UNKNOWN'), logger);
      return;
    }
    const route = parseRoute(path);
    const authorization = authorize(deps.config(), req, route);
    if (authorization.outcome === 'deny') {
      res.setHeader(...API_VERSION_HEADER);
      if (isAnonymous(req)) {
        res.setHeader('www-authenticate', AUTHENTICATE_CHALLENGE);
        sendError(res, new OciError('UNAUTHORIZED'), logger);
      } else {
        sendError(res, new OciError('DENIED'), logger);
      }
      return;
    }
    return forward(req, res, authorization.context);
  };

  const withHealth = healthHandler(api, {
    metrics: deps.metrics,
    logger,
    ...(deps.ready === undefined ? {} : { ready: deps.ready }),
  });
  return (req, res) => {
    stripInternalHeaders(req);
    return withHealth(req, res);
  };
}
