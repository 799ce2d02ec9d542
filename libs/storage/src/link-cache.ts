import { LinkCacheVersions } from './link-cache-versions.js';
import { pageOf } from './paging.js';
import type { ConditionalWrites, ListPageOptions, MetadataStore, VersionedValue } from './types.js';

/** Bounds the memory the cache can take; the oldest entries go first. */
const MAX_ENTRIES = 10_000;
/** Listings can be large (a repository's tags): fewer of them. */
const MAX_LISTINGS = 256;

/** What a cached value was read under: valid while the stamp of its slots is unchanged. */
interface Stamped {
  readonly expiresAt: number;
  readonly slots: readonly number[];
  readonly stamp: number;
}

interface Entry extends Stamped {
  readonly data: Buffer;
}

interface Listing extends Stamped {
  readonly names: readonly string[];
}

export interface LinkCacheOptions {
  /**
   * Also cache `list()` results (tag pages of a large repository re-read one directory per page).
   * Only for a store this process alone writes: a listing is invalidated by writes made here, so
   * another replica's new tag would stay unlisted until the TTL ran out.
   */
  readonly lists?: boolean;
  readonly now?: () => number;
  /**
   * The version table shared by every thread caching the same store (each gets the same
   * `buffer`): a write through any of them invalidates what the others cached. Default: this
   * cache's own.
   */
  readonly versions?: LinkCacheVersions;
}

/**
 * A read-through cache of link values (`…/link` keys: tags, revisions, layer
 * grants, referrers), sparing the round trip of repeated tag and layer reads:
 * in front of S3 (`link_cache_ttl`), and of fs metadata that one process
 * alone writes (where it took 36% of a manifest GET).
 *
 * Writes through this store, or through another thread's cache sharing its
 * `versions`, invalidate at once; a write by another process shows here
 * within the TTL. Only present values are cached: a link created
 * elsewhere is visible immediately.
 */
export function withLinkCache(
  store: MetadataStore,
  ttlSecs: number,
  options: LinkCacheOptions = {},
): MetadataStore {
  return ttlSecs > 0
    ? new LinkCachingMetadataStore(
        store,
        ttlSecs * 1000,
        options.now ?? Date.now,
        options.lists ?? false,
        options.versions ?? new LinkCacheVersions(),
      )
    : store;
}

function isLink(path: string): boolean {
  return path.endsWith('/link');
}

class LinkCachingMetadataStore implements MetadataStore {
  readonly backend: string;
  readonly conditional: ConditionalWrites | undefined;
  readonly putDeferred?: (path: string, data: string) => void;
  readonly check?: () => Promise<void>;
  readonly close?: () => Promise<void>;
  readonly #entries = new Map<string, Entry>();
  readonly #listings = new Map<string, Listing>();

  constructor(
    private readonly inner: MetadataStore,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly cacheLists: boolean,
    /**
     * Bumped around every write. A read that overlapped a write of what it read does not cache
     * it (it may be the value from before the write), and an entry is dropped once a write
     * (here or in another thread) changed its stamp.
     */
    private readonly versions: LinkCacheVersions,
  ) {
    this.backend = inner.backend;
    const { putDeferred, check, close } = inner;
    if (putDeferred) {
      this.putDeferred = (path, data) => {
        this.#invalidate(path);
        putDeferred.call(inner, path, data);
      };
    }
    if (check) this.check = () => check.call(inner);
    if (close) this.close = () => close.call(inner);
    const conditional = inner.conditional;
    if (conditional) {
      const wrapped: ConditionalWrites = {
        getVersioned: (path): Promise<VersionedValue | undefined> => conditional.getVersioned(path),
        putIfVersion: (path, data, version) =>
          this.#writing(path, () => conditional.putIfVersion(path, data, version)),
      };
      const { deleteIfVersion } = conditional;
      if (deleteIfVersion) {
        wrapped.deleteIfVersion = (path, version) =>
          this.#writing(path, () => deleteIfVersion.call(conditional, path, version));
      }
      this.conditional = wrapped;
    }
  }

  /** Straight from the store; what it reads replaces the cached value. */
  async getUncached(path: string): Promise<Buffer> {
    this.#entries.delete(path);
    return this.get(path);
  }

