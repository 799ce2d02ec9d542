import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { FsMetadataStore, LinkCacheVersions, MemoryMetadataStore, withLinkCache } from '../src/index.js';

const THREAD = fileURLToPath(new URL('./link-cache-thread.mjs', import.meta.url));
const TAG = 'team/app/_manifests/tags/latest/link';
const TAGS = 'team/app/_manifests/tags';

describe('link caches sharing a version table', () => {
  it('drop what another cache overwrote, deleted or removed by prefix, at once', async () => {
    const shared = new MemoryMetadataStore();
    const versions = new LinkCacheVersions();
    const [one, two] = [1, 2].map(() => withLinkCache(shared, 60, { lists: true, versions }));
    await one!.put(TAG, 'old');
    expect((await one!.get(TAG)).toString()).toBe('old');
    expect(await one!.list(TAGS)).toEqual(['latest']);

    await two!.put(TAG, 'new');
    await two!.put(`${TAGS}/v2/link`, 'v2');
    expect((await one!.get(TAG)).toString()).toBe('new');
    expect(await one!.list(TAGS)).toEqual(['latest', 'v2']);

    await two!.delete(`${TAGS}/v2/link`);
    expect(await one!.list(TAGS)).toEqual(['latest']);
    expect(await one!.list('')).toEqual(['team']);

    await two!.deletePrefix('team/app');
    await expect(one!.get(TAG)).rejects.toThrow();
    expect(await one!.list(TAGS)).toEqual([]);
  });

  it('count a prefix with a trailing slash as the same prefix', () => {
    const versions = new LinkCacheVersions();
    const link = versions.linkSlots('team/app/_manifests/tags/v1/link');
    const listing = versions.listingSlots('team/app/_manifests/tags/');
    const [linkStamp, listingStamp] = [versions.stamp(link), versions.stamp(listing)];
    versions.removed('team/app/');
    expect(versions.stamp(link)).not.toBe(linkStamp);
    expect(versions.stamp(listing)).not.toBe(listingStamp);
  });

  it('still serve from memory what no one wrote', async () => {
    let reads = 0;
    const shared = new (class extends MemoryMetadataStore {
      override get(path: string) {
        reads++;
        return super.get(path);
      }
    })();
    const versions = new LinkCacheVersions();
    const [one, two] = [1, 2].map(() => withLinkCache(shared, 60, { versions }));
    await shared.put(TAG, 'value');
    await one!.get(TAG);
    reads = 0;
    await one!.get(TAG);
    await two!.put('other/_manifests/tags/v1/link', 'x');
    await one!.get(TAG);
    expect(reads).toBe(0);
  });

  it('invalidate across worker threads through a SharedArrayBuffer', { timeout: 30_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'angos-link-cache-'));
    try {
      const versions = new LinkCacheVersions();
      const cache = withLinkCache(new FsMetadataStore(root, { syncToDisk: false }), 60, {
        lists: true,
        versions,
      });
      await cache.put(TAG, 'old');
      expect((await cache.get(TAG)).toString()).toBe('old');
      expect(await cache.list(TAGS)).toEqual(['latest']);
      const thread = new Worker(THREAD, {
        workerData: { root, versions: versions.buffer, path: TAG, added: `${TAGS}/v2/link` },
      });
      try {
        await new Promise<void>((resolve, reject) => {
          thread.once('message', () => resolve());
          thread.once('error', reject);
        });
      } finally {
        await thread.terminate();
      }
      // Acknowledged by the other thread: visible here, long before the TTL.
      expect((await cache.get(TAG)).toString()).toBe('new');
      expect(await cache.list(TAGS)).toEqual(['latest', 'v2']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
