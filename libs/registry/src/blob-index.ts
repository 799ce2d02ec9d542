import type { Logger } from '@angos/observability';
import { type DigestParts, formatDigest } from '@angos/oci';
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

export function blobLockKey(digest: DigestParts): string {
  return `blob:${formatDigest(digest)}`;
}

/**
 * The reverse map from a blob to the namespaces that reference it, which lets
 * the registry reclaim a blob's bytes online, the moment its last reference
 * goes. Every method must be called while holding `blobLockKey(digest)`:
 * the lock is what makes "last reference removed → delete bytes" safe against
 * a concurrent upload of the same content.
 *
 * When the metadata store offers compare-and-swap (S3 with conditional
 * writes), each update is also optimistic: read with its version, write only
 * if that version is still current, else re-read and re-apply. An entry then
 * never loses an update even between processes whose locks do not see each
 * other; without it (fs), the lock alone serializes updates.
 */
export class BlobIndex {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
  ) {}

  async references(digest: DigestParts): Promise<IndexEntry> {
    try {
      return parseEntry(await this.metadata.get(keyFor({ kind: 'blobIndex', digest })));
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
    for (;;) {
      const current = await cas.getVersioned(path);
      const next = change(current ? parseEntry(current.data) : {});
      if (next === 'unchanged') return;
      // An empty entry always had a current version: something was removed from it.
      if (isEmpty(next)) return this.#reclaim(digest, path, current?.version);
      if (await cas.putIfVersion(path, JSON.stringify(next), current?.version)) return;
      this.logger.debug('blob index changed concurrently, retrying', { digest: formatDigest(digest) });
    }
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
