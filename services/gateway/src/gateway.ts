import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import {
  type AccessRequest,
  type Auth,
  AuthenticationRefused,
  type ClientRequestDetails,
  describeRequest,
  type Identity,
  isAuthenticated,
  mountFallbackRequest,
  mountSourceRequest,
  normalizeClientIp,
} from '@angos/auth';
import type { Config } from '@angos/config';
import {
  announcesBody,
  type Handler,
  healthHandler,
  type RequestContext,
  requestPath,
  requestQuery,
  sendBody,
  sendError,
  setContext,
  stripInternalHeaders,
} from '@angos/http';
import type { Logger, Metrics } from '@angos/observability';
import {
  type Action,
  allowedMethods,
  errorBody,
  isApiPath,
  isServedByRegistryApi,
  isValidNamespace,
  OciError,
  parseRoute,
  type Route,
  UI_ASSET_ACTION,
  UI_METHODS,
} from '@angos/oci';
import { createHttpForwarder } from './forward-http.js';
import { type Forwarder, inProcessForwarder } from './forwarder.js';
import { contextIdentity } from './identity-context.js';
import { mirroredRoute } from './mirror.js';
import { honouredSourceTimestamp, takeSourceTimestamp } from './source-timestamp.js';

export type Upstream =
  | { readonly kind: 'in-process'; readonly handler: Handler }
  | { readonly kind: 'http'; readonly url: string; readonly internalToken: string };

/** Where the namespaces of pull-through repositories go instead of registry-api. */
export interface PullThroughRoute {
  /** True when `namespace` lies under a repository with upstreams; asked per request, so reloads apply. */
  handles(namespace: string): boolean;
  readonly upstream: Upstream;
}

export interface GatewayDeps {
  /** Authentication and authorization (`createAuth` of @angos/auth), following configuration reloads. */
  readonly auth: Auth;
  /** The configuration now (containerd's `?ns=` mirror mapping reads the repositories). */
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** registry-api: every request but those of pull-through namespaces. */
  readonly upstream: Upstream;
  /** The pull-through cache service; absent when the process serves no pull-through repository. */
  readonly pullThroughCache?: PullThroughRoute | undefined;
  /** Readiness for /readyz (ready when absent). */
  readonly ready?: () => boolean | Promise<boolean>;
}

/** The challenge docker, podman and skopeo answer with `login` credentials. */
export const AUTHENTICATE_CHALLENGE = 'Basic realm="Angos"';

/** Distribution sets it on every /v2 response; clients use it to recognise a v2 registry. */
const API_VERSION_HEADER = ['docker-distribution-api-version', 'registry/2.0'] as const;

/**
 * What a pull-through namespace refuses whoever asks (405 UNSUPPORTED): its content comes from its
 * upstreams only, so it takes no push and no delete. Answered before authentication, so that a
 * policy refusing writes does not turn the answer into 401 or 403 and clients are not sent to log
 * in for something no login allows.
 */
const WRITE_ACTIONS: ReadonlySet<Action> = new Set<Action>([
  'start-upload',
  'mount-blob',
  'update-upload',
  'complete-upload',
  'get-upload',
  'cancel-upload',
  'put-manifest',
  'delete-manifest',
  'delete-blob',
]);

/**
 * The listings that span namespaces. registry-api shows only the namespaces the caller may read
 * (`list-namespaces` judged per namespace, by the same policies through @angos/auth), so it
 * receives the caller as policies see it.
 */
const CROSS_NAMESPACE_LISTINGS: ReadonlySet<Action> = new Set<Action>([
  'list-namespaces',
  'list-repositories',
]);

const PULL_THROUGH_IS_READ_ONLY = 'a pull-through cache namespace is read-only';

/**
 * A path outside the API with `[ui] enabled`: the web UI's files (`ui-asset`), GET and HEAD only.
 * With the UI disabled the path is unknown, answered before authentication as it always was.
 */
