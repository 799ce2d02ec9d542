import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '@angos/config';
import { actorOf, type EventDispatcher, emitForRequest } from '@angos/events';
import {
  createInternalVerifier,
  getContext,
  type Handler,
  type NonceMemory,
  requestQuery,
  sendBody,
  sendError,
  sendJson,
} from '@angos/http';
import type { Logger } from '@angos/observability';
import { allowedMethods, isValidNamespace, MediaType, OciError, parseRoute, type Route } from '@angos/oci';
import type { BlobAnswer, ManifestAnswer, PullThroughCache } from '@angos/upstream';

/**
 * How the service knows a request passed the gateway: the same meaning as registry-api's. In one
 * process the gateway hands requests over directly; split, it signs each one with a key derived
 * from the shared `[services] internal_token`.
 */
export type Trust =
  | { kind: 'in-process' }
  /** `replays`: the nonce memory shared by the service's serving threads; default: this app's own. */
  | { kind: 'internal-token'; token: string; replays?: NonceMemory | undefined };

export interface PullThroughCacheServiceDeps {
  readonly cache: PullThroughCache;
  readonly config: () => Config;
  readonly logger: Logger;
  readonly trust: Trust;
  /** Where the pulls it serves go to the event webhooks (`manifest.pull`, `blob.pull`); undefined: no events. */
  readonly events?: EventDispatcher | undefined;
}

/** Pull-through cache namespaces are read-only: pushes, deletes and uploads are refused. */
const READ_ONLY = 'this namespace is a pull-through cache of an upstream registry: it is read-only';

/**
 * The OCI read API of the namespaces that have upstreams (the gateway routes them here): manifests,
 * blobs, tag lists and referrers, answered by the pull-through cache engine. Writes answer 405
 * UNSUPPORTED.
 */
export function buildPullThroughCache(deps: PullThroughCacheServiceDeps): Handler {
  const logger = deps.logger.child('angos::pull_through_cache');
  const vouched =
    deps.trust.kind === 'in-process'
      ? getContext
      : createInternalVerifier(deps.trust.token, { replays: deps.trust.replays });
  return async (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    try {
      const context = vouched(req);
      const url = req.url ?? '/';
      const mark = url.indexOf('?');
      const pathname = mark === -1 ? url : url.slice(0, mark);
      const route = parseRoute(pathname);
      if (!route) throw new OciError('ROUTE_UNKNOWN', { path: pathname.slice(0, 200) });
      const pulled: PullEvents = (inputs) => emitForRequest(deps.events, inputs, actorOf(context), false);
      await dispatch(deps.cache, req, res, route, req.method ?? 'GET', pulled);
    } catch (error) {
      sendError(res, error, logger);
    }
  };
}

/** Emits the pull events of a GET, before any of its answer is sent. */
type PullEvents = (inputs: Parameters<EventDispatcher['emit']>[0]) => Promise<void>;

