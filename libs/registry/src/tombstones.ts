import { keyFor, type MetadataStore, NotFoundError } from '@angos/storage';

/**
 * A tag's tombstone: the time its last delete was made (`_manifests/tombstones/<tag>`, JSON
 * `{"deleted_at": "<RFC 3339>"}`). Last-writer-wins reads it when a replicated push finds no tag:
 * without it, a push made before a delete on another peer but arriving after it would set the tag
 * again, and the peers would diverge. It is written under the tag's lock, before the tag link
 * goes, so a crash never leaves a deleted tag without one; while the tag exists its link's time
 * decides and the tombstone is not read. `angos scrub --tags` reclaims tombstones
 * (libs/scrub/src/checks/tags.ts, after TOMBSTONE_RETENTION_MS).
 */

/**
 * How long a tombstone is kept: as long as a push older than the delete may still arrive. Nothing
 * configured bounds that (a dead-lettered job can be retried through the jobs API at any time, a
 * partition can last until `scrub --replicate` runs), so a fixed, documented horizon: 30 days
 * (docs/replication.md). A push older than the delete that arrives later than that sets the tag again.
 */
export const TOMBSTONE_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

interface TombstoneJson {
  deleted_at: string;
}

export function encodeTombstone(deletedAtMs: number): string {
  const json: TombstoneJson = { deleted_at: new Date(deletedAtMs).toISOString() };
  return JSON.stringify(json);
}

/** The delete time a tombstone holds, in ms since the epoch; undefined when it does not parse. */
export function decodeTombstone(data: Buffer): number | undefined {
  try {
    const json = JSON.parse(data.toString('utf8')) as Partial<TombstoneJson> | null;
    const at = typeof json?.deleted_at === 'string' ? Date.parse(json.deleted_at) : Number.NaN;
    return Number.isNaN(at) ? undefined : at;
  } catch {
    return undefined;
  }
}

/**
 * The time of the tag's last delete, or undefined without a tombstone (or with one that does not
 * parse: no last-writer-wins against it, as for a tag link without a time). Read past any cache:
 * decisions on it are taken under the tag's lock.
 */
export async function readTombstone(
  metadata: MetadataStore,
  namespace: string,
  tag: string,
): Promise<number | undefined> {
  const path = keyFor({ kind: 'tagTombstone', namespace, tag });
  try {
    const data = metadata.getUncached ? await metadata.getUncached(path) : await metadata.get(path);
    return decodeTombstone(data);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** Records that the tag was deleted at `deletedAtMs`. Under the tag's lock. */
export async function writeTombstone(
  metadata: MetadataStore,
  namespace: string,
  tag: string,
  deletedAtMs: number,
): Promise<void> {
  await metadata.put(keyFor({ kind: 'tagTombstone', namespace, tag }), encodeTombstone(deletedAtMs));
}
