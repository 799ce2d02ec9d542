import { pipeline } from 'node:stream/promises';
import { formatDigest, OciError, parseRangeHeader } from '@angos/oci';
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
  const body = await ctx.registry.blobs.read(namespace, digest, range);
  ctx.res.writeHead(status, headers);
  try {
    await pipeline(body, ctx.res);
  } catch (error) {
    // A client that goes away mid-download is not an error of ours.
    if (!ctx.res.destroyed) throw error;
  }
}

/** DELETE /v2/<name>/blobs/<digest>: revokes the namespace's grant; bytes go with the last reference. */
export async function deleteBlob(ctx: RouteContext, namespace: string, digestText: string): Promise<void> {
  await ctx.registry.blobs.delete(namespace, digestParam(digestText));
  sendEmpty(ctx.res, 202, {});
}
