import { describe, expect, it } from 'vitest';
import {
  MemoryMetadataStore,
  type MetadataStore,
  withDeferredWrites,
  withLegacyBlobIndex,
  withLinkCache,
  withMetadataKeyValidation,
} from '../src/index.js';
import { describeLegacyLayoutContract, describeMetadataStoreContract } from '../src/testing/contract.js';

const noCleanup = async () => {};

// The decorators keep the contract of the store they wrap.
describeMetadataStoreContract('memory with link cache and deferred writes', async () => ({
  store: withMetadataKeyValidation(withLinkCache(withDeferredWrites(new MemoryMetadataStore(), 60), 30)),
  cleanup: noCleanup,
}));

describeMetadataStoreContract('memory with link and listing cache (single writer)', async () => ({
  store: withMetadataKeyValidation(withLinkCache(new MemoryMetadataStore(), 30, { lists: true })),
  cleanup: noCleanup,
}));

describeMetadataStoreContract('memory read in both blob index layouts', async () => ({
  store: withMetadataKeyValidation(withLegacyBlobIndex(new MemoryMetadataStore())),
  cleanup: noCleanup,
}));

// The memory store offers conditional deletes, which RGW does not: the S3 run cannot cover them.
describeLegacyLayoutContract('memory metadata (conditional deletes)', async () => {
  const raw = new MemoryMetadataStore();
  return {
    store: {
      metadata: withMetadataKeyValidation(withLegacyBlobIndex(raw)),
      writeRaw: (path, data) => raw.put(path, data),
      existsRaw: (path) =>
        raw.get(path).then(
          () => true,
          () => false,
        ),
    },
    async cleanup() {
      expect(await raw.list(''), 'keys left behind').toEqual([]);
    },
  };
});

/** `inner` with some of its methods replaced. */
function overriding(inner: MetadataStore, overrides: Partial<MetadataStore>): MetadataStore {
  return {
    backend: inner.backend,
    get: (path) => inner.get(path),
    put: (path, data) => inner.put(path, data),
    putIfAbsent: (path, data) => inner.putIfAbsent(path, data),
    delete: (path) => inner.delete(path),
    list: (prefix) => inner.list(prefix),
    listPage: (prefix, options) => inner.listPage(prefix, options),
    deletePrefix: (prefix) => inner.deletePrefix(prefix),
    ...overrides,
  };
}

/** `inner` whose puts wait until `releaseWrite()`: a write caught in flight. */
function withHeldPuts(inner: MetadataStore): { store: MetadataStore; releaseWrite: () => void } {
  let release: () => void = () => {};
  const store = overriding(inner, {
    put: async (path, data) => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return inner.put(path, data);
    },
  });
  return { store, releaseWrite: () => release() };
}

/** A store that counts reads, to see which ones the cache answered. */
function counting(inner: MetadataStore): MetadataStore & { reads: number } {
  const store = overriding(inner, {
    get: async (path) => {
      store.reads++;
      return inner.get(path);
    },
  }) as MetadataStore & { reads: number };
  store.reads = 0;
  return store;
}

