import { repositoryFor, repositoryKeyFor } from '@angos/config';
import { sendJson } from '@angos/http';
import { type Descriptor, OciError, tryParseDigest } from '@angos/oci';
import type {
  ManifestDetail,
  NamespaceEntry,
  PlatformView,
  RevisionDetail,
  SortOrder,
  TagSort,
} from '@angos/registry';
import { assertNamespace, pageLast, pageSize } from '../request.js';
import { nextPageLink, type RouteContext } from '../route-context.js';

/**
 * The extension API the web UI reads (docs/extension-api.md): one request per page of data, each
 * endpoint its own policy action, judged by the gateway. Listings that span namespaces show only
 * the namespaces the caller may read (`ctx.readable`).
 */

const DEFAULT_PAGE_SIZE = 100;
/** Each entry costs a few store reads: a page is bounded so one request stays cheap. */
export const MAX_EXT_PAGE_SIZE = 1000;

function extPageSize(query: URLSearchParams): number {
  const n = pageSize(query) ?? DEFAULT_PAGE_SIZE;
  if (n > MAX_EXT_PAGE_SIZE) throw new OciError('REQUEST_INVALID', { n, max: MAX_EXT_PAGE_SIZE });
  return n;
}

function choice<T extends string>(
  query: URLSearchParams,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = query.get(name);
  if (value === null) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new OciError('REQUEST_INVALID', { parameter: name, value: value.slice(0, 50), allowed });
  }
  return value as T;
}

/** Sends a page; a `Link` to the next one when more follows. */
function sendPage(
  ctx: RouteContext,
  path: string,
  body: object,
  page: { n: number; more: boolean; last: string | undefined; params?: Record<string, string> },
): void {
  const headers: Record<string, string> = {};
  if (page.more && page.last !== undefined) headers.Link = nextPageLink(path, page.n, page.last, page.params);
  sendJson(ctx.res, 200, body, headers);
}

/** GET /v2/_ext/_ui/config */
export function uiConfig(ctx: RouteContext): void {
  sendJson(ctx.res, 200, {
    name: ctx.config.ui.name,
    version: ctx.version,
    username: ctx.identity?.username ?? null,
  });
}

