import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth } from '@angos/auth';
import type { Config } from '@angos/config';
import { actorOf, type EventDispatcher } from '@angos/events';
import {
  createInternalVerifier,
  getContext,
  type Handler,
  type NonceMemory,
  type RequestContext,
  sendError,
} from '@angos/http';
import type { JobQueue } from '@angos/jobs';
import type { Logger } from '@angos/observability';
import { allowedMethods, isApiPath, OciError, parseRoute, type Route, UI_METHODS } from '@angos/oci';
import type { Registry } from '@angos/registry';
import type { ReplicationEvents } from '@angos/replication';
import { uiAssetsDirectory } from '@angos/ui';
import { namespaceAccess } from './namespace-access.js';
import { assertNamespace, parseUrl } from './request.js';
import type { RouteContext } from './route-context.js';
import { deleteBlob, getBlob } from './routes/blobs.js';
import {
  getRevision,
  listNamespaceEntries,
  listRepositories,
  listRevisions,
  listTagDetails,
  listUploads,
  uiConfig,
} from './routes/browse.js';
import {
  deleteFailedJob,
  deletePendingJob,
  listFailedJobs,
  listPendingJobs,
  retryFailedJob,
} from './routes/jobs.js';
import { listCatalog, listReferrers, listTags } from './routes/listings.js';
import { deleteManifest, getManifest, putManifest } from './routes/manifests.js';
import { cancelUpload, completeUpload, patchUpload, startUpload, uploadStatus } from './routes/uploads.js';
import { createUiAssets, type UiAssets } from './ui-assets.js';

/**
 * How registry-api knows a request passed the gateway: in one process the
 * gateway hands it over directly; split, the gateway signs each request with a
 * key derived from the shared `[services] internal_token`.
 */
export type Trust =
  | { kind: 'in-process' }
  /** `replays`: the nonce memory shared by the service's serving threads; default: this app's own. */
  | { kind: 'internal-token'; token: string; replays?: NonceMemory | undefined };

export interface RegistryApiDeps {
  registry: Registry;
  /** The job queues on the registry's metadata store (the jobs API under `/v2/_ext/jobs/`). */
  jobs: JobQueue;
  config: () => Config;
  logger: Logger;
  trust: Trust;
  /**
   * Queues the replication of manifest pushes and deletes to the configured downstreams; without
   * it nothing is replicated (tests, tools).
   */
  replication?: ReplicationEvents | undefined;
  /**
   * Delivers the events of committed changes and served pulls to the configured event webhooks;
   * without it no event is emitted (tests, tools).
   */
  events?: EventDispatcher | undefined;
  /**
   * The access policies (`createAuth` of @angos/auth; in one process the gateway's own): the
   * extension API's cross-namespace listings show only the namespaces they let the caller read.
   */
  auth: Pick<Auth, 'authorize'>;
  /** The angos version `/v2/_ext/_ui/config` reports. */
  version: string;
  /** The built web UI served when `[ui] enabled` (default: the `dist/` of @angos/ui). */
  uiAssetsDirectory?: string | undefined;
}

/** The OCI distribution API over the registry core, and the extension API under `/v2/_ext/`. */
export function buildRegistryApi(deps: RegistryApiDeps): Handler {
  const logger = deps.logger.child('angos::registry_api');
  const vouched = trustCheck(deps.trust);
  const ui = createUiAssets(deps.uiAssetsDirectory ?? uiAssetsDirectory, logger);
  return async (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    try {
      const context = vouched(req);
      const { pathname, query } = parseUrl(req.url);
      if (!isApiPath(pathname)) {
        await serveUi(deps.config(), req, res, pathname, ui);
        return;
      }
      const route = parseRoute(pathname);
      if (!route) throw new OciError('ROUTE_UNKNOWN', { path: pathname.slice(0, 200) });
      let readable: RouteContext['readable'] | undefined;
      const ctx: RouteContext = {
        req,
        res,
        query,
        registry: deps.registry,
        jobs: deps.jobs,
        config: deps.config(),
        logger,
        mountAllowedFrom: context.mountAllowedFrom ?? [],
        sourceTimestamp: context.sourceTimestamp,
        replication: deps.replication,
        events: deps.events,
        actor: actorOf(context),
        identity: context.identity,
        // Built when a listing first asks: most requests never do.
        readable: (namespace) => {
          readable ??= namespaceAccess(deps.auth, req, context);
          return readable(namespace);
        },
        version: deps.version,
      };
      await dispatch(ctx, route, req.method ?? 'GET');
    } catch (error) {
      sendError(res, error, logger);
    }
  };
}

