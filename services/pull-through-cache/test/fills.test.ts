import { createHash } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { JobRunner } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import {
  type Distribution,
  eventually,
  freePort,
  sha256,
  skipWithout,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  accessLogCount,
  MANIFEST_ACCEPT,
  metricValue,
  open,
  type SeededImage,
  seedImage,
  startCache,
  startProxy,
  type TestCache,
  type TestProxy,
} from './harness.js';

const skip = skipWithout('pull-through cache fill tests', 'docker-registry');

/** The largest blob of an image: its filler layer. */
async function largestBlob(image: SeededImage): Promise<{ digest: string; size: number }> {
  let best = { digest: '', size: -1 };
  for (const digest of image.images.get('linux/amd64')!.blobs) {
    const { length } = await image.layout.blob(digest);
    if (length > best.size) best = { digest, size: length };
  }
  return best;
}

function parseDigest(digest: string) {
  const [algorithm, hex] = digest.split(':') as ['sha256', string];
  return { algorithm, hex };
}

async function isCached(cache: TestCache, namespace: string, digest: string): Promise<boolean> {
  return cache.registry.blobs.stat(namespace, parseDigest(digest)).then(
    () => true,
    () => false,
  );
}

/** Hashes a response to its end; rejects when it is cut short. */
async function digestOfBody(
  res: IncomingMessage,
  options: { pauseMs?: number } = {},
): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    // A slow client: the server's socket backs up and its stream buffers what it reads ahead.
    if (options.pauseMs !== undefined) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
  }
  if (!res.complete) throw new Error('response cut short');
  return { digest: `sha256:${hash.digest('hex')}`, bytes };
}

/** Waits for the first chunk of a response (it stays readable after). */
function firstChunk(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    res.once('data', (chunk: Buffer) => {
      res.pause();
      res.unshift(chunk);
      resolve(chunk);
    });
    res.once('error', reject);
  });
}

/** Generous: a fill of a loaded machine takes its time. */
const until = (condition: () => Promise<boolean>, what: string) =>
  eventually(condition, { timeoutMs: 30_000, what });

