import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  LockLostError,
  type LockManager,
  type LockObserver,
  type LockOptions,
  MemoryLockManager,
} from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { OciError } from '@angos/oci';
import { blobCopyStream, createStores, markChunksUnshared } from '@angos/storage';
import { configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../src/index.js';
import { digestOf, memoryRegistry } from './support.js';

/**
 * The memory lock, except that its `lose`-th acquisition loses the lock as the work starts, as a
 * lock whose renewal failed does: the work's signal aborts and withLocks rejects with
 * LockLostError. It rejects only once the work has settled, so a write the work still made after
 * the loss is there to be seen.
 */
class LosingLocks implements LockManager {
  readonly backend = 'memory';
  readonly #inner = new MemoryLockManager();
  #acquisitions = 0;

  constructor(private readonly lose: number) {}

  withLocks<T>(keys: readonly string[], work: (signal: AbortSignal) => Promise<T>, options?: LockOptions) {
    this.#acquisitions += 1;
    if (this.#acquisitions !== this.lose) return this.#inner.withLocks(keys, work, options);
    return this.#inner.withLocks(
      keys,
      async () => {
        const lost = new LockLostError('memory', 'ownership_lost', keys[0]!);
        await work(AbortSignal.abort(lost)).catch(() => undefined);
        throw lost;
      },
      options,
    );
  }

  observe(_observer: LockObserver): void {
    // The memory lock reports neither retries nor recoveries.
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

const bodyOf = (data: string) => Readable.from([Buffer.from(data)]);

async function ociCode(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OciError);
  return (error as OciError).kind;
}

describe('upload sessions and their lock', () => {
  it('stores nothing of a PATCH whose lock is lost before its write', async () => {
    const registry = memoryRegistry(new LosingLocks(1));
    const id = await registry.uploads.start('t/app');
    await expect(registry.uploads.append('t/app', id, bodyOf('bytes'), {})).rejects.toBeInstanceOf(
      LockLostError,
    );
    expect(await registry.uploads.size('t/app', id)).toBe(0);
    // Nothing of the failed request is left behind: the session takes the chunk again.
    expect(await registry.uploads.append('t/app', id, bodyOf('bytes'), {})).toBe(5);
  });

  it.each([1, 2])('commits nothing when the lock of acquisition %i of a PUT is lost', async (lose) => {
    const registry = memoryRegistry(new LosingLocks(lose));
    const id = await registry.uploads.start('t/app');
    const digest = digestOf('bytes');
    await expect(registry.uploads.complete('t/app', id, digest, bodyOf('bytes'), {})).rejects.toBeInstanceOf(
      LockLostError,
    );
    expect(await ociCode(registry.blobs.stat('t/app', digest))).toBe('BLOB_UNKNOWN');
    // The session is as the lost request left it, and still completes.
    const size = await registry.uploads.size('t/app', id);
    expect(size === 0 || size === 5).toBe(true);
    await registry.uploads.complete('t/app', id, digest, size === 0 ? bodyOf('bytes') : undefined, {});
    expect(await registry.blobs.stat('t/app', digest)).toEqual({ size: 5 });
  });

  it('refuses a second writer while a body streams, and keeps the first whole', async () => {
    const registry = memoryRegistry();
    const id = await registry.uploads.start('t/app');
    const slow = new PassThrough();
    slow.write('first ');
    const first = registry.uploads.append('t/app', id, slow, {});
    // The first request holds the session while its body streams, with no lock held.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await ociCode(registry.uploads.append('t/app', id, bodyOf('second'), {}))).toBe('RANGE_INVALID');
    expect(
      await ociCode(registry.uploads.complete('t/app', id, digestOf('second'), bodyOf('second'), {})),
    ).toBe('RANGE_INVALID');
    slow.end('writer');
    expect(await first).toBe(12);
    // Once it ended, the session takes the next chunk and completes.
    expect(await registry.uploads.append('t/app', id, bodyOf('!'), {})).toBe(13);
    await registry.uploads.complete('t/app', id, digestOf('first writer!'), undefined, {});
    expect(await registry.blobs.stat('t/app', digestOf('first writer!'))).toEqual({ size: 13 });
  });

  it('removes the session on a digest mismatch, final chunk and all', async () => {
    const registry = memoryRegistry();
    const id = await registry.uploads.start('t/app');
    await registry.uploads.append('t/app', id, bodyOf('some '), {});
    expect(
      await ociCode(registry.uploads.complete('t/app', id, digestOf('other bytes'), bodyOf('bytes'), {})),
    ).toBe('DIGEST_INVALID');
    expect(await ociCode(registry.uploads.size('t/app', id))).toBe('BLOB_UPLOAD_UNKNOWN');
    const retry = await registry.uploads.start('t/app');
    await registry.uploads.complete('t/app', retry, digestOf('some bytes'), bodyOf('some bytes'), {});
    expect(await registry.blobs.stat('t/app', digestOf('some bytes'))).toEqual({ size: 10 });
  });

  // Another serving thread or replica began the session, so this one has no running hash of it; a
  // body from offset 0 is hashed as it streams all the same, not read back after it is stored.
  it('hashes a body from offset 0 while it streams when the session began elsewhere', async () => {
    const stores = createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } });
    let readBack = 0;
    const blobs = new Proxy(stores.blobs, {
      get(target, property, receiver) {
        if (property === 'readUpload') readBack += 1;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const locks = new MemoryLockManager();
    const config = configOf();
    const replica = () =>
      createRegistry({ ...stores, blobs, locks, config: () => config, logger: silentLogger });
    const [starter, finisher] = [replica(), replica()];
    const id = await starter.uploads.start('t/app');
    await finisher.uploads.complete('t/app', id, digestOf('whole blob'), bodyOf('whole blob'), {});
    expect(await finisher.blobs.stat('t/app', digestOf('whole blob'))).toEqual({ size: 10 });
    expect(readBack).toBe(0);
    // A digest that does not match is still found, from the same running hash.
    const other = await starter.uploads.start('t/app');
    expect(
      await ociCode(
        finisher.uploads.complete('t/app', other, digestOf('not this'), bodyOf('whole blob'), {}),
      ),
    ).toBe('DIGEST_INVALID');
    expect(readBack).toBe(0);
  });

  // A request body's chunks are freed as soon as they are on disk (releaseChunksOnceWritten): a
  // push leaves no dead buffers for the collector. A body the registry does not own (the
  // pull-through cache streams an upstream's response to the client and into storage at once)
  // keeps every chunk, and so does a chunk that is a view into a larger buffer.
  it('frees the chunks of a body marked unshared once stored on fs, and no others', async () => {
    const root = await mkdtemp(join(tmpdir(), 'angos-uploads-'));
    try {
      const stores = createStores({
        blob: { kind: 'fs', rootDir: root, syncToDisk: false },
        metadata: { kind: 'memory' },
      });
      const config = configOf();
      const registry = createRegistry({
        ...stores,
        locks: new MemoryLockManager(),
        config: () => config,
        logger: silentLogger,
      });
      const chunkBytes = 70_000;
      const freshChunks = () => [Buffer.alloc(chunkBytes, 'a'), Buffer.alloc(chunkBytes, 'b')];
      const expected = digestOf(`${'a'.repeat(chunkBytes)}${'b'.repeat(chunkBytes)}`);
      const push = async (chunks: Buffer[], marked: boolean, declared: boolean) => {
        const body = Readable.from(chunks);
        const id = await registry.uploads.start('t/app');
        await registry.uploads.complete('t/app', id, expected, marked ? markChunksUnshared(body) : body, {
          contentLength: declared ? 2 * chunkBytes : undefined,
        });
        return chunks.map((chunk) => chunk.byteLength);
      };
      // With and without a declared length (which the store checks through a stream of its own).
      expect(await push(freshChunks(), true, true)).toEqual([0, 0]);
      expect(await push(freshChunks(), true, false)).toEqual([0, 0]);
      expect(await push(freshChunks(), false, true)).toEqual([chunkBytes, chunkBytes]);
      const shared = Buffer.alloc(2 * chunkBytes + 1, 'b').fill('a', 0, chunkBytes);
      const views = [shared.subarray(0, chunkBytes), shared.subarray(chunkBytes, 2 * chunkBytes)];
      expect(await push(views, true, true)).toEqual([chunkBytes, chunkBytes]);
      const stored = Buffer.concat(
        await blobCopyStream(await registry.blobs.open('t/app', expected)).toArray(),
      );
      expect(stored.equals(shared.subarray(0, 2 * chunkBytes))).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
