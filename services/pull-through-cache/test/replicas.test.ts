import { randomUUID } from 'node:crypto';
import { S3LockManager } from '@angos/lock/s3';
import { openStores } from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import {
  type Distribution,
  type S3TestServer,
  s3Connection,
  s3TestStores,
  sha256,
  skipWithout,
  skipWithoutS3,
  startDistribution,
  startS3TestServer,
  wipeBucket,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  accessLogCount,
  metricValue,
  type SeededImage,
  seedImage,
  startCache,
  startProxy,
  type TestCache,
  type TestProxy,
} from './harness.js';

const skip =
  skipWithout('pull-through cache replica tests', 'docker-registry') ||
  skipWithoutS3('pull-through cache replica tests');

describe.skipIf(skip)('two cache replicas on S3 with the S3 lock', () => {
  let s3: S3TestServer;
  let upstream: Distribution;
  let proxy: TestProxy;
  let image: SeededImage;
  const keyPrefix = `angos-ptc-test/${randomUUID()}`;
  const replicas: TestCache[] = [];
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    s3 = await startS3TestServer();
    upstream = await startDistribution();
    image = await seedImage(upstream, 'library/shared', 'v1', ['linux/amd64'], {
      fillMb: 8,
      compress: 'none',
    });
    proxy = await startProxy(upstream.url);
    for (let i = 0; i < 2; i++) {
      const stores = await openStores(s3TestStores(s3, keyPrefix));
      const locks = new S3LockManager({
        ...s3Connection(s3, keyPrefix),
        ttlSecs: 3,
        maxRetries: 600,
        retryDelayMs: 100,
        maxHoldSecs: 300,
      });
      closers.push(async () => {
        await locks.close();
        await stores.close();
      });
      replicas.push(
        await startCache({
          upstreams: [{ url: proxy.url }],
          shared: { blobs: stores.blobs, metadata: stores.metadata, locks },
        }),
      );
    }
  }, 180_000);

  afterAll(async () => {
    for (const replica of replicas) await replica.close();
    for (const close of closers) await close();
    await proxy?.close();
    await upstream?.stop();
    await image?.remove();
    if (s3 !== undefined) {
      await wipeBucket(new S3Bucket(s3Connection(s3, keyPrefix)));
      await s3.stop();
    }
  }, 60_000);

  it('shares one fill of a blob between replicas: one upstream GET, both serve it', async () => {
    const blobs = image.images.get('linux/amd64')!.blobs;
    let digest = '';
    let size = -1;
    for (const candidate of blobs) {
      const { length } = await image.layout.blob(candidate);
      if (length > size) [digest, size] = [candidate, length];
    }
    const hold = proxy.hold(1024 * 1024);
    onTestFinished(() => hold.release());
    const path = `/v2/mirror/library/shared/blobs/${digest}`;
    const pulls = replicas.flatMap((replica) => [replica.send('GET', path), replica.send('GET', path)]);
    // Both replicas are filling: one holds the digest's lock and streams, the other waits for it.
    for (const replica of replicas) {
      const deadline = Date.now() + 60_000;
      while ((await metricValue(replica, 'angos_pull_through_cache_fills_in_flight')) < 1) {
        if (Date.now() > deadline) throw new Error('a replica never started its fill');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    hold.release();
    for (const reply of await Promise.all(pulls)) {
      expect(reply.status).toBe(200);
      expect(sha256(reply.body)).toBe(digest);
    }
    expect(accessLogCount(upstream, 'GET', `/v2/library/shared/blobs/${digest}`)).toBe(1);

    // A hit on S3 (enable_blob_redirect defaults to true) is a 307 to S3, which serves the same bytes.
    for (const replica of replicas) {
      const hit = await replica.send('GET', path);
      expect(hit.status).toBe(200);
      expect(hit.headers['x-test-redirected']).toBe('true');
      expect(sha256(hit.body)).toBe(digest);
    }
  });
});
