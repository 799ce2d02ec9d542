import type { DigestParts } from '@angos/oci';
import { BlobIndex, type BlobReference, grantLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';

const CHECK = 'orphan-grants';

/**
 * `--orphan-grants <duration>`: revokes the blob grants that no manifest of their namespace has
 * referenced for at least the duration (an upload or mount no manifest uses, such as the layers of
 * a replication push whose manifest lost or was dead-lettered). The age is the entry's orphan mark
 * (since when the namespace has held `layer` alone). Each revocation goes through the reclamation
 * protocol, as garbage collection's own does with the grace period:
 * 1. one atomic update of the index entry re-checks that the namespace still holds `layer` alone
 *    and has for long enough (a push that added a reference meanwhile keeps its grant), removes it
 *    and records the revocation, so a push that saw the blob readable just before is refused
 *    rather than acknowledged over bytes about to go;
 * 2. under the grant lock the link goes if the index, read fresh, still does not grant it (an
 *    upload commit or mount may have granted it again meanwhile).
 * The bytes are not touched: an entry left without holders is reclaimed by the garbage-collection
 * pass one grace period later (`--blobs`, or the servers' background pass).
 */
export const orphanGrantsCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    const olderThanMs = ctx.options.orphanGrantsOlderThanMs;
    if (olderThanMs === undefined) throw new Error('--orphan-grants needs a duration');
    const index = new BlobIndex(ctx.metadata, ctx.locks, ctx.logger);
    for await (const digest of index.digests()) {
      ctx.walked();
      const entry = await index.read(digest);
      if (entry === undefined || entry.claim !== undefined) continue;
      for (const [namespace, held] of Object.entries(entry.holders)) {
        if (!isOrphanFor(held, entry.orphanedSince[namespace], ctx.now() - olderThanMs)) continue;
        yield revokeGrant(ctx, index, namespace, digest, olderThanMs);
      }
    }
  },
};

/** A hold of `layer` alone, orphaned at or before `cutoff`. */
function isOrphanFor(held: readonly BlobReference[] | undefined, since: number | undefined, cutoff: number) {
  return (
    held !== undefined && held.length === 1 && held[0] === 'layer' && since !== undefined && since <= cutoff
  );
}

function revokeGrant(
  ctx: ScrubContext,
  index: BlobIndex,
  namespace: string,
  digest: DigestParts,
  olderThanMs: number,
): ScrubAction {
  return {
    check: CHECK,
    action: 'revoke-grant',
    key: keyFor({ kind: 'layerLink', namespace, digest }),
    reason: 'no manifest of the namespace has referenced the blob for longer than --orphan-grants',
    apply: () => revokeOrphanGrant(ctx, index, namespace, digest, () => ctx.now() - olderThanMs),
  };
}

/**
 * Revokes a namespace's grant of a blob if it is still an orphan marked at or before `cutoff()`
 * (re-checked in the atomic update that removes it), then its link under the grant lock. Shared
 * with `--orphan-namespaces` (whose cutoff is "now": every grant of the namespace goes).
 */
export async function revokeOrphanGrant(
  ctx: ScrubContext,
  index: BlobIndex,
  namespace: string,
  digest: DigestParts,
  cutoff: () => number,
  options: { orphansOnly?: boolean } = {},
): Promise<void> {
  const orphansOnly = options.orphansOnly ?? true;
  let revoked = false;
  await index.update(
    digest,
    (current) => {
      const held = current.holders[namespace];
      revoked = orphansOnly
        ? isOrphanFor(held, current.orphanedSince[namespace], cutoff())
        : held?.includes('layer') === true;
      if (!revoked || held === undefined) return 'unchanged';
      const rest = held.filter((reference) => reference !== 'layer');
      const holders = { ...current.holders };
      if (rest.length > 0) holders[namespace] = rest;
      else delete holders[namespace];
      // Remembered: a push that saw the blob readable just before must be refused (blob-index.ts).
      return { ...current, holders, revokedAt: { ...current.revokedAt, [namespace]: ctx.now() } };
    },
    { now: ctx.now, keepClaims: true },
  );
  await ctx.locks.withLocks([grantLockKey(namespace, digest)], async (signal) => {
    const entry = await index.read(digest);
    if (entry?.holders[namespace]?.includes('layer')) return;
    if (!revoked && entry !== undefined && entry.holders[namespace] !== undefined) return;
    signal.throwIfAborted();
    await ctx.metadata.delete(keyFor({ kind: 'layerLink', namespace, digest }));
  });
}
