import { formatDigest, isValidNamespace, OciError, parseContentRange, tryParseDigest } from '@angos/oci';
import type { ChunkHeaders } from '@angos/registry';
import { emitEvents } from '../events.js';
import { blobBody, contentLength, digestParam, hasBody } from '../request.js';
import { type RouteContext, sendEmpty } from '../route-context.js';

function uploadLocation(namespace: string, id: string): string {
  return `/v2/${namespace}/blobs/uploads/${id}`;
}

/** `Range` of an upload session: the inclusive range of bytes received (`0-0` when empty, as distribution answers). */
function receivedRange(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

function chunkHeaders(ctx: RouteContext): ChunkHeaders {
  const header = ctx.req.headers['content-range'];
  let range: ChunkHeaders['range'];
  if (header !== undefined) {
    range = parseContentRange(header);
    if (!range) throw new OciError('RANGE_INVALID', { contentRange: header.slice(0, 100) });
  }
  return { range, contentLength: contentLength(ctx.req) };
}

/** A blob committed to the namespace (upload or mount): its `blob.push` event, then 201. */
async function sendCreated(ctx: RouteContext, namespace: string, digest: string): Promise<void> {
  await emitEvents(ctx, [{ kind: 'blob.push', namespace, digest }], true);
  sendEmpty(ctx.res, 201, { Location: `/v2/${namespace}/blobs/${digest}`, 'Docker-Content-Digest': digest });
}

/**
 * POST /v2/<name>/blobs/uploads/: a cross-repository mount (`mount` + `from`),
 * a monolithic upload (`digest`), or a new session.
 */
export async function startUpload(ctx: RouteContext, namespace: string): Promise<void> {
  const mount = ctx.query.get('mount');
  const from = ctx.query.get('from');
  if (mount !== null && from !== null) {
    const digest = tryParseDigest(mount);
    // Anything short of a readable, valid source falls back to a normal
    // session, as the spec allows: the client then uploads the bytes.
    if (digest && isValidNamespace(from) && ctx.mountAllowedFrom.includes(from)) {
      if (await ctx.registry.blobs.mount(namespace, digest, from)) {
        await sendCreated(ctx, namespace, formatDigest(digest));
        return;
      }
    }
  }
  const digestText = ctx.query.get('digest');
  if (digestText !== null) {
    const digest = digestParam(digestText);
    const id = await ctx.registry.uploads.start(namespace);
    try {
      await ctx.registry.uploads.complete(namespace, id, digest, blobBody(ctx.req), chunkHeaders(ctx));
    } catch (error) {
      await ctx.registry.uploads.cancel(namespace, id).catch(() => undefined);
      throw error;
    }
    await sendCreated(ctx, namespace, formatDigest(digest));
    return;
  }
  const id = await ctx.registry.uploads.start(namespace);
  sendEmpty(ctx.res, 202, {
    Location: uploadLocation(namespace, id),
    Range: '0-0',
    'Docker-Upload-UUID': id,
  });
}

/** PATCH: append a chunk, streamed. */
export async function patchUpload(ctx: RouteContext, namespace: string, id: string): Promise<void> {
  const size = await ctx.registry.uploads.append(namespace, id, blobBody(ctx.req), chunkHeaders(ctx));
  sendEmpty(ctx.res, 202, {
    Location: uploadLocation(namespace, id),
    Range: receivedRange(size),
    'Docker-Upload-UUID': id,
  });
}

/** PUT ?digest=: the optional last chunk, then verification and commit. */
export async function completeUpload(ctx: RouteContext, namespace: string, id: string): Promise<void> {
  const digest = digestParam(ctx.query.get('digest'));
  const body = hasBody(ctx.req) ? blobBody(ctx.req) : undefined;
  await ctx.registry.uploads.complete(namespace, id, digest, body, chunkHeaders(ctx));
  await sendCreated(ctx, namespace, formatDigest(digest));
}

/** GET: where the session stands. */
export async function uploadStatus(ctx: RouteContext, namespace: string, id: string): Promise<void> {
  const size = await ctx.registry.uploads.size(namespace, id);
  sendEmpty(ctx.res, 204, {
    Location: uploadLocation(namespace, id),
    Range: receivedRange(size),
    'Docker-Upload-UUID': id,
  });
}

/** DELETE: abandon the session. */
export async function cancelUpload(ctx: RouteContext, namespace: string, id: string): Promise<void> {
  await ctx.registry.uploads.cancel(namespace, id);
  sendEmpty(ctx.res, 204, {});
}
