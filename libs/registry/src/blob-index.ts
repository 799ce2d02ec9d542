import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@angos/observability';
import { type DigestParts, formatDigest, OciError } from '@angos/oci';
import { type BlobStore, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';

/**
 * Why a namespace holds on to a blob:
 * - `layer`: the namespace uploaded or mounted it (it has a `_layers` grant and may read it);
 * - `manifest`: the blob is a manifest stored in the namespace;
 * - `ref:<digest>`: a manifest of the namespace references it (config, layer or child manifest).
 */
export type BlobReference = 'layer' | 'manifest' | `ref:${string}`;

export function manifestRef(manifest: DigestParts): BlobReference {
  return `ref:${formatDigest(manifest)}`;
}

/** Per blob: namespace → the references that namespace holds. Stored as JSON at `_blob_index/<alg>/<hex>`. */
type IndexEntry = Record<string, BlobReference[]>;

/** What an update makes of an entry: a new entry, or `unchanged` to write nothing. */
type Change = (entry: IndexEntry) => IndexEntry | 'unchanged';

/**
 * Lock-free mode: the entry of a blob whose bytes are being reclaimed. No namespace can be
 * named `_reclaiming` (components start with [a-z0-9]).
 */
const RECLAIMING = '_reclaiming';
const RECLAIMING_ENTRY = JSON.stringify({ [RECLAIMING]: [] });
/** How often an update waiting for a reclamation looks again. */
const RECLAIM_POLL_MS = 25;
/** A reclamation claim unchanged this long was abandoned (its process died): take it over. */
const ABANDONED_RECLAIM_MS = 15_000;

/** References that promise readable bytes (the others may name content never pushed). */
const NEEDS_BYTES: ReadonlySet<BlobReference> = new Set(['layer', 'manifest']);

export function blobLockKey(digest: DigestParts): string {
  return `blob:${formatDigest(digest)}`;
}

/**
 * The reverse map from a blob to the namespaces that reference it, which lets
 * the registry reclaim a blob's bytes online, the moment its last reference
 * goes. Every method must be called while holding the blob's lock
 * (`BlobLocks`): the lock is what makes "last reference removed → delete
 * bytes" safe against a concurrent upload of the same content, except in
 * lock-free mode (below), where the index does that itself.
 *
 * When the metadata store offers compare-and-swap (S3 with conditional
 * writes), each update is also optimistic: read with its version, write only
 * if that version is still current, else re-read and re-apply. An entry then
 * never loses an update even between processes whose locks do not see each
 * other; without it (fs), the lock alone serializes updates.
 *
 * Lock-free mode (`lockFree`: S3 lock strategy, digests not locked across
 * namespaces, see `BlobLocks`): the last reference's removal first claims the
 * entry (compare-and-swap to a `_reclaiming` marker), then deletes the bytes,
 * then the entry. Updates wait while a claim stands, so no reference is added
 * to bytes on their way out; and an update that adds a reference promising
 * bytes checks afterwards that they still exist (they may have gone just
 * before its write landed), withdrawing it and failing if not.
 */
export class BlobIndex {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
    private readonly options: {
      readonly lockFree?: boolean;
      /** A reclamation claim unchanged this long is taken over (default 15 s). */
      readonly abandonedReclaimMs?: number;
    } = {},
  ) {}

  async references(digest: DigestParts): Promise<IndexEntry> {
    try {
      const entry = parseEntry(await this.metadata.get(keyFor({ kind: 'blobIndex', digest })));
      return Object.hasOwn(entry, RECLAIMING) ? {} : entry;
    } catch (error) {
      if (error instanceof NotFoundError) return {};
      throw error;
    }
  }

  async add(digest: DigestParts, namespace: string, references: readonly BlobReference[]): Promise<void> {
    await this.#update(digest, (entry) => {
      const held = new Set(entry[namespace] ?? []);
      const before = held.size;
      for (const reference of references) held.add(reference);
      if (held.size === before && entry[namespace]) return 'unchanged';
      return { ...entry, [namespace]: [...held].sort() };
    });
    if (this.options.lockFree && references.some((reference) => NEEDS_BYTES.has(reference))) {
      await this.#assertBytesStayed(digest, namespace, references);
    }
  }

  /**
   * Lock-free mode: another namespace may have reclaimed the bytes between the caller's commit
   * (which found them present) and the reference landing. Now that the reference is in, no
   * reclamation can start; if the bytes are already gone, take the reference back and fail, so
   * the client pushes again rather than holding a grant to nothing.
   */
  async #assertBytesStayed(
    digest: DigestParts,
    namespace: string,
    references: readonly BlobReference[],
  ): Promise<void> {
    try {
      await this.blobs.statBlob(digest);
      return;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    await this.remove(digest, namespace, references);
    this.logger.debug('blob reclaimed by another namespace during the push', {
      digest: formatDigest(digest),
    });
    throw new OciError('BLOB_UNKNOWN', {
      digest: formatDigest(digest),
      reason: 'reclaimed concurrently; push it again',
    });
  }

  /**
   * Drops references. Returns what the namespace still holds afterwards.
   * When no namespace holds anything any more, the blob's bytes are deleted.
   */
  async remove(
    digest: DigestParts,
    namespace: string,
    references: readonly BlobReference[] | 'all',
  ): Promise<readonly BlobReference[]> {
    let remaining: BlobReference[] = [];
    await this.#update(digest, (entry) => {
      const held = entry[namespace];
      remaining = [];
      if (!held) return 'unchanged';
      remaining = references === 'all' ? [] : held.filter((reference) => !references.includes(reference));
      if (remaining.length === held.length) return 'unchanged';
      const next = { ...entry };
      if (remaining.length > 0) next[namespace] = remaining;
      else delete next[namespace];
      return next;
    });
    return remaining;
  }

  /**
   * Applies `change` to the entry and saves the result: with compare-and-swap,
   * only over the version it read (re-reading and re-applying otherwise).
   */
  async #update(digest: DigestParts, change: Change): Promise<void> {
    const path = keyFor({ kind: 'blobIndex', digest });
    const cas = this.metadata.conditional;
    if (!cas) {
      const next = change(await this.references(digest));
      if (next === 'unchanged') return;
      if (isEmpty(next)) await this.#reclaim(digest, path, undefined);
      else await this.metadata.put(path, JSON.stringify(next));
      return;
    }
    let claim: { version: string; seenAt: number } | undefined;
    for (;;) {
      const current = await cas.getVersioned(path);
      let entry = current ? parseEntry(current.data) : {};
      if (current && Object.hasOwn(entry, RECLAIMING)) {
        // Another process is reclaiming the bytes: wait for it, or take over a claim it abandoned.
        if (claim?.version !== current.version) claim = { version: current.version, seenAt: Date.now() };
        if (Date.now() - claim.seenAt < (this.options.abandonedReclaimMs ?? ABANDONED_RECLAIM_MS)) {
          await sleep(RECLAIM_POLL_MS);
          continue;
        }
        entry = {};
      }
      const next = change(entry);
      if (next === 'unchanged') return;
      if (isEmpty(next)) {
        // Only a removal empties an entry, and only one that exists.
        if (current === undefined) return;
        if (!this.options.lockFree) return this.#reclaim(digest, path, current.version);
        // Claim the reclamation first: an update that lands before the claim makes it fail.
        if (await cas.putIfVersion(path, RECLAIMING_ENTRY, current.version)) {
          return this.#reclaimClaimed(digest, path);
        }
      } else if (await cas.putIfVersion(path, JSON.stringify(next), current?.version)) {
        return;
      }
      this.logger.debug('blob index changed concurrently, retrying', { digest: formatDigest(digest) });
    }
  }

  /** Lock-free mode: the claim is ours; the bytes go, then the claim (unless taken over meanwhile). */
  async #reclaimClaimed(digest: DigestParts, path: string): Promise<void> {
    await this.blobs.deleteBlob(digest);
    const cas = this.metadata.conditional!;
    const current = await cas.getVersioned(path);
    if (current === undefined || !Object.hasOwn(parseEntry(current.data), RECLAIMING)) return;
    if (cas.deleteIfVersion) await cas.deleteIfVersion(path, current.version);
    else await this.metadata.delete(path);
    this.logger.debug('blob reclaimed', { digest: formatDigest(digest) });
  }

  /**
   * The last reference is gone: the bytes go first, then the index entry, so
   * a crash in between leaves an entry pointing at nothing (harmless, scrub
   * removes it) rather than bytes nothing knows about. The blob lock keeps a
   * concurrent upload of the same content out meanwhile.
   */
  async #reclaim(digest: DigestParts, path: string, version: string | undefined): Promise<void> {
    await this.blobs.deleteBlob(digest);
    const deleteIfVersion = this.metadata.conditional?.deleteIfVersion;
    if (version !== undefined && deleteIfVersion) {
      await deleteIfVersion.call(this.metadata.conditional, path, version);
    } else {
      await this.metadata.delete(path);
    }
    this.logger.debug('blob reclaimed', { digest: formatDigest(digest) });
  }
}

function isEmpty(entry: IndexEntry): boolean {
  return Object.keys(entry).length === 0;
}

function parseEntry(data: Buffer): IndexEntry {
  return JSON.parse(data.toString('utf8')) as IndexEntry;
}
