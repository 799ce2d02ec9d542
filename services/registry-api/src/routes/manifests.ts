import {
  acceptsManifestType,
  formatDigest,
  negotiateManifest,
  OciError,
  parseLookupReference,
  parseReference,
  type Reference,
} from '@angos/oci';
import type { StoredManifest } from '@angos/registry';
import { readBoundedBody } from '../request.js';
import { type RouteContext, sendEmpty } from '../route-context.js';

/** PUT /v2/<name>/manifests/<reference>[?tag=…] */
export async function putManifest(
  ctx: RouteContext,
  namespace: string,
  referenceText: string,
): Promise<void> {
  const reference = parseReference(referenceText);
  const limit = ctx.config.global.max_manifest_size;
  const body = await readBoundedBody(ctx.req, limit, () => new OciError('MANIFEST_TOO_LARGE', { limit }));
  const tagParams = ctx.query.getAll('tag');
  const pushed = await ctx.registry.manifests.put(
    namespace,
    reference,
    body,
    ctx.req.headers['content-type'],
    tagParams,
  );
  const digest = formatDigest(pushed.digest);
  const headers: Record<string, string> = {
    Location: `/v2/${namespace}/manifests/${digest}`,
    'Docker-Content-Digest': digest,
  };
  if (pushed.subject) headers['OCI-Subject'] = formatDigest(pushed.subject);
  // A push by digest applies its `?tag=` values (all of them or none: put throws on a bad one);
  // the spec requires an OCI-Tag header listing each accepted tag. A push by tag ignores them.
  if (reference.kind === 'digest' && tagParams.length > 0) {
    headers['OCI-Tag'] = [...new Set(tagParams)].join(', ');
  }
  sendEmpty(ctx.res, 201, headers);
}

/** GET and HEAD /v2/<name>/manifests/<reference>, honouring Accept. */
export async function getManifest(
  ctx: RouteContext,
  namespace: string,
  referenceText: string,
): Promise<void> {
  const reference = parseLookupReference(referenceText);
  if (ctx.req.method === 'GET' && (await redirectToStorage(ctx, namespace, reference))) return;
  const manifest = await negotiate(
    ctx,
    namespace,
    reference,
    await ctx.registry.manifests.get(namespace, reference),
  );
  const digest = formatDigest(manifest.digest);
  ctx.res.writeHead(200, {
    'Content-Type': manifest.mediaType,
    'Content-Length': manifest.body.length,
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
  });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : manifest.body);
}

/**
 * `enable_manifest_redirect`: a GET of a manifest the client accepts answers
 * 307 to a presigned URL of the storage (S3), which serves it with its media
 * type as Content-Type (`response-content-type`). Anything that needs the
 * body here (the manifest-list fallback of `negotiate`) is served directly.
 * False when the store cannot presign.
 */
async function redirectToStorage(
  ctx: RouteContext,
  namespace: string,
  reference: Reference,
): Promise<boolean> {
  if (!ctx.config.global.enable_manifest_redirect || !ctx.registry.blobs.redirects) return false;
  const info = await ctx.registry.manifests.resolve(namespace, reference);
  if (!acceptsManifestType(ctx.req.headers.accept, info.mediaType)) return false;
  const url = await ctx.registry.manifests.downloadUrl(namespace, info);
  if (url === undefined) return false;
  sendEmpty(ctx.res, 307, { Location: url, 'Docker-Content-Digest': formatDigest(info.digest) });
  return true;
}

/** DELETE /v2/<name>/manifests/<reference>: a tag, or a manifest with its tags. */
export async function deleteManifest(
  ctx: RouteContext,
  namespace: string,
  referenceText: string,
): Promise<void> {
  await ctx.registry.manifests.delete(namespace, parseLookupReference(referenceText));
  sendEmpty(ctx.res, 202, {});
}

/** What the client accepts of `manifest` (libs/oci negotiateManifest). */
async function negotiate(
  ctx: RouteContext,
  namespace: string,
  reference: Reference,
  manifest: StoredManifest,
): Promise<StoredManifest> {
  const choice = negotiateManifest(ctx.req.headers.accept, manifest, reference.kind === 'tag');
  if (choice.kind === 'stored') return manifest;
  return ctx.registry.manifests.get(namespace, parseReference(choice.digest));
}