describe('withLinkCache', () => {
  it('answers link reads from memory until the TTL passes, other keys always from the store', async () => {
    let now = 1_000_000;
    const shared = new MemoryMetadataStore();
    const inner = counting(shared);
    const cached = withLinkCache(inner, 30, { now: () => now });
    await shared.put('ns/_manifests/tags/v1/link', 'one');
    await shared.put('ns/_blob_index/x', 'index');
    expect((await cached.get('ns/_manifests/tags/v1/link')).toString()).toBe('one');
    // Another replica's write is not seen until the entry expires.
    await shared.put('ns/_manifests/tags/v1/link', 'two');
    now += 29_000;
    expect((await cached.get('ns/_manifests/tags/v1/link')).toString()).toBe('one');
    now += 1_001;
    expect((await cached.get('ns/_manifests/tags/v1/link')).toString()).toBe('two');
    expect(inner.reads).toBe(2);
    await cached.get('ns/_blob_index/x');
    await cached.get('ns/_blob_index/x');
    expect(inner.reads).toBe(4);
  });

  it('drops an entry on its own writes, deletes and prefix deletes, and does not cache absence', async () => {
    const shared = new MemoryMetadataStore();
    const cached = withLinkCache(shared, 30);
    await expect(cached.get('ns/a/link')).rejects.toThrow();
    await shared.put('ns/a/link', 'created elsewhere');
    expect((await cached.get('ns/a/link')).toString()).toBe('created elsewhere');
    await cached.put('ns/a/link', 'mine');
    expect((await cached.get('ns/a/link')).toString()).toBe('mine');
    await cached.delete('ns/a/link');
    await expect(cached.get('ns/a/link')).rejects.toThrow();
    await cached.put('ns/b/link', 'x');
    await cached.get('ns/b/link');
    await cached.deletePrefix('ns');
    await expect(cached.get('ns/b/link')).rejects.toThrow();
  });

  it('does not keep a value read while a write of the same key was in flight', async () => {
    const shared = new MemoryMetadataStore();
    await shared.put('ns/a/link', 'old');
    const { store: slow, releaseWrite } = withHeldPuts(shared);
    const cached = withLinkCache(slow, 30);
    const writing = cached.put('ns/a/link', 'new');
    expect((await cached.get('ns/a/link')).toString()).toBe('old'); // read before the write landed
    releaseWrite();
    await writing;
    expect((await cached.get('ns/a/link')).toString()).toBe('new');
  });

  it('reads past the cache with getUncached, through the key validation too', async () => {
    // Another replica writes straight to the shared store; this one's cache still holds the old value.
    const shared = new MemoryMetadataStore();
    const cached = withMetadataKeyValidation(withLinkCache(shared, 30));
    await shared.put('ns/_manifests/tags/latest/link', 'old');
    expect((await cached.get('ns/_manifests/tags/latest/link')).toString()).toBe('old');
    await shared.put('ns/_manifests/tags/latest/link', 'new');
    expect((await cached.get('ns/_manifests/tags/latest/link')).toString()).toBe('old');
    expect((await cached.getUncached!('ns/_manifests/tags/latest/link')).toString()).toBe('new');
    // The fresh value replaced the cached one.
    expect((await cached.get('ns/_manifests/tags/latest/link')).toString()).toBe('new');
    await expect(cached.getUncached!('../escape/link')).rejects.toThrow();
    await shared.delete('ns/_manifests/tags/latest/link');
  });

  it('caches listings only when asked, and drops them on any write below them, root included', async () => {
    const shared = new MemoryMetadataStore();
    let lists = 0;
    const inner = overriding(shared, {
      list: async (prefix) => {
        lists++;
        return shared.list(prefix);
      },
    });
    const cached = withLinkCache(inner, 30, { lists: true });
    await cached.put('team/app/_manifests/tags/v1/link', 'one');
    expect(await cached.list('team/app/_manifests/tags')).toEqual(['v1']);
    expect(await cached.list('team/app/_manifests/tags')).toEqual(['v1']);
    expect(lists).toBe(1);
    // A new tag, a deleted tag and a whole repository deleted: each shows at once.
    await cached.put('team/app/_manifests/tags/v2/link', 'two');
    expect(await cached.list('team/app/_manifests/tags')).toEqual(['v1', 'v2']);
    await cached.delete('team/app/_manifests/tags/v1/link');
    expect(await cached.list('team/app/_manifests/tags')).toEqual(['v2']);
    expect(await cached.list('')).toEqual(['team']);
    await cached.put('other/_manifests/tags/v1/link', 'x');
    expect(await cached.list('')).toEqual(['other', 'team']);
    await cached.deletePrefix('team');
    expect(await cached.list('team/app/_manifests/tags')).toEqual([]);
    expect(await cached.list('')).toEqual(['other']);
    // What a caller does with the array it got does not change the cached listing.
    (await cached.list('other/_manifests/tags')).push('mutated');
    expect(await cached.list('other/_manifests/tags')).toEqual(['v1']);
    // Without the option, every listing goes to the store.
    const uncached = withLinkCache(inner, 30);
    lists = 0;
    await uncached.list('other/_manifests/tags');
    await uncached.list('other/_manifests/tags');
    expect(lists).toBe(2);
  });

  it('cuts pages from the cached listing with the option (one directory read per walk), from the store without', async () => {
    const shared = new MemoryMetadataStore();
    const reads: string[] = [];
    const inner = overriding(shared, {
      list: async (prefix) => {
        reads.push('list');
        return shared.list(prefix);
      },
      listPage: async (prefix, options) => {
        reads.push('listPage');
        return shared.listPage(prefix, options);
      },
    });
    const dir = 'ns/_manifests/tags';
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await shared.put(`${dir}/${tag}/link`, tag);
    const cached = withLinkCache(inner, 30, { lists: true });
    expect(await cached.listPage(dir, { limit: 2 })).toEqual(['a', 'b']);
    expect(await cached.listPage(dir, { after: 'b', limit: 2 })).toEqual(['c', 'd']);
    expect(await cached.listPage(dir, { after: 'd', limit: 2 })).toEqual(['e']);
    expect(reads).toEqual(['list']);
    // A write below it shows on the next page.
    await cached.put(`${dir}/f/link`, 'f');
    expect(await cached.listPage(dir, { after: 'e', limit: 2 })).toEqual(['f']);
    expect(reads).toEqual(['list', 'list']);
    await expect(cached.listPage(dir, { limit: 0 })).rejects.toBeInstanceOf(RangeError);
    reads.length = 0;
    const uncached = withLinkCache(inner, 30);
    expect(await uncached.listPage(dir, { after: 'a', limit: 1 })).toEqual(['b']);
    expect(await uncached.listPage(dir, { after: 'a', limit: 1 })).toEqual(['b']);
    expect(reads).toEqual(['listPage', 'listPage']);
  });

  it('lets a listing expire, and does not keep one read while a write below it was in flight', async () => {
    let now = 1_000_000;
    const shared = new MemoryMetadataStore();
    const { store: slow, releaseWrite } = withHeldPuts(shared);
    const cached = withLinkCache(slow, 30, { lists: true, now: () => now });
    await shared.put('ns/_manifests/tags/a/link', 'a');
    const writing = cached.put('ns/_manifests/tags/b/link', 'b');
    expect(await cached.list('ns/_manifests/tags')).toEqual(['a']);
    releaseWrite();
    await writing;
    expect(await cached.list('ns/_manifests/tags')).toEqual(['a', 'b']);
    // Written by another process (scrub): seen once the TTL has passed.
    await shared.put('ns/_manifests/tags/c/link', 'c');
    expect(await cached.list('ns/_manifests/tags')).toEqual(['a', 'b']);
    now += 30_001;
    expect(await cached.list('ns/_manifests/tags')).toEqual(['a', 'b', 'c']);
  });

  it('is the store itself with a TTL of 0', () => {
    const store = new MemoryMetadataStore();
    expect(withLinkCache(store, 0)).toBe(store);
  });
});

