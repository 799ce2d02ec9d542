import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LockLostError,
  type LockManager,
  type LockObserver,
  type LockOptions,
  type LockWork,
  MemoryLockManager,
} from '@angos/lock';
import { FsBlobStore, FsMetadataStore } from '@angos/storage';
import { type Distribution, skipWithout, startDistribution } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  accessLogCount,
  open,
  type SeededImage,
  seedImage,
  startCache,
  startProxy,
  type TestCache,
  type TestProxy,
} from './harness.js';

const skip = skipWithout('pull-through cache fill lock tests', 'docker-registry');

/**
 * The memory lock manager, except that a fill lock (`cache-fill:…`) is lost `afterMs` into its
 * work, the way S3's `max_hold_secs` ends a long hold: the work's signal aborts with a
 * `LockLostError` and `withLocks` rejects with it, while the work itself runs on. A fake below
 * what is tested (the fill), standing in for an hour-long hold.
 */
class FillLockLostAfter implements LockManager {
  readonly backend = 'memory' as const;
  readonly #inner = new MemoryLockManager();
  lost = 0;

  constructor(private readonly afterMs: number) {}

  withLocks<T>(keys: readonly string[], work: LockWork<T>, options?: LockOptions): Promise<T> {
    if (!keys.some((key) => key.startsWith('cache-fill:'))) return this.#inner.withLocks(keys, work, options);
    return new Promise<T>((resolve, reject) => {
      this.#inner
        .withLocks(
          keys,
          (signal) => {
            const loss = new AbortController();
            const timer = setTimeout(() => {
              const error = new LockLostError('memory', 'max_hold_exceeded', keys[0]!);
              this.lost++;
              loss.abort(error);
              reject(error);
            }, this.afterMs);
            return work(AbortSignal.any([signal, loss.signal])).finally(() => clearTimeout(timer));
          },
          options,
        )
        .then(resolve, reject);
    });
  }

  /** The memory manager has no retries or recoveries to report. */
  observe(_observer: LockObserver): void {}

  close(): Promise<void> {
    return this.#inner.close();
  }
}

describe.skipIf(skip)('a fill that outlives its lock', () => {
  let upstream: Distribution;
  let proxy: TestProxy;
  let image: SeededImage;
  let cache: TestCache;
  let locks: FillLockLostAfter;
  let root: string;

  beforeAll(async () => {
    upstream = await startDistribution();
    image = await seedImage(upstream, 'library/slow', 'v1', ['linux/amd64'], { fillMb: 4, compress: 'none' });
    proxy = await startProxy(upstream.url);
    root = await mkdtemp(join(tmpdir(), 'angos-ptc-lock-'));
    locks = new FillLockLostAfter(500);
    cache = await startCache({
      upstreams: [{ url: proxy.url }],
      shared: {
        blobs: new FsBlobStore(root, { syncToDisk: false }),
        metadata: new FsMetadataStore(root, { syncToDisk: false }),
        locks,
      },
    });
  }, 120_000);

  afterAll(async () => {
    await cache?.close();
    await proxy?.close();
    await upstream?.stop();
    await image?.remove();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('goes on to the end (the lock only spares other replicas a second fetch), serving and caching the blob', async () => {
    const layer = image.images.get('linux/amd64')!.blobs.at(-1)!;
    const expected = await image.layout.blob(layer);
    expect(expected.length).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    // The upstream's body stops after 1 MiB until released: the lock is lost mid-fill.
    const hold = proxy.hold(1024 * 1024, layer);
    onTestFinished(() => hold.release());
    const res = await open(`${cache.url}/v2/mirror/library/slow/blobs/${layer}`);
    expect(res.statusCode).toBe(200);
    const body = (async () => {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of res) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      return { complete: res.complete, bytes, digest: `sha256:${hash.digest('hex')}` };
    })();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(locks.lost).toBe(1);
    hold.release();

    expect(await body).toEqual({ complete: true, bytes: expected.length, digest: layer });
    const [algorithm, hex] = layer.split(':') as ['sha256', string];
    await expect(cache.registry.blobs.stat('mirror/library/slow', { algorithm, hex })).resolves.toEqual({
      size: expected.length,
    });
    expect(accessLogCount(upstream, 'GET', `/v2/library/slow/blobs/${layer}`)).toBe(1);
    expect(
      cache.logs.lines().some((line) => line.level === 'WARN' && /outlived its lock/.test(line.message)),
    ).toBe(true);
  });
});
