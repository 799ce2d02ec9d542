import { sendBody, sendJson } from '@angos/http';
import { MediaType } from '@angos/oci';
import { digestParam, pageLast, pageSize } from '../request.js';
import { nextPageLink, type RouteContext } from '../route-context.js';

/** GET /v2/<name>/tags/list?n=&last= */
export async function listTags(ctx: RouteContext, namespace: string): Promise<void> {
  const limit = pageSize(ctx.query);
  const { tags, more } = await ctx.registry.manifests.listTags(namespace, {
    limit,
    last: pageLast(ctx.query),
  });
  const headers: Record<string, string> = {};
  const lastTag = tags.at(-1);
  if (more && limit !== undefined && lastTag !== undefined) {
    headers.Link = nextPageLink(`/v2/${namespace}/tags/list`, limit, lastTag);
  }
  sendJson(ctx.res, 200, { name: namespace, tags }, headers);
}

/** GET /v2/_catalog?n=&last= */
export async function listCatalog(ctx: RouteContext): Promise<void> {
  const limit = pageSize(ctx.query);
  const { namespaces, more } = await ctx.registry.listNamespaces({
    ...(limit !== undefined && { limit }),
    ...(pageLast(ctx.query) !== undefined && { last: pageLast(ctx.query)! }),
  });
  const headers: Record<string, string> = {};
  const lastName = namespaces.at(-1);
  if (more && limit !== undefined && lastName !== undefined) {
    headers.Link = nextPageLink('/v2/_catalog', limit, lastName);
  }
  sendJson(ctx.res, 200, { repositories: namespaces }, headers);
}

/** GET /v2/<name>/referrers/<digest>[?artifactType=] — always an image index, empty when nothing refers. */
export async function listReferrers(ctx: RouteContext, namespace: string, digestText: string): Promise<void> {
  const subject = digestParam(digestText);
  const artifactType = ctx.query.get('artifactType') ?? undefined;
  const manifests = await ctx.registry.manifests.referrers(namespace, subject, artifactType);
  const headers: Record<string, string> = {};
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  const index = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });
  sendBody(ctx.res, 200, MediaType.OciIndex, index, headers);
}
