import { type DigestParts, parseManifest } from '@angos/oci';
import { encodeLink, manifestLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { decodeOrUndefined, sameDigest } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import { blobExists, getValue, namespaces, readManifestBytes, revisionDirs } from '../walk.js';
import { deleteRevision } from './manifests.js';

const CHECK = 'media-types';

/**
 * `--media-types` (`-M`): every revision link must record its manifest's media type and size (a
 * manifest GET answers with them; stores written by older versions lack them).
 * - a revision link without `media_type` or `size`: `backfill-media-type`, read from the
 *   manifest's bytes and written under the manifest's lock (its creation time kept);
 * - a revision whose manifest bytes are gone: `delete-revision` (as `--manifests`).
 * Links that do not parse are `--links`'s.
 */
export const mediaTypesCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    for await (const namespace of namespaces(ctx)) {
      for await (const entry of revisionDirs(ctx, namespace)) {
        if ('digest' in entry) yield* checkRevision(ctx, namespace, entry.digest);
      }
    }
  },
};

async function* checkRevision(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
): AsyncIterable<ScrubAction> {
  const path = keyFor({ kind: 'revisionLink', namespace, digest });
  const link = await getValue(ctx, path);
  const record = link && decodeOrUndefined(link);
  if (!record || !sameDigest(record.digest, digest)) return;
  if (!(await blobExists(ctx, digest))) {
    yield deleteRevision(ctx, CHECK, namespace, digest);
    return;
  }
  if (record.mediaType !== undefined && record.size !== undefined) return;
  yield {
    check: CHECK,
    action: 'backfill-media-type',
    key: path,
    reason: record.mediaType === undefined ? 'the link has no media type' : 'the link has no size',
    apply: () =>
      ctx.locks.withLocks([manifestLockKey(namespace, digest)], async (signal) => {
        const fresh = await getValue(ctx, path, { fresh: true });
        const current = fresh && decodeOrUndefined(fresh);
        if (!current || (current.mediaType !== undefined && current.size !== undefined)) return;
        const body = await readManifestBytes(ctx, digest);
        if (body === undefined) return;
        // The media type the manifest declares, or the one its structure implies.
        const mediaType = current.mediaType ?? parseManifest(body, undefined).mediaType;
        signal.throwIfAborted();
        await ctx.metadata.put(
          path,
          encodeLink({ digest, mediaType, size: body.length, createdAt: current.createdAt }),
        );
      }),
  };
}