  async get(path: string): Promise<Buffer> {
    if (!isLink(path)) return this.inner.get(path);
    const entry = this.#entries.get(path);
    if (entry !== undefined) {
      if (this.#fresh(entry)) return Buffer.from(entry.data);
      this.#entries.delete(path);
    }
    const slots = this.versions.linkSlots(path);
    const stamp = this.versions.stamp(slots);
    const data = await this.inner.get(path);
    if (this.versions.stamp(slots) === stamp) {
      evictOldestBeyond(this.#entries, MAX_ENTRIES);
      this.#entries.set(path, { data: Buffer.from(data), expiresAt: this.now() + this.ttlMs, slots, stamp });
    }
    return data;
  }

  put(path: string, data: Uint8Array | string): Promise<void> {
    return this.#writing(path, () => this.inner.put(path, data));
  }

  putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    return this.#writing(path, () => this.inner.putIfAbsent(path, data));
  }

  delete(path: string): Promise<boolean> {
    return this.#writing(path, () => this.inner.delete(path));
  }

  async list(prefix: string): Promise<string[]> {
    if (!this.cacheLists) return this.inner.list(prefix);
    return [...(await this.#listing(prefix))];
  }

  /**
   * Without `lists`, never cached: pages are read where a listing is too long to read whole (a
   * deep job queue, a repository's tags on S3), and each reader moves on through it rather than
   * re-reading one. With `lists`, a page is cut from the cached listing, read whole when absent:
   * the store that option is for (fs, one writer) reads the whole directory for each page anyway,
   * so a walk through a repository's tags reads its directory once between writes, not per page.
   */
  async listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    if (!this.cacheLists) return this.inner.listPage(prefix, options);
    return pageOf(await this.#listing(prefix), options);
  }

  /** The cached listing of `prefix`, read (and cached, unless a write overlapped) when absent or stale. */
  async #listing(prefix: string): Promise<readonly string[]> {
    const listing = this.#listings.get(prefix);
    if (listing !== undefined) {
      if (this.#fresh(listing)) return listing.names;
      this.#listings.delete(prefix);
    }
    const slots = this.versions.listingSlots(prefix);
    const stamp = this.versions.stamp(slots);
    const names = await this.inner.list(prefix);
    if (this.versions.stamp(slots) === stamp) {
      evictOldestBeyond(this.#listings, MAX_LISTINGS);
      this.#listings.set(prefix, { names, expiresAt: this.now() + this.ttlMs, slots, stamp });
    }
    return names;
  }

  async deletePrefix(prefix: string): Promise<void> {
    this.#invalidatePrefix(prefix);
    try {
      await this.inner.deletePrefix(prefix);
    } finally {
      this.#invalidatePrefix(prefix);
    }
  }

  /** Invalidates before and after: a read racing the write may have cached the old value meanwhile. */
  async #writing<T>(path: string, write: () => Promise<T>): Promise<T> {
    this.#invalidate(path);
    try {
      return await write();
    } finally {
      this.#invalidate(path);
    }
  }

  #fresh(cached: Stamped): boolean {
    return cached.expiresAt > this.now() && this.versions.stamp(cached.slots) === cached.stamp;
  }

  #invalidate(path: string): void {
    this.versions.written(path);
    this.#entries.delete(path);
    this.#forgetListingsAbove(path);
  }

  #invalidatePrefix(prefix: string): void {
    this.versions.removed(prefix);
    const below = `${prefix}/`;
    for (const path of this.#entries.keys()) {
      if (path === prefix || path.startsWith(below)) this.#entries.delete(path);
    }
    for (const path of this.#listings.keys()) {
      if (path === prefix || path.startsWith(below)) this.#listings.delete(path);
    }
    this.#forgetListingsAbove(prefix);
  }

  /** A key written or removed may add or remove a child name in the listing of any of its parents. */
  #forgetListingsAbove(path: string): void {
    if (this.#listings.size === 0) return;
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      this.#listings.delete(path.slice(0, slash));
    }
    this.#listings.delete(''); // the root: a new top-level namespace
  }
}

/** Makes room for one more entry, dropping the oldest first. */
function evictOldestBeyond(map: Map<string, unknown>, max: number): void {
  if (map.size < max) return;
  const oldest = map.keys().next();
  if (!oldest.done) map.delete(oldest.value);
}