describe.skipIf(skip)('cache fills', () => {
  let upstream: Distribution;
  let proxy: TestProxy;
  let big: SeededImage;
  let small: SeededImage;
  let cache: TestCache;

  beforeAll(async () => {
    upstream = await startDistribution();
    big = await seedImage(upstream, 'library/big', 'v1', ['linux/amd64'], { fillMb: 64, compress: 'none' });
    small = await seedImage(upstream, 'library/small', 'v1', ['linux/amd64'], {
      fillMb: 1,
      compress: 'none',
    });
    proxy = await startProxy(upstream.url);
    cache = await startCache({ upstreams: [{ url: proxy.url }] });
  }, 120_000);

  afterAll(async () => {
    await cache?.close();
    await proxy?.close();
    await upstream?.stop();
    await big?.remove();
    await small?.remove();
  });

  it('serves 20 concurrent cold pulls of a 64 MiB blob from one upstream GET, streaming before the fill ends', async () => {
    const blob = await largestBlob(big);
    expect(blob.size).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    const url = `${cache.url}/v2/mirror/library/big/blobs/${blob.digest}`;
    // The upstream's body stops after 1 MiB until released: the fill is in progress for certain.
    // Its GET waits for all 20 clients to have joined: one that joined after the first bytes
    // passed would read storage after the commit, with no first chunk to see before the release.
    let start!: () => void;
    const started = new Promise<void>((resolve) => {
      start = resolve;
    });
    const hold = proxy.hold(1024 * 1024, undefined, started);
    onTestFinished(() => {
      start();
      hold.release();
    });
    const misses = 'angos_pull_through_cache_misses_total{kind="blob"}';
    const missesBefore = await metricValue(cache, misses);
    const opening = Array.from({ length: 20 }, () => open(url));
    await until(
      async () => (await metricValue(cache, misses)) >= missesBefore + 20,
      'the 20 clients to join',
    );
    start();
    const responses = await Promise.all(opening);
    for (const res of responses) {
      expect(res.statusCode).toBe(200);
      expect(Number(res.headers['content-length'])).toBe(blob.size);
    }
    // Every client has its first bytes while the fill still waits for the rest.
    await Promise.all(responses.map(firstChunk));
    expect(await metricValue(cache, 'angos_pull_through_cache_fills_in_flight')).toBe(1);
    expect(await isCached(cache, 'mirror/library/big', blob.digest)).toBe(false);

    // One client reads nothing more for now; one hangs up. Neither holds up the others or the fill.
    const [slow, gone, ...rest] = responses as [IncomingMessage, IncomingMessage, ...IncomingMessage[]];
    gone.destroy();
    hold.release();
    const results = await Promise.all(rest.map((res) => digestOfBody(res)));
    for (const result of results) expect(result).toEqual({ digest: blob.digest, bytes: blob.size });
    await until(() => isCached(cache, 'mirror/library/big', blob.digest), 'the fill to commit');
    slow.resume();
    expect(await digestOfBody(slow)).toEqual({ digest: blob.digest, bytes: blob.size });

    expect(accessLogCount(upstream, 'GET', `/v2/library/big/blobs/${blob.digest}`)).toBe(1);
    expect(await metricValue(cache, 'angos_pull_through_cache_fills_in_flight')).toBe(0);
    // The inline fill's durable job goes once the fill committed.
    await until(async () => (await cache.jobs.listPending('cache')).items.length === 0, 'the fill job to go');
    // 20 x 64 MiB through loopback: seconds alone, minutes on a busy 2-core machine.
  }, 240_000);

  it('serves a client that joined a fill late, and reads slowly, the right bytes from storage', async () => {
    // A follower that joins after the first bytes passed reads the blob back from storage once it
    // is committed. A storage copy reuses its few buffers as soon as a write is taken: read
    // through a stream that buffered them for a client slower than the disk, the buffers were
    // overwritten before they reached the socket and the client got wrong bytes.
    const image = await seedImage(upstream, 'library/late', 'v1', ['linux/amd64'], {
      fillMb: 16,
      compress: 'none',
    });
    try {
      const blob = await largestBlob(image);
      const url = `${cache.url}/v2/mirror/library/late/blobs/${blob.digest}`;
      const hold = proxy.hold(1024 * 1024, blob.digest);
      onTestFinished(() => hold.release());
      const first = await open(url);
      await firstChunk(first);
      // The first bytes have passed: this one reads storage after the commit.
      const late = await open(url);
      expect(late.statusCode).toBe(200);
      expect(Number(late.headers['content-length'])).toBe(blob.size);
      hold.release();
      expect(await digestOfBody(first)).toEqual({ digest: blob.digest, bytes: blob.size });
      expect(await digestOfBody(late, { pauseMs: 2 })).toEqual({ digest: blob.digest, bytes: blob.size });
    } finally {
      await image.remove();
    }
  }, 120_000);

  it('serves a Range of a cold blob, and caches the whole blob', async () => {
    const blob = await largestBlob(small);
    const bytes = await small.layout.blob(blob.digest);
    const reply = await cache.send('GET', `/v2/mirror/library/small/blobs/${blob.digest}`, {
      range: 'bytes=1000-200999',
    });
    expect(reply.status).toBe(206);
    expect(reply.headers['content-range']).toBe(`bytes 1000-200999/${blob.size}`);
    expect(reply.body.equals(bytes.subarray(1000, 201000))).toBe(true);
    await until(() => isCached(cache, 'mirror/library/small', blob.digest), 'the fill to commit');
    const warm = await cache.send('GET', `/v2/mirror/library/small/blobs/${blob.digest}`, {
      range: 'bytes=5-9',
    });
    expect(warm.status).toBe(206);
    expect(warm.body.equals(bytes.subarray(5, 10))).toBe(true);
    expect(accessLogCount(upstream, 'GET', `/v2/library/small/blobs/${blob.digest}`)).toBe(1);
  });

  it('refuses a blob whose upstream bytes do not match its digest, stores nothing and logs it', async () => {
    const image = await seedImage(upstream, 'library/corrupt', 'v1', ['linux/amd64'], {
      fillMb: 2,
      compress: 'none',
    });
    try {
      const blob = await largestBlob(image);
      const path = upstream.blobDataPath(blob.digest);
      const { size } = await stat(path);
      await writeFile(path, Buffer.alloc(size, 0x5a));
      const res = await open(`${cache.url}/v2/mirror/library/corrupt/blobs/${blob.digest}`);
      await expect(digestOfBody(res)).rejects.toThrow();
      await until(
        async () => (await metricValue(cache, 'angos_pull_through_cache_fills_in_flight')) === 0,
        'the fill to end',
      );
      expect(await isCached(cache, 'mirror/library/corrupt', blob.digest)).toBe(false);
      const logged = cache.logs
        .lines()
        .filter((line) => line.level === 'ERROR' && line['kind'] === 'digest-mismatch');
      expect(logged.length).toBeGreaterThan(0);
      expect(
        await metricValue(
          cache,
          'angos_upstream_requests_total{repository="mirror",outcome="digest-mismatch"}',
        ),
      ).toBeGreaterThan(0);
      // Asked again, it is refused again: nothing bad was kept.
      const again = await open(`${cache.url}/v2/mirror/library/corrupt/blobs/${blob.digest}`);
      await expect(digestOfBody(again)).rejects.toThrow();
    } finally {
      await image.remove();
    }
  });

  it('completes a fill from its durable cache job (as after a crash)', async () => {
    const image = await seedImage(upstream, 'library/queued', 'v1');
    try {
      const blob = await largestBlob(image);
      await cache.jobs.enqueue('cache', 'blob', `test:${blob.digest}`, {
        namespace: 'mirror/library/queued',
        digest: blob.digest,
      });
      const runner = new JobRunner({
        queue: cache.jobs,
        locks: new MemoryLockManager(),
        pools: [{ name: 'cache', concurrency: 1 }],
        handlers: cache.cache.jobHandlers(),
        pollIntervalMs: 50,
      });
      runner.start();
      try {
        await until(() => isCached(cache, 'mirror/library/queued', blob.digest), 'the job to fill the blob');
      } finally {
        await runner.stop();
      }
      expect(accessLogCount(upstream, 'GET', `/v2/library/queued/blobs/${blob.digest}`)).toBe(1);
    } finally {
      await image.remove();
    }
  });
});

