import {
  acceptsManifestType,
  formatDigest,
  negotiateManifest,
  OciError,
  parseLookupReference,
  parseReference,
  type Reference,
} from '@angos/oci';
import { parseSourceTimestamp, type StoredManifest } from '@angos/registry';
import type { LocalChange } from '@angos/replication';
import { readBoundedBody } from '../request.js';
import { type RouteContext, sendEmpty } from '../route-context.js';

/**
 * The honoured `X-Angos-Source-Timestamp` of a replicated write (the gateway forwards it only for
 * callers allowed to replicate): its text and ms. A malformed one means no last-writer-wins.
 */
function sourceTime(ctx: RouteContext): { text: string; ms: number } | undefined {
  const text = ctx.sourceTimestamp;
  if (text === undefined) return undefined;
  const ms = parseSourceTimestamp(text);
  if (ms !== undefined) return { text, ms };
  ctx.logger.warn('source timestamp ignored', { reason: 'not an RFC 3339 time', value: text.slice(0, 64) });
  return undefined;
}

/**
 * Queues the replication of a durable change. A failure to queue answers 503 (the write itself
 * stands): a client pushes again, and that push, dated now, is queued afresh.
 */
async function announce(ctx: RouteContext, change: LocalChange): Promise<void> {
  if (ctx.replication === undefined) return;
  try {
    await ctx.replication.changed(change);
  } catch (error) {
    ctx.logger.error('replication not queued', {
      namespace: change.namespace,
      change: change.change,
      tags: change.tags,
      digest: change.digest,
      error: String(error),
    });
    throw new OciError('UNAVAILABLE', {
      reason: 'the write is stored, but its replication could not be queued: repeat it',
    });
  }
}

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
  const source = sourceTime(ctx);
  const pushed = await ctx.registry.manifests.put(
    namespace,
    reference,
    body,
    ctx.req.headers['content-type'],
    tagParams,
    { sourceTimestampMs: source?.ms },
  );
  const digest = formatDigest(pushed.digest);
  // A write that changed nothing (a replicated write replayed, or echoed back by a peer) is not
  // forwarded: each change crosses each replication edge once, plus one no-op.
  if (pushed.changed) {
    await announce(ctx, {
      namespace,
      change: 'push',
      tags: reference.kind === 'tag' ? [reference.tag] : [...new Set(tagParams)],
      digest,
      sourceTimestamp: source?.text,
    });
  }
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
  const reference = parseLookupReference(referenceText);
  const source = sourceTime(ctx);
  // An ordinary delete is dated once, here: the tombstones it leaves and the replicated delete
  // carry the same time, so every peer records the same one.
  const deletedAt = source === undefined ? new Date() : undefined;
  await ctx.registry.manifests.delete(namespace, reference, {
    sourceTimestampMs: source?.ms,
    deletedAtMs: deletedAt?.getTime(),
  });
  await announce(ctx, {
    namespace,
    change: 'delete',
    tags: reference.kind === 'tag' ? [reference.tag] : [],
    digest: reference.kind === 'digest' ? formatDigest(reference.digest) : undefined,
    sourceTimestamp: source?.text ?? deletedAt?.toISOString(),
  });
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
