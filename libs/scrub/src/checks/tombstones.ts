import { isValidTag } from '@angos/oci';
import { decodeTombstone, TOMBSTONE_RETENTION_MS, tagLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { quarantine } from '../repairs.js';
import type { ScrubAction, ScrubContext } from '../types.js';
import { getValue, list } from '../walk.js';

/** What reclaiming a tombstone is called in the log and the dry-run listing. */
export const DELETE_TOMBSTONE = 'delete-tombstone';

/**
 * The tag tombstones of a namespace (`_manifests/tombstones/<tag>`, libs/registry tombstones.ts)
 * that last-writer-wins no longer needs, for `--tags`:
 * - one whose tag exists again: while the tag stands its link's time decides, and its next
 *   delete writes a new tombstone;
 * - one older than TOMBSTONE_RETENTION_MS (30 days): the horizon docs/replication.md gives for a
 *   push older than the delete to arrive.
 * Each is re-decided under the tag's lock, on fresh reads, before it goes: a delete or push racing
 * the repair wins. A tombstone of a name that is not a tag, or that does not parse, is quarantined.
 */
export async function* checkTombstones(
  ctx: ScrubContext,
  check: string,
  namespace: string,
): AsyncIterable<ScrubAction> {
  for (const tag of await list(ctx, keyFor({ kind: 'tagTombstones', namespace }))) {
    const path = keyFor({ kind: 'tagTombstone', namespace, tag });
    if (!isValidTag(tag)) {
      yield quarantine(ctx, check, path, 'a tombstone of a name that is not a valid tag');
      continue;
    }
    const data = await getValue(ctx, path);
    if (data === undefined) continue;
    if (decodeTombstone(data) === undefined) {
      yield quarantine(ctx, check, path, 'the tombstone does not parse');
      continue;
    }
    const reason = await reclaimable(ctx, namespace, tag, data);
    if (reason === undefined) continue;
    yield {
      check,
      action: DELETE_TOMBSTONE,
      key: path,
      reason,
      apply: () =>
        ctx.locks.withLocks([tagLockKey(namespace, tag)], async (signal) => {
          const fresh = await getValue(ctx, path, { fresh: true });
          if (fresh === undefined || (await reclaimable(ctx, namespace, tag, fresh, true)) === undefined)
            return;
          signal.throwIfAborted();
          await ctx.metadata.delete(path);
        }),
    };
  }
}

/**
 * The tombstones of a namespace that is being removed (`--orphan-namespaces`): each goes under
 * its tag's lock, as a delete of the tag would write one.
 */
export async function* removeTombstones(
  ctx: ScrubContext,
  check: string,
  namespace: string,
  reason: string,
): AsyncIterable<ScrubAction> {
  for (const tag of await list(ctx, keyFor({ kind: 'tagTombstones', namespace }))) {
    const path = keyFor({ kind: 'tagTombstone', namespace, tag });
    yield {
      check,
      action: DELETE_TOMBSTONE,
      key: path,
      reason,
      apply: () =>
        ctx.locks.withLocks([tagLockKey(namespace, tag)], async (signal) => {
          signal.throwIfAborted();
          await ctx.metadata.delete(path);
        }),
    };
  }
}

/** Why the tombstone (`data`) is no longer needed, or undefined while it is. */
async function reclaimable(
  ctx: ScrubContext,
  namespace: string,
  tag: string,
  data: Buffer,
  fresh = false,
): Promise<string | undefined> {
  const deletedAtMs = decodeTombstone(data);
  if (deletedAtMs === undefined) return undefined; // quarantined, not reclaimed
  if ((await getValue(ctx, keyFor({ kind: 'tagLink', namespace, tag }), { fresh })) !== undefined) {
    return 'the tag exists again: its own time decides';
  }
  if (ctx.now() - deletedAtMs > TOMBSTONE_RETENTION_MS) {
    return `the delete is older than ${TOMBSTONE_RETENTION_MS / 86_400_000} days`;
  }
  return undefined;
}
