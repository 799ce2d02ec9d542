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

export function blobLockKey(digest: DigestParts): string {
  return `blob:${formatDigest(digest)}`;
}

/**
 * The reverse map from a blob to the namespaces that reference it, which lets
 * the registry reclaim a blob's bytes online, the moment its last reference
 * goes. Every method must be called while holding `blobLockKey(digest)`:
 * the lock is what makes "last reference removed → delete bytes" safe against
 * a concurrent upload of the same content.
 */
export class BlobIndex {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly logger: Logger,
  ) {}

  async references(digest: DigestParts): Promise<IndexEntry> {
    try {
      return JSON.parse((await this.metadata.get(keyFor({ kind: 'blobIndex', digest }))).toString('utf8'));
    } catch (error) {
      if (error instanceof NotFoundError) return {};
      throw error;
    }
  }

  async add(digest: DigestParts, namespace: string, references: readonly BlobReference[]): Promise<void> {
    const entry = await this.references(digest);
    const held = new Set(entry[namespace] ?? []);
    const before = held.size;
    for (const reference of references) held.add(reference);
    if (held.size === before && entry[namespace]) return;
    entry[namespace] = [...held].sort();
    await this.metadata.put(keyFor({ kind: 'blobIndex', digest }), JSON.stringify(entry));
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
    const entry = await this.references(digest);
    const held = entry[namespace];
    if (!held) return [];
    const remaining = references === 'all' ? [] : held.filter((reference) => !references.includes(reference));
    if (remaining.length === held.length) return remaining;
    if (remaining.length > 0) entry[namespace] = remaining;
    else delete entry[namespace];
    await this.#save(digest, entry);
    return remaining;
  }

  async #save(digest: DigestParts, entry: IndexEntry): Promise<void> {
    const path = keyFor({ kind: 'blobIndex', digest });
    if (Object.keys(entry).length > 0) {
      await this.metadata.put(path, JSON.stringify(entry));
      return;
    }
    // Last reference gone: reclaim the bytes first, then the index entry, so a
    // crash in between leaves an index entry pointing at nothing (harmless, scrub
    // removes it) rather than bytes nothing knows about.
    await this.blobs.deleteBlob(digest);
    await this.metadata.delete(path);
    this.logger.debug('blob reclaimed', { digest: formatDigest(digest) });
  }
}
