import { Readable, Writable } from 'node:stream';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import type { DigestParts } from '@angos/oci';
import { type BlobStore, type ByteRange, MemoryBlobStore, MemoryMetadataStore } from '@angos/storage';
import { configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { SMALL_BLOB_BYTES } from '../src/blobs.js';
import { createRegistry, type Registry } from '../src/index.js';
import { upload } from './support.js';

/**
 * A registry over a blob store whose reads are counted and can be made to return other bytes
 * than those stored (a corrupt file).
 */
function registryOverCountedStore() {
  const store = new MemoryBlobStore();
  const counts = { reads: 0, stats: 0 };
  let corrupt = false;
  /** Per read while `oversized`: how many of its 64 chunks of 1 KiB the reader took. */
  let oversized: number[] | undefined;
  const oversizedRead = (taken: number[]) => {
    const index = taken.push(0) - 1;
    return Readable.from(
      (function* () {
        for (let chunk = 0; chunk < 64; chunk += 1) {
          taken[index] = (taken[index] as number) + 1;
          yield Buffer.alloc(1024, 'x');
        }
      })(),
    );
  };
  const blobs = new Proxy(store, {
    get(target, property) {
      if (property === 'readBlob') {
        return async (digest: DigestParts, range?: ByteRange) => {
          counts.reads += 1;
          if (oversized) return oversizedRead(oversized);
          return corrupt
            ? Readable.from([Buffer.from('not the pushed bytes')])
            : target.readBlob(digest, range);
        };
      }
      if (property === 'statBlob') {
        return (digest: DigestParts) => {
          counts.stats += 1;
          return target.statBlob(digest);
        };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as BlobStore;
  const config = configOf();
  const registry = createRegistry({
    blobs,
    metadata: new MemoryMetadataStore(),
    locks: new MemoryLockManager(),
    config: () => config,
    logger: silentLogger,
  });
  return {
    registry,
    store,
    counts,
    corrupt(value: boolean) {
      corrupt = value;
    },
    /** From now on every read answers 64 KiB, whatever the blob; returns what each read took. */
    oversize(): number[] {
      oversized = [];
      return oversized;
    },
  };
}

/** A GET as registry-api makes it: the size from `stat` (the grant checked), then the bytes. */
async function get(registry: Registry, namespace: string, digest: DigestParts, range?: ByteRange) {
  const { size } = await registry.blobs.stat(namespace, digest);
  const chunks: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  const copy = await registry.blobs.open(namespace, digest, range, size);
  await copy.copyTo(collect);
  await copy.close();
  return { size, text: Buffer.concat(chunks).toString() };
}

describe('small blobs', () => {
  it('are served from memory once read, size and bytes, ranges included', async () => {
    const { registry, counts } = registryOverCountedStore();
    const digest = await upload(registry, 'team/app', 'a small config');
    expect(await get(registry, 'team/app', digest)).toEqual({ size: 14, text: 'a small config' });
    expect(counts.reads).toBe(1);
    expect(await get(registry, 'team/app', digest)).toEqual({ size: 14, text: 'a small config' });
    expect(await get(registry, 'team/app', digest, { start: 2, end: 6 })).toEqual({
      size: 14,
      text: 'small',
    });
    expect(counts.reads).toBe(1);
  });

  it('are answered as the store has them: gone from it, unknown, though their bytes are kept', async () => {
    const { registry, store, counts } = registryOverCountedStore();
    const digest = await upload(registry, 'team/app', 'a small config');
    expect((await get(registry, 'team/app', digest)).text).toBe('a small config');
    const stats = counts.stats;
    // As `scrub --blobs` removes corrupt bytes: the grant stays, the bytes are gone.
    await store.deleteBlob(digest);
    await expect(get(registry, 'team/app', digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect(counts.stats).toBe(stats + 1);
  });

  it('are kept only when their bytes match their digest', async () => {
    const { registry, counts, corrupt } = registryOverCountedStore();
    const digest = await upload(registry, 'team/app', 'a small config');
    corrupt(true);
    // Served as the store has them (the client's digest check refuses them), and not kept.
    expect((await get(registry, 'team/app', digest)).text).toBe('not the pushed bytes');
    corrupt(false);
    expect((await get(registry, 'team/app', digest)).text).toBe('a small config');
    corrupt(true);
    expect((await get(registry, 'team/app', digest)).text).toBe('a small config');
    expect(counts.reads).toBe(3);
  });

  it('are never read into memory past the size `stat` gave: a larger file is streamed', async () => {
    const { registry, oversize } = registryOverCountedStore();
    const digest = await upload(registry, 'team/app', 'a small config');
    const taken = oversize();
    // As the store has them (a corrupt file); the client's digest check refuses them.
    expect((await get(registry, 'team/app', digest)).text).toHaveLength(64 * 1024);
    // The read for memory stopped at its first chunk (past 14 bytes); the stream took them all.
    expect(taken).toEqual([1, 64]);
  });

  it('are served only to a namespace that holds them', async () => {
    const { registry } = registryOverCountedStore();
    const digest = await upload(registry, 'team/app', 'a small config');
    await upload(registry, 'team/other', 'a small config');
    expect((await get(registry, 'team/app', digest)).text).toBe('a small config');
    await expect(get(registry, 'team/none', digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    await registry.blobs.delete('team/app', digest);
    await expect(get(registry, 'team/app', digest)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect((await get(registry, 'team/other', digest)).text).toBe('a small config');
  });

  it('larger than SMALL_BLOB_BYTES are read from the store every time', async () => {
    const { registry, counts } = registryOverCountedStore();
    const large = 'x'.repeat(SMALL_BLOB_BYTES + 1);
    const digest = await upload(registry, 'team/app', large);
    expect((await get(registry, 'team/app', digest)).text).toBe(large);
    expect((await get(registry, 'team/app', digest)).text).toBe(large);
    expect(counts.reads).toBe(2);
    expect(counts.stats).toBe(2);
  });
});