/**
 * Paths outside `/v2/` are the web UI's, when it is enabled (`ui-asset`, judged by the gateway):
 * GET and HEAD only. Disabled, they are unknown, as they were before the UI existed.
 */
async function serveUi(
  config: Config,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  ui: UiAssets,
): Promise<void> {
  if (!config.ui.enabled) throw new OciError('ROUTE_UNKNOWN', { path: pathname.slice(0, 200) });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', UI_METHODS.join(', '));
    throw new OciError('METHOD_NOT_ALLOWED', { method: req.method });
  }
  await ui.serve(req, res, pathname);
}

function trustCheck(trust: Trust): (req: IncomingMessage) => RequestContext {
  if (trust.kind === 'in-process') return getContext;
  return createInternalVerifier(trust.token, { replays: trust.replays });
}

async function dispatch(ctx: RouteContext, route: Route, method: string): Promise<void> {
  const allowed = allowedMethods(route);
  if ('namespace' in route) assertNamespace(route.namespace);
  if (allowed && !allowed.includes(method)) {
    ctx.res.setHeader('Allow', allowed.join(', '));
    throw new OciError('METHOD_NOT_ALLOWED', { method });
  }
  switch (route.kind) {
    case 'apiVersion':
      ctx.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2 });
      ctx.res.end('{}');
      return;
    case 'catalog':
      return listCatalog(ctx);
    case 'tags':
      return listTags(ctx, route.namespace);
    case 'referrers':
      return listReferrers(ctx, route.namespace, route.digest);
    case 'manifest':
      if (method === 'PUT') return putManifest(ctx, route.namespace, route.reference);
      if (method === 'DELETE') return deleteManifest(ctx, route.namespace, route.reference);
      return getManifest(ctx, route.namespace, route.reference);
    case 'blob':
      if (method === 'DELETE') return deleteBlob(ctx, route.namespace, route.digest);
      return getBlob(ctx, route.namespace, route.digest);
    case 'uploads':
      return startUpload(ctx, route.namespace);
    case 'upload':
      if (method === 'PATCH') return patchUpload(ctx, route.namespace, route.id);
      if (method === 'PUT') return completeUpload(ctx, route.namespace, route.id);
      if (method === 'DELETE') return cancelUpload(ctx, route.namespace, route.id);
      return uploadStatus(ctx, route.namespace, route.id);
    case 'pendingJobs':
      return listPendingJobs(ctx);
    case 'failedJobs':
      return listFailedJobs(ctx);
    case 'pendingJob':
      return deletePendingJob(ctx, route.queue, route.id);
    case 'failedJob':
      return deleteFailedJob(ctx, route.queue, route.id);
    case 'failedJobRetry':
      return retryFailedJob(ctx, route.queue, route.id);
    case 'uiConfig':
      return uiConfig(ctx);
    case 'extRepositories':
      return listRepositories(ctx);
    case 'extNamespaces':
      return listNamespaceEntries(ctx);
    case 'extTags':
      return listTagDetails(ctx, route.namespace);
    case 'extRevisions':
      return listRevisions(ctx, route.namespace);
    case 'extManifest':
      return getRevision(ctx, route.namespace, route.digest);
    case 'extUploads':
      return listUploads(ctx, route.namespace);
    case 'extension':
      throw new OciError('ROUTE_UNKNOWN', { path: route.path.slice(0, 200) });
  }
}