/** GET /v2/_ext/_repositories: the configured repositories, with how many readable namespaces each governs. */
export async function listRepositories(ctx: RouteContext): Promise<void> {
  const n = extPageSize(ctx.query);
  const last = pageLast(ctx.query);
  const keys = Object.keys(ctx.config.repository).sort();
  const after = last === undefined ? keys : keys.filter((key) => key > last);
  const page = after.slice(0, n);
  const counts = new Map<string, number>(page.map((key) => [key, 0]));
  if (page.length > 0) {
    for (const namespace of await ctx.registry.browse.namespaces.index.all()) {
      const key = repositoryKeyFor(ctx.config, namespace);
      if (key !== undefined && counts.has(key) && (await ctx.readable(namespace))) {
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  const repositories = page.map((key) => {
    const repository = ctx.config.repository[key]!;
    return {
      name: key,
      namespaces: counts.get(key) ?? 0,
      is_pull_through: repository.upstream.length > 0,
      immutable_tags: repository.immutable_tags ?? false,
      downstreams: repository.downstream.map((downstream) => downstream.name),
    };
  });
  sendPage(ctx, '/v2/_ext/_repositories', { repositories }, { n, more: after.length > n, last: page.at(-1) });
}

function entryView(ctx: RouteContext, entry: NamespaceEntry) {
  const repository = repositoryFor(ctx.config, entry.path);
  return {
    path: entry.path,
    name: entry.name,
    is_namespace: entry.isNamespace,
    has_children: entry.hasChildren,
    tags: entry.tags,
    manifests: entry.manifests,
    uploads: entry.uploads,
    repository: repositoryKeyFor(ctx.config, entry.path) ?? null,
    is_pull_through: (repository?.upstream.length ?? 0) > 0,
  };
}

/** GET /v2/_ext/_namespaces?parent=|q=: the children of a prefix, or a search. */
export async function listNamespaceEntries(ctx: RouteContext): Promise<void> {
  const n = extPageSize(ctx.query);
  const last = pageLast(ctx.query);
  const q = ctx.query.get('q');
  const parent = ctx.query.get('parent') ?? '';
  if (q !== null && ctx.query.get('parent') !== null) {
    throw new OciError('REQUEST_INVALID', { parameters: ['parent', 'q'] }, 'parent and q exclude each other');
  }
  if (parent !== '') assertNamespace(parent);
  const options = { limit: n, last, readable: ctx.readable };
  const page =
    q !== null && q !== ''
      ? await ctx.registry.browse.namespaces.search(q, options)
      : n === 0
        ? { entries: [], more: false }
        : await ctx.registry.browse.namespaces.children(parent, options);
  const params: Record<string, string> = q !== null && q !== '' ? { q } : parent === '' ? {} : { parent };
  sendPage(
    ctx,
    '/v2/_ext/_namespaces',
    { entries: page.entries.map((entry) => entryView(ctx, entry)) },
    { n, more: page.more, last: page.entries.at(-1)?.path, params },
  );
}

function platformView(platform: PlatformView) {
  return { os: platform.os, architecture: platform.architecture, variant: platform.variant };
}

/** GET /v2/_ext/<ns>/_tags?n&last&sort&order */
export async function listTagDetails(ctx: RouteContext, namespace: string): Promise<void> {
  const n = extPageSize(ctx.query);
  const sort = choice<TagSort>(ctx.query, 'sort', ['name', 'pushed'], 'name');
  const order = choice<SortOrder>(ctx.query, 'order', ['asc', 'desc'], 'asc');
  const page = await ctx.registry.browse.tags(namespace, {
    limit: n,
    last: pageLast(ctx.query),
    sort,
    order,
  });
  const tags = page.items.map((tag) => ({
    name: tag.name,
    digest: tag.digest,
    media_type: tag.mediaType,
    artifact_type: tag.artifactType,
    size: tag.size,
    platforms: tag.platforms.map(platformView),
    pushed_at: tag.pushedAt,
    last_pulled_at: tag.lastPulledAt,
  }));
  sendPage(
    ctx,
    `/v2/_ext/${namespace}/_tags`,
    { tags, total: page.total },
    { n, more: page.more, last: page.items.at(-1)?.name, params: { sort, order } },
  );
}

function revisionView(revision: RevisionDetail) {
  return {
    digest: revision.digest,
    media_type: revision.mediaType,
    artifact_type: revision.artifactType,
    size: revision.size,
    tags: revision.tags,
    parents: revision.parents,
    subject: revision.subject,
    pushed_at: revision.pushedAt,
    last_pulled_at: revision.lastPulledAt,
  };
}

/** GET /v2/_ext/<ns>/_revisions?n&last */
export async function listRevisions(ctx: RouteContext, namespace: string): Promise<void> {
  const n = extPageSize(ctx.query);
  const page = await ctx.registry.browse.revisions(namespace, { limit: n, last: pageLast(ctx.query) });
  sendPage(
    ctx,
    `/v2/_ext/${namespace}/_revisions`,
    { revisions: page.items.map(revisionView), total: page.total },
    { n, more: page.more, last: page.items.at(-1)?.digest },
  );
}

function descriptorView(descriptor: Descriptor) {
  return {
    digest: descriptor.digest,
    media_type: descriptor.mediaType,
    size: descriptor.size,
    ...(descriptor.annotations !== undefined && { annotations: descriptor.annotations }),
    ...(descriptor.platform !== undefined && { platform: descriptor.platform }),
    ...(descriptor.artifactType !== undefined && { artifact_type: descriptor.artifactType }),
  };
}

function manifestView(detail: ManifestDetail) {
  return {
    digest: detail.digest,
    media_type: detail.mediaType,
    artifact_type: detail.artifactType,
    size: detail.size,
    tags: detail.tags,
    annotations: detail.annotations,
    config: detail.config === null ? null : descriptorView(detail.config),
    layers: detail.layers.map(descriptorView),
    manifests: detail.manifests.map(descriptorView),
    subject: detail.subjectDescriptor === null ? null : descriptorView(detail.subjectDescriptor),
    referrers: detail.referrers.map((referrer) => ({
      digest: referrer.digest,
      media_type: referrer.mediaType,
      artifact_type: referrer.artifactType,
      size: referrer.size,
      annotations: referrer.annotations,
    })),
    parents: detail.parents,
    pushed_at: detail.pushedAt,
    last_pulled_at: detail.lastPulledAt,
  };
}

/** GET /v2/_ext/<ns>/_manifests/<digest> */
export async function getRevision(ctx: RouteContext, namespace: string, digestText: string): Promise<void> {
  const digest = tryParseDigest(digestText);
  if (digest === undefined) throw new OciError('DIGEST_INVALID', { digest: digestText.slice(0, 200) });
  sendJson(ctx.res, 200, manifestView(await ctx.registry.browse.manifest(namespace, digest)));
}

/** GET /v2/_ext/<ns>/_uploads?n&last */
export async function listUploads(ctx: RouteContext, namespace: string): Promise<void> {
  const n = extPageSize(ctx.query);
  const page = await ctx.registry.browse.uploads(namespace, { limit: n, last: pageLast(ctx.query) });
  const uploads = page.items.map((upload) => ({
    id: upload.id,
    size: upload.size,
    started_at: upload.startedAt,
  }));
  sendPage(
    ctx,
    `/v2/_ext/${namespace}/_uploads`,
    { uploads },
    { n, more: page.more, last: page.items.at(-1)?.id },
  );
}
