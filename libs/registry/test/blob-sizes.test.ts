import { randomUUID } from 'node:crypto';
import { parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { OciError } from '@angos/oci';
import { openStores } from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import { s3Connection, s3Table, s3TestStores, wipeBucket } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { BlobSizes } from '../src/blob-sizes.js';
import { createRegistry } from '../src/index.js';
import { digestOf, Pausing, s3Server, upload } from './support.js';

describe('BlobSizes', () => {
  it('keeps a size for the TTL, nothing with a TTL of 0, and forgets a deleted digest at once', () => {
    let now = 1_000;
    let ttlMs = 30_000;
    const sizes = new BlobSizes(
      () => ttlMs,
      () => now,
    );
    const digest = digestOf('blob');
    sizes.set(digest, 4);
    expect(sizes.get(digest)).toBe(4);
    now += 29_999;
    expect(sizes.get(digest)).toBe(4);
    now += 1;
    expect(sizes.get(digest)).toBeUndefined();
    sizes.set(digest, 4);
    sizes.forget(digest);
    expect(sizes.get(digest)).toBeUndefined();
    ttlMs = 0;
    sizes.set(digest, 4);
    expect(sizes.get(digest)).toBeUndefined();
  });

  it('keeps at most 10,000 sizes, dropping the oldest', () => {
    const sizes = new BlobSizes(() => 30_000);
    for (let i = 0; i <= 10_000; i++) sizes.set(digestOf(`blob ${i}`), i);
    expect(sizes.get(digestOf('blob 0'))).toBeUndefined();
    expect(sizes.get(digestOf('blob 1'))).toBe(1);
    expect(sizes.get(digestOf('blob 10000'))).toBe(10_000);
  });
});

describe.skipIf(!s3Server)('blob HEAD on S3 (Ceph RGW) with the link cache', () => {
  it('asks the store for a size once per TTL, after the grant check of every request', async () => {
    const keyPrefix = `angos-registry-test/${randomUUID()}`;
    // The configuration `angos server` runs with on S3: link_cache_ttl at its default (30 s).
    const { config } = parseConfig(
      `[server]\nbind_address = "127.0.0.1"\n${s3Table('blob_store.s3', s3Server!, keyPrefix)}`,
    );
    expect(config.metadata_store.s3?.link_cache_ttl).toBe(30);
    const stores = await openStores(s3TestStores(s3Server!, keyPrefix));
    const blobs = new Pausing(stores.blobs);
    const registry = createRegistry({
      blobs: blobs.store,
      metadata: stores.metadata,
      locks: new MemoryLockManager(),
      config: () => config,
      logger: silentLogger,
    });
    const statBlobs = () => blobs.calls.filter((call) => call.startsWith('statBlob ')).length;
    try {
      const digest = await upload(registry, 't/app', 'a layer');
      await upload(registry, 't/other', 'a layer');
      blobs.calls.length = 0;
      for (let i = 0; i < 5; i++) expect(await registry.blobs.stat('t/app', digest)).toEqual({ size: 7 });
      expect(await registry.blobs.stat('t/other', digest)).toEqual({ size: 7 });
      expect(statBlobs()).toBe(1);

      // The size is only ever answered behind a grant: a namespace that gave its grant back is refused.
      await registry.blobs.delete('t/app', digest);
      const refused = await registry.blobs.stat('t/app', digest).catch((error: unknown) => error);
      expect(refused instanceof OciError && refused.code).toBe('BLOB_UNKNOWN');

      // Bytes this process deletes (no holder left, grace period over) are asked for again.
      await registry.blobs.delete('t/other', digest);
      expect((await registry.collectGarbage({ gracePeriodMs: 0 })).blobsDeleted).toBe(1);
      await upload(registry, 't/app', 'a layer');
      blobs.calls.length = 0;
      expect(await registry.blobs.stat('t/app', digest)).toEqual({ size: 7 });
      expect(statBlobs()).toBe(1);
    } finally {
      await stores.close();
      await wipeBucket(new S3Bucket(s3Connection(s3Server!, keyPrefix)));
    }
  });
});