describe.skipIf(skip)('a cache at max_concurrent_cache_jobs', () => {
  let upstream: Distribution;
  let proxy: TestProxy;
  let first: SeededImage;
  let second: SeededImage;
  let cache: TestCache;

  beforeAll(async () => {
    upstream = await startDistribution();
    first = await seedImage(upstream, 'library/first', 'v1', ['linux/amd64'], {
      fillMb: 2,
      compress: 'none',
    });
    second = await seedImage(upstream, 'library/second', 'v1');
    proxy = await startProxy(upstream.url);
    cache = await startCache({
      upstreams: [{ url: proxy.url }],
      toml: '[global]\nmax_concurrent_cache_jobs = 1',
    });
  });

  afterAll(async () => {
    await cache?.close();
    await proxy?.close();
    await upstream?.stop();
    await first?.remove();
    await second?.remove();
  });

  it('leaves a fill beyond the limit to the cache queue, and serves it once the drain stored it', async () => {
    const busy = await largestBlob(first);
    const queued = await largestBlob(second);
    const hold = proxy.hold(64 * 1024, busy.digest);
    onTestFinished(() => hold.release());
    const busyPull = open(`${cache.url}/v2/mirror/library/first/blobs/${busy.digest}`);
    await until(
      async () => (await metricValue(cache, 'angos_pull_through_cache_fills_in_flight')) === 1,
      'the first fill',
    );
    const queuedPull = cache.send('GET', `/v2/mirror/library/second/blobs/${queued.digest}`);
    await until(
      async () =>
        (await cache.jobs.listPending('cache')).items.some(
          (job) => (job.payload as { digest: string }).digest === queued.digest,
        ),
      'the queued job',
    );
    // The first fill still holds the only slot; the drain (a worker) takes the queued one.
    const runner = new JobRunner({
      queue: cache.jobs,
      locks: new MemoryLockManager(),
      pools: [{ name: 'cache', concurrency: 1 }],
      handlers: cache.cache.jobHandlers(),
      pollIntervalMs: 50,
    });
    runner.start();
    try {
      const reply = await queuedPull;
      expect(reply.status).toBe(200);
      expect(sha256(reply.body)).toBe(queued.digest);
    } finally {
      await runner.stop();
    }
    hold.release();
    expect(await digestOfBody(await busyPull)).toEqual({ digest: busy.digest, bytes: busy.size });
  });
});

describe.skipIf(skip)('several upstreams', () => {
  let empty: Distribution;
  let upstream: Distribution;
  let image: SeededImage;
  let cache: TestCache;

  beforeAll(async () => {
    empty = await startDistribution();
    upstream = await startDistribution({ auth: 'htpasswd' });
    image = await seedImage(upstream, 'library/app', 'v1');
    const dead = `http://127.0.0.1:${await freePort()}`;
    cache = await startCache({
      upstreams: [{ url: dead }, { url: empty.url }, { url: upstream.url, auth: 'htpasswd' }],
    });
  });

  afterAll(async () => {
    await cache?.close();
    await empty?.stop();
    await upstream?.stop();
    await image?.remove();
  });

  it('falls back to the next upstream when one is down or lacks the content', async () => {
    const manifest = await cache.send('GET', '/v2/mirror/library/app/manifests/v1', {
      accept: MANIFEST_ACCEPT,
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(image.digest);
    for (const blob of image.images.get('linux/amd64')!.blobs) {
      const reply = await cache.send('GET', `/v2/mirror/library/app/blobs/${blob}`);
      expect(reply.status).toBe(200);
      expect(sha256(reply.body)).toBe(blob);
    }
    expect(accessLogCount(empty, 'GET', '/v2/library/app/manifests/v1')).toBe(1);
    expect(
      await metricValue(cache, 'angos_upstream_requests_total{repository="mirror",outcome="unavailable"}'),
    ).toBeGreaterThan(0);
    expect(
      await metricValue(cache, 'angos_upstream_requests_total{repository="mirror",outcome="not-found"}'),
    ).toBeGreaterThan(0);
  });
});
