import { legacyPathOf } from './keys.js';
import { MetadataStoreWrapper } from './metadata-wrapper.js';
import { type ConditionalWrites, type MetadataStore, NotFoundError, type VersionedValue } from './types.js';

/**
 * Serves blob index entries that a store wrote before blob directories fanned out
 * (`_blob_index/<alg>/<hex>`, see keys.ts) as if they were at their fanned-out key: a read looks
 * at the fanned-out key first and the legacy one after it, a write goes to the fanned-out key
 * (shadowing the legacy value from then on), a delete removes both. Every other key passes
 * through untouched. Nothing is ever written at a legacy key, so a legacy value only ever
 * disappears.
 *
 * With compare-and-swap, a legacy value is read with a version of its own (`LEGACY` + its
 * version); writing over that version creates the fanned-out key only if it is still absent,
 * so of several writers that read the same legacy value exactly one wins, as with one key.
 * One difference remains: a writer that read a legacy value just before another process
 * deleted the entry (both keys) recreates it from what it read. That can only add references,
 * which keep bytes longer; it never makes any disappear.
 *
 * Goes directly around the driver, under caches and deferred writes (which then see one key).
 * Not for the memory store, which never held the legacy layout.
 */
export function withLegacyBlobIndex(store: MetadataStore): MetadataStore {
  return new LegacyBlobIndexStore(store);
}

/** Marks a version read from a legacy key; never the start of a version a backend hands out. */
const LEGACY = 'legacy-layout:';

class LegacyBlobIndexStore extends MetadataStoreWrapper {
  constructor(inner: MetadataStore) {
    super(inner, {
      conditional: (conditional) => new LegacyBlobIndexConditionalWrites(conditional),
      getUncached: (getUncached) => (path) => readEitherLayout(path, getUncached),
    });
  }

  override get(path: string): Promise<Buffer> {
    return readEitherLayout(path, (key) => this.inner.get(key));
  }

  override async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    const legacy = legacyPathOf(path);
    if (legacy !== undefined && (await this.#has(legacy))) return false;
    return this.inner.putIfAbsent(path, data);
  }

  override async delete(path: string): Promise<boolean> {
    const legacy = legacyPathOf(path);
    if (legacy === undefined) return this.inner.delete(path);
    // The legacy value first: while the fanned-out one exists it shadows it, so no reader ever
    // sees the legacy value come back.
    const legacyDeleted = await this.inner.delete(legacy);
    const deleted = await this.inner.delete(path);
    return legacyDeleted || deleted;
  }

  async #has(path: string): Promise<boolean> {
    try {
      await this.inner.get(path);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
  }
}

class LegacyBlobIndexConditionalWrites implements ConditionalWrites {
  readonly deleteIfVersion?: (path: string, version: string) => Promise<boolean>;

  constructor(private readonly inner: ConditionalWrites) {
    const { deleteIfVersion } = inner;
    if (deleteIfVersion) {
      this.deleteIfVersion = (path, version) =>
        this.#deleteIfVersion(deleteIfVersion.bind(inner), path, version);
    }
  }

  async getVersioned(path: string): Promise<VersionedValue | undefined> {
    const current = await this.inner.getVersioned(path);
    const legacy = legacyPathOf(path);
    if (current !== undefined || legacy === undefined) return current;
    const old = await this.inner.getVersioned(legacy);
    return old && { data: old.data, version: LEGACY + old.version };
  }

  async putIfVersion(path: string, data: Uint8Array | string, version: string | undefined): Promise<boolean> {
    const legacy = legacyPathOf(path);
    if (legacy === undefined) return this.inner.putIfVersion(path, data, version);
    // Over a legacy value: it never changes, so the write wins exactly when no other writer has
    // created the fanned-out key since.
    if (version?.startsWith(LEGACY)) return this.inner.putIfVersion(path, data, undefined);
    // Only if absent: absent in both layouts.
    if (version === undefined && (await this.inner.getVersioned(legacy)) !== undefined) return false;
    return this.inner.putIfVersion(path, data, version);
  }

  async #deleteIfVersion(
    deleteIfVersion: (path: string, version: string) => Promise<boolean>,
    path: string,
    version: string,
  ): Promise<boolean> {
    const legacy = legacyPathOf(path);
    if (legacy === undefined) return deleteIfVersion(path, version);
    if (version.startsWith(LEGACY)) {
      // The legacy value is current only while no fanned-out value shadows it.
      if ((await this.inner.getVersioned(path)) !== undefined) return false;
      return deleteIfVersion(legacy, version.slice(LEGACY.length));
    }
    // A fanned-out value shadows the legacy one, which can go first (as in `delete`).
    const old = await this.inner.getVersioned(legacy);
    if (old !== undefined) await deleteIfVersion(legacy, old.version);
    return deleteIfVersion(path, version);
  }
}

/** Reads the fanned-out key, then the legacy one; the NotFoundError names the fanned-out key. */
async function readEitherLayout(path: string, read: (key: string) => Promise<Buffer>): Promise<Buffer> {
  const legacy = legacyPathOf(path);
  if (legacy === undefined) return read(path);
  try {
    return await read(path);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    try {
      return await read(legacy);
    } catch (legacyError) {
      throw legacyError instanceof NotFoundError ? error : legacyError;
    }
  }
}