function describeUiRequest(
  req: IncomingMessage,
  res: ServerResponse,
  config: Config,
): AccessRequest | OciError {
  if (!config.ui.enabled) return new OciError('ROUTE_UNKNOWN');
  const method = req.method ?? '';
  if (UI_METHODS.includes(method)) return { action: UI_ASSET_ACTION };
  res.setHeader('allow', UI_METHODS.join(', '));
  return new OciError('METHOD_NOT_ALLOWED', { method });
}

function forwarderFor(upstream: Upstream, logger: Logger): Forwarder {
  return upstream.kind === 'in-process'
    ? inProcessForwarder(upstream.handler)
    : createHttpForwarder({ url: upstream.url, internalToken: upstream.internalToken, logger });
}

function namespaceOf(route: Route): string | undefined {
  return 'namespace' in route ? route.namespace : undefined;
}

function hasUnreadBody(req: IncomingMessage): boolean {
  return !req.complete && announcesBody(req);
}

function clientDetails(req: IncomingMessage): ClientRequestDetails {
  return {
    method: req.method ?? '',
    uri: req.url ?? '/',
    host: req.headers.host ?? '',
    proto: (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http',
    headers: req.headers,
  };
}

/**
 * What a request asks, or why it cannot be asked at all. A request the gateway cannot describe
 * never reaches authorization or registry-api: an invalid name (encoded `/` or `..`, upper case,
 * empty components) could otherwise slip past a policy written for the real name.
 */
function describe(
  req: IncomingMessage,
  res: ServerResponse,
  route: Route | undefined,
  query: URLSearchParams,
): AccessRequest | OciError {
  if (route === undefined) return new OciError('ROUTE_UNKNOWN');
  const namespace = namespaceOf(route);
  if (namespace !== undefined && !isValidNamespace(namespace)) return new OciError('NAME_INVALID');
  const method = req.method ?? '';
  const request = describeRequest(route, method, query);
  if (request !== undefined) return request;
  const allowed = allowedMethods(route);
  if (allowed === undefined) return new OciError('ROUTE_UNKNOWN');
  res.setHeader('allow', allowed.join(', '));
  return new OciError('METHOD_NOT_ALLOWED', { method });
}

/**
 * The public edge: health and metrics endpoints, then for everything under /v2 (and, with
 * `[ui] enabled`, the web UI's paths: action `ui-asset`) authentication (mTLS, OIDC, basic),
 * authorization (global policy, repository policy, webhook) and forwarding to registry-api with
 * what was decided. Clients can never speak the internal trust headers.
 * Refusals: an anonymous caller gets 401 with a Basic challenge (so clients log in); an
 * authenticated one that is not allowed gets 403 DENIED.
 */
export function buildGateway(deps: GatewayDeps): Handler {
  const { logger, auth } = deps;
  const forwardToApi = forwarderFor(deps.upstream, logger);
  const cache = deps.pullThroughCache;
  const forwardToCache = cache && forwarderFor(cache.upstream, logger);
  /** The service of a namespace: the pull-through cache for its namespaces, registry-api otherwise. */
  const isCached = (namespace: string | undefined) =>
    cache !== undefined && namespace !== undefined && cache.handles(namespace);

  const refuse = (
    req: IncomingMessage,
    res: ServerResponse,
    identity: Identity,
    request: AccessRequest,
    detail: string,
  ) => {
    // A refused upload's body is not read: closing the connection spares both sides sending it.
    if (hasUnreadBody(req)) res.setHeader('connection', 'close');
    logger.info('access denied', {
      action: request.action,
      namespace: request.namespace,
      decided_by: detail,
      client_ip: identity.client_ip,
      username: identity.username,
      oidc_provider: identity.oidc?.provider_name,
      certificate_cn: identity.certificate?.common_names,
    });
    if (isAuthenticated(identity)) {
      sendError(res, new OciError('DENIED'), logger);
    } else {
      res.setHeader('www-authenticate', AUTHENTICATE_CHALLENGE);
      sendError(res, new OciError('UNAUTHORIZED'), logger);
    }
  };

  /**
   * Authentication declined to check the password (429: the address failed too often lately;
   * 503: too many checks waiting). Answered here rather than by sendError: under a flood these
   * are expected, and a 503 must not log an error with a stack for each.
   */
  const refuseAuthentication = (req: IncomingMessage, res: ServerResponse, error: AuthenticationRefused) => {
    const clientIp = normalizeClientIp(req.socket.remoteAddress);
    setContext(req, { clientIp });
    logger.info('authentication refused', {
      reason: error.message,
      status: error.status,
      client_ip: clientIp,
    });
    const headers: Record<string, string> = { 'retry-after': String(error.retryAfterSeconds) };
    if (hasUnreadBody(req)) headers['connection'] = 'close';
    sendBody(res, error.status, 'application/json', errorBody([error]), headers);
  };

  /** A cross-repository mount also needs `get-blob` on its source; refused, the registry opens a plain upload. */
  const mountSources = async (identity: Identity, request: AccessRequest, client: ClientRequestDetails) => {
    const source = mountSourceRequest(request);
    if (source === undefined || source.namespace === undefined) return undefined;
    const authorization = await auth.authorize(identity, source, client);
    return authorization.decision === 'allow' ? [source.namespace] : undefined;
  };

  const api: Handler = async (req, res) => {
    const path = requestPath(req);
    let request: AccessRequest | OciError;
    let route: Route | undefined;
    if (isApiPath(path)) {
      res.setHeader(...API_VERSION_HEADER);
      const query = requestQuery(req);
      route = mirroredRoute(req, path, query, parseRoute(path), deps.config());
      request = describe(req, res, route, query);
    } else {
      request = describeUiRequest(req, res, deps.config());
    }
    if (request instanceof OciError) {
      sendError(res, request, logger);
      return;
    }
    // The extension API reads the store for every namespace: registry-api answers, never the cache.
    const cached = route !== undefined && !isServedByRegistryApi(route) && isCached(request.namespace);
    if (cached && WRITE_ACTIONS.has(request.action)) {
      if (hasUnreadBody(req)) res.setHeader('connection', 'close');
      sendError(
        res,
        new OciError('UNSUPPORTED', { namespace: request.namespace }, PULL_THROUGH_IS_READ_ONLY),
        logger,
      );
      return;
    }

    let identity: Identity;
    try {
      identity = await auth.authenticate(req);
    } catch (error) {
      if (!(error instanceof AuthenticationRefused)) throw error;
      refuseAuthentication(req, res, error);
      return;
    }
    const forwardedIdentity = contextIdentity(identity);
    // Known from here on for the access log, refused requests included; a forwarded request's
    // context (with its mount sources) replaces it below.
    const authenticated: RequestContext = {
      clientIp: identity.client_ip,
      ...(forwardedIdentity === undefined ? {} : { identity: forwardedIdentity }),
    };
    setContext(req, authenticated);
    const client = clientDetails(req);
    const authorization = await auth.authorize(identity, request, client);
    if (authorization.decision === 'deny') {
      refuse(req, res, identity, request, authorization.detail);
      return;
    }
    // A mount that cannot mount becomes an upload: it needs the right to upload as well.
    const fallback = mountFallbackRequest(request);
    if (fallback !== undefined) {
      const upload = await auth.authorize(identity, fallback, client);
      if (upload.decision === 'deny') {
        refuse(req, res, identity, fallback, upload.detail);
        return;
      }
    }

    const mountAllowedFrom = await mountSources(identity, request, client);
    const sourceTimestamp = await honouredSourceTimestamp(req, deps, identity, request, client);
    const context: RequestContext = {
      ...authenticated,
      ...(mountAllowedFrom === undefined ? {} : { mountAllowedFrom }),
      ...(sourceTimestamp === undefined ? {} : { sourceTimestamp }),
      ...(CROSS_NAMESPACE_LISTINGS.has(request.action) ? { policyIdentity: identity } : {}),
    };
    return cached && forwardToCache !== undefined
      ? forwardToCache(req, res, context)
      : forwardToApi(req, res, context);
  };

  const withHealth = healthHandler(api, {
    metrics: deps.metrics,
    logger,
    ...(deps.ready === undefined ? {} : { ready: deps.ready }),
  });
  return (req, res) => {
    takeSourceTimestamp(req);
    stripInternalHeaders(req);
    return withHealth(req, res);
  };
}
