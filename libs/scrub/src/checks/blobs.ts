import { createHash, randomUUID } from 'node:crypto';
import { type DigestParts, formatDigest } from '@angos/oci';
import { BlobIndex, blobLockKey, grantLockKey } from '@angos/registry';
import { keyFor, NotFoundError } from '@angos/storage';
import { REMOVE_CORRUPT_BLOB } from '../runner.js';
import type { ScrubCheck, ScrubContext } from '../types.js';
import { getValue } from '../walk.js';

const CHECK = 'blobs';

/**
 * `--blobs` (`-b`), the part that runs before the garbage-collection pass (which reclaims orphan
 * grants and empty entries, prunes references to manifests that are gone, libs/registry gc.ts):
 * - every blob is re-hashed, streaming: bytes that do not match their digest are
 *   `remove-corrupt-blob` (see `removeCorrupt` for why that is safe beside pushes);
 * - bytes with no index entry (older stores, crashes, out-of-band copies): `adopt-blob`, an empty
 *   entry marked now, as the pass itself would give them, so that they are reclaimed one grace
 *   period later unless a push or `--reconcile-blob-index` gives them a holder meanwhile;
 * - an index grant (`layer`) whose `_layers` link is gone (a namespace deleted out-of-band, a crash
 *   between the index grant and the link): `drop-stale-grant`, decided again under the grant lock,
 *   which an upload commit or mount holds from its index grant to its link. The `manifest` and
 *   `ref:` references of a namespace that is gone are the pass's: it prunes a reference whose
 *   manifest is not a revision any more.
 */
export const blobsCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    const index = indexOf(ctx);
    for await (const digest of ctx.blobs.listBlobs()) {
      ctx.walked();
      if ((await hashMatches(ctx, digest)) === false) {
        yield {
          check: CHECK,
          action: REMOVE_CORRUPT_BLOB,
          key: keyFor({ kind: 'blob', digest }),
          reason: `the bytes do not hash to ${formatDigest(digest)}`,
          apply: () => removeCorrupt(ctx, digest),
        };
        continue;
      }
      if ((await index.read(digest)) === undefined) {
        yield {
          check: CHECK,
          action: 'adopt-blob',
          key: keyFor({ kind: 'blobIndex', digest }),
          reason:
            'bytes with no blob-index entry: reclaimed one grace period from now unless something holds them',
          apply: async () => {
            await index.adoptBytes(digest, ctx.now());
          },
        };
      }
    }
    for await (const digest of index.digests()) {
      ctx.walked();
      const entry = await index.read(digest);
      if (entry === undefined) continue;
      for (const [namespace, held] of Object.entries(entry.holders)) {
        if (!held.includes('layer')) continue;
        if (await grantLinked(ctx, namespace, digest)) continue;
        yield {
          check: CHECK,
          action: 'drop-stale-grant',
          key: keyFor({ kind: 'layerLink', namespace, digest }),
          reason: 'the blob index grants the namespace a blob it has no link to',
          apply: () => dropStaleGrant(ctx, namespace, digest),
        };
      }
    }
  },
};

function indexOf(ctx: ScrubContext): BlobIndex {
  return new BlobIndex(ctx.metadata, ctx.locks, ctx.logger);
}

/**
 * Whether the blob's bytes hash to its digest, read as a stream (memory stays one chunk whatever
 * the blob's size); undefined when the bytes are gone (reclaimed meanwhile).
 */
export async function hashMatches(ctx: ScrubContext, digest: DigestParts): Promise<boolean | undefined> {
  const hash = createHash(digest.algorithm);
  try {
    for await (const chunk of await ctx.blobs.readBlob(digest)) hash.update(chunk as Buffer);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
  return hash.digest('hex') === digest.hex;
}

/**
 * Removes bytes that do not match their digest. Blobs are committed atomically (a rename or one
 * PUT), so the bytes at a blob's key are complete; a blob being uploaded is not there yet. The
 * removal still follows the reclamation protocol's lock, so that it cannot delete bytes a push
 * just wrote:
 * - it holds the digest lock `blob:<digest>` throughout: garbage collection cannot reclaim (and
 *   so no push can re-create) the blob meanwhile, and on stores without compare-and-swap every
 *   index update waits for it;
 * - it claims the entry (when there is one): an index update that finds a claim waits for the
 *   digest lock, so no push that starts now reaches its write of the bytes (uploads and manifest
 *   pushes add their index reference before their bytes);
 * - it re-hashes the bytes under the lock and deletes them only if they are still corrupt, then
 *   lifts the claim. An upload commit never replaces existing bytes (link / put-if-absent
 *   semantics of commitUpload), so corrupt bytes stay corrupt until removed.
 * The holders are kept: the namespaces' links now name missing bytes, which `--links`,
 * `--manifests` and `--tags` repair (and a client pushing the blob again uploads it anew).
 */
async function removeCorrupt(ctx: ScrubContext, digest: DigestParts): Promise<void> {
  const index = indexOf(ctx);
  await ctx.locks.withLocks([blobLockKey(digest)], async (signal) => {
    const token = randomUUID();
    let claimed = false;
    if ((await index.read(digest)) !== undefined) {
      await index.update(
        digest,
        (current) => {
          claimed = true;
          return { ...current, claim: token };
        },
        { signal, digestLockHeld: true, claimToken: token, keepClaims: true },
      );
    }
    try {
      if ((await hashMatches(ctx, digest)) !== false) return;
      signal.throwIfAborted();
      await ctx.blobs.deleteBlob(digest);
    } finally {
      if (claimed) {
        signal.throwIfAborted();
        await index.update(
          digest,
          (current) => (current.claim === token ? { ...current, claim: undefined } : 'unchanged'),
          { signal, digestLockHeld: true, claimToken: token },
        );
      }
    }
  });
}

async function grantLinked(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
  fresh = false,
): Promise<boolean> {
  return (await getValue(ctx, keyFor({ kind: 'layerLink', namespace, digest }), { fresh })) !== undefined;
}

/**
 * Removes an index grant that has no link, under the grant lock (an upload commit or a mount holds
 * it from its index grant to its link, so a grant without a link found there is a leftover), as a
 * blob DELETE would. The namespace's references stay; the bytes are the pass's.
 */
async function dropStaleGrant(ctx: ScrubContext, namespace: string, digest: DigestParts): Promise<void> {
  await ctx.locks.withLocks([grantLockKey(namespace, digest)], async (signal) => {
    if (await grantLinked(ctx, namespace, digest, true)) return;
    signal.throwIfAborted();
    await indexOf(ctx).remove(digest, namespace, ['layer'], { signal });
  });
}