async function dispatch(
  cache: PullThroughCache,
  req: IncomingMessage,
  res: ServerResponse,
  route: Route,
  method: string,
  pulled: PullEvents,
): Promise<void> {
  if ('namespace' in route && !isValidNamespace(route.namespace)) {
    throw new OciError('NAME_INVALID', { namespace: route.namespace.slice(0, 300) });
  }
  const allowed = allowedMethods(route);
  if (allowed && !allowed.includes(method)) {
    res.setHeader('Allow', allowed.join(', '));
    throw new OciError('METHOD_NOT_ALLOWED', { method });
  }
  const read = method === 'GET' || method === 'HEAD';
  switch (route.kind) {
    case 'apiVersion':
      sendJson(res, 200, {});
      return;
    case 'manifest':
      if (!read) throw readOnly(res, method);
      {
        const manifest = await cache.manifest(route.namespace, route.reference, {
          method,
          accept: req.headers.accept,
        });
        if (method === 'GET') {
          const tag = route.reference.includes(':') ? undefined : route.reference;
          await pulled([
            {
              kind: 'manifest.pull',
              namespace: route.namespace,
              digest: manifest.digest,
              reference: route.reference,
              tag,
            },
          ]);
        }
        return sendManifest(res, manifest);
      }
    case 'blob':
      if (!read) throw readOnly(res, method);
      {
        const blob = await cache.blob(route.namespace, route.digest, { method, range: req.headers.range });
        if (method === 'GET') {
          try {
            await pulled([{ kind: 'blob.pull', namespace: route.namespace, digest: blob.digest }]);
          } catch (error) {
            await blob.bytes?.close();
            throw error;
          }
        }
        return sendBlob(res, blob);
      }
    case 'tags': {
      const query = requestQuery(req);
      const limit = pageSize(query);
      const answer = await cache.tags(route.namespace, { limit, last: query.get('last') ?? undefined });
      const headers: Record<string, string> = warningHeader(answer.warning);
      const lastTag = answer.tags.at(-1);
      if (answer.more && limit !== undefined && lastTag !== undefined) {
        headers.Link = `</v2/${route.namespace}/tags/list?n=${limit}&last=${encodeURIComponent(lastTag)}>; rel="next"`;
      }
      sendJson(res, 200, { name: route.namespace, tags: answer.tags }, headers);
      return;
    }
    case 'referrers': {
      const artifactType = requestQuery(req).get('artifactType') ?? undefined;
      const answer = await cache.referrers(route.namespace, route.digest, artifactType);
      const headers: Record<string, string> = warningHeader(answer.warning);
      if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: answer.manifests,
      });
      sendBody(res, 200, MediaType.OciIndex, index, headers);
      return;
    }
    case 'uploads':
    case 'upload':
      throw readOnly(res, method);
    default:
      // The catalog, the jobs API and extensions are registry-api's; the gateway never sends them here.
      throw new OciError('ROUTE_UNKNOWN', { path: route.kind });
  }
}

/** 405 UNSUPPORTED for a write to a cache namespace, with the reads it does allow. */
function readOnly(res: ServerResponse, method: string): OciError {
  res.setHeader('Allow', 'GET, HEAD');
  return new OciError('UNSUPPORTED', { method, reason: READ_ONLY }, READ_ONLY);
}

function warningHeader(warning: string | undefined): Record<string, string> {
  return warning === undefined ? {} : { Warning: warning };
}

function sendManifest(res: ServerResponse, manifest: ManifestAnswer): void {
  sendBody(res, 200, manifest.mediaType, manifest.body, {
    'Docker-Content-Digest': manifest.digest,
    ETag: `"${manifest.digest}"`,
    ...warningHeader(manifest.warning),
  });
}

async function sendBlob(res: ServerResponse, blob: BlobAnswer): Promise<void> {
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': blob.digest,
    ETag: `"${blob.digest}"`,
    'Accept-Ranges': 'bytes',
    ...warningHeader(blob.warning),
  };
  const range = blob.range;
  if (range !== undefined) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${blob.size}`;
  if (range !== undefined) headers['Content-Length'] = range.end - range.start + 1;
  else if (blob.size !== undefined) headers['Content-Length'] = blob.size;
  const status = range === undefined ? 200 : 206;
  if (blob.redirect !== undefined) {
    res.writeHead(307, {
      Location: blob.redirect,
      'Docker-Content-Digest': blob.digest,
      'Content-Length': 0,
    });
    res.end();
    return;
  }
  if (blob.bytes === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  try {
    res.writeHead(status, headers);
    await blob.bytes.copyTo(res);
    res.end();
  } catch (error) {
    // A client that goes away mid-download is not an error; a fill that fails after the headers
    // (bad bytes, upstream cut off) leaves the response cut short: sendError destroys it.
    if (!res.destroyed) throw error;
  } finally {
    await blob.bytes.close();
  }
}

/** `n` of a paginated list: a non-negative integer, or undefined when absent. */
function pageSize(query: URLSearchParams): number | undefined {
  const n = query.get('n');
  if (n === null) return undefined;
  const value = Number(n);
  if (!/^\d{1,9}$/.test(n) || !Number.isSafeInteger(value)) throw new OciError('REQUEST_INVALID', { n });
  return value;
}