describe('withDeferredWrites', () => {
  it('writes the last value per key once per interval, and the rest on close', async () => {
    const inner = new MemoryMetadataStore();
    const writes: string[] = [];
    const recording = overriding(inner, {
      put: async (path, data) => {
        writes.push(`${path}=${data}`);
        return inner.put(path, data);
      },
    });
    const store = withDeferredWrites(recording, 0.05);
    for (let i = 1; i <= 5; i++) store.putDeferred!('ns/a/pulledat', `t${i}`);
    store.putDeferred!('ns/b/pulledat', 'b');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(writes.sort()).toEqual(['ns/a/pulledat=t5', 'ns/b/pulledat=b']);
    store.putDeferred!('ns/a/pulledat', 't6');
    await store.close!();
    expect(writes).toContain('ns/a/pulledat=t6');
    expect((await inner.get('ns/a/pulledat')).toString()).toBe('t6');
  });

  it('lets a delete win over a flush that was writing the same key', async () => {
    const inner = new MemoryMetadataStore();
    const { store: slow, releaseWrite } = withHeldPuts(inner);
    const store = withDeferredWrites(slow, 0.01);
    store.putDeferred!('ns/a/pulledat', 'pulled');
    await new Promise((resolve) => setTimeout(resolve, 30)); // the flush is now writing
    const deleting = store.delete('ns/a/pulledat');
    releaseWrite();
    expect(await deleting).toBe(true);
    await expect(inner.get('ns/a/pulledat')).rejects.toThrow();
    await store.close!();
  });

  it('reports a failed background write to the logger instead of throwing', async () => {
    const inner = new MemoryMetadataStore();
    const failing = overriding(inner, {
      put: async () => {
        throw new Error('S3 is down');
      },
    });
    const warnings: unknown[] = [];
    const store = withDeferredWrites(failing, 60, {
      warn: (message, fields) => warnings.push({ message, fields }),
    });
    store.putDeferred!('ns/a/pulledat', 'x');
    await store.close!();
    expect(warnings).toEqual([
      {
        message: 'deferred metadata write failed',
        fields: { key: 'ns/a/pulledat', error: 'Error: S3 is down' },
      },
    ]);
  });
});
