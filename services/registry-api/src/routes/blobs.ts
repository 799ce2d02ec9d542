import { type DigestParts, formatDigest, OciError, parseRangeHeader } from '@angos/oci';
import { emitEvents } from '../events.js';
import { digestParam } from '../request.js';
import { type RouteContext, sendEmpty } from '../route-context.js';

/** GET and HEAD /v2/<name>/blobs/<digest>, with a single Range. */
export async function getBlob(ctx: RouteContext, namespace: string, digestText: string): Promise<void> {
  const digest = digestParam(digestText);
  const { size } = await ctx.registry.blobs.stat(namespace, digest);
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': formatDigest(digest),
    ETag: `"${formatDigest(digest)}"`,
    'Accept-Ranges': 'bytes',
  };
  const rangeHeader = ctx.req.headers.range;
  const range = rangeHeader === undefined ? undefined : parseRangeHeader(rangeHeader, size);
  if (range === 'unsatisfiable') {
    ctx.res.setHeader('Content-Range', `bytes */${size}`);
    throw new OciError('RANGE_NOT_SATISFIABLE', { size });
  }
  const status = range ? 206 : 200;
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  headers['Content-Length'] = range ? range.end - range.start + 1 : size;
  if (ctx.req.method === 'HEAD') {
    ctx.res.writeHead(status, headers);
    ctx.res.end();
    return;
  }
  // `blob.pull` before any of the answer (redirect or bytes): a `required` webhook that refuses
  // it fails the pull.
  await emitEvents(ctx, [{ kind: 'blob.pull', namespace, digest: formatDigest(digest) }], false);
  if (await redirectToStorage(ctx, digest)) return;
  const copy = await ctx.registry.blobs.open(namespace, digest, range, size);
  try {
    ctx.res.writeHead(status, headers);
    await copy.copyTo(ctx.res);
    ctx.res.end();
  } catch (error) {
    // A client that goes away mid-download is not an error of ours.
    if (!ctx.res.destroyed) throw error;
  } finally {
    await copy.close();
  }
}

/**
 * `enable_blob_redirect`: a GET answers 307 to a presigned URL of the storage
 * (S3), which serves the bytes, Range included, instead of this process. The
 * grant and the range were checked above. False when the store cannot presign.
 */
async function redirectToStorage(ctx: RouteContext, digest: DigestParts): Promise<boolean> {
  if (!ctx.config.global.enable_blob_redirect || !ctx.registry.blobs.redirects) return false;
  const url = await ctx.registry.blobs.downloadUrl(digest);
  if (url === undefined) return false;
  sendEmpty(ctx.res, 307, { Location: url, 'Docker-Content-Digest': formatDigest(digest) });
  return true;
}

/** DELETE /v2/<name>/blobs/<digest>: revokes the namespace's grant; bytes go with the last reference. */
export async function deleteBlob(ctx: RouteContext, namespace: string, digestText: string): Promise<void> {
  await ctx.registry.blobs.delete(namespace, digestParam(digestText));
  sendEmpty(ctx.res, 202, {});
}
