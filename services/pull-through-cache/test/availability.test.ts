import { type Distribution, skipWithout, startDistribution } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessLogCount,
  MANIFEST_ACCEPT,
  metricValue,
  type SeededImage,
  seedImage,
  startCache,
  startProxy,
  type TestCache,
  type TestProxy,
} from './harness.js';

const skip = skipWithout('pull-through cache availability tests', 'docker-registry');

describe.skipIf(skip)('a cache whose upstream fails', () => {
  let upstream: Distribution;
  let proxy: TestProxy;
  let app: SeededImage;
  /** Checks every tag at every pull, no staleness limit. */
  let eager: TestCache;
  /** Checks every tag at every pull, and serves no stale tag. */
  let strict: TestCache;
  const caches: TestCache[] = [];
  const images: SeededImage[] = [];

  beforeAll(async () => {
    upstream = await startDistribution();
    app = await seedImage(upstream, 'library/app', 'v1');
    images.push(app);
    proxy = await startProxy(upstream.url);
    eager = await startCache({
      upstreams: [{ url: proxy.url }],
      repositoryToml: 'upstream_tag_check_interval_secs = 0',
    });
    strict = await startCache({
      upstreams: [{ url: proxy.url }],
      repositoryToml: 'upstream_tag_check_interval_secs = 0\nupstream_stale_tag_window_secs = 0',
    });
    caches.push(eager, strict);
    for (const cache of [eager, strict]) await pullAll(cache, app);
  });

  afterAll(async () => {
    for (const cache of caches) await cache.close();
    await proxy?.close();
    await upstream?.stop();
    for (const image of images) await image.remove();
  });

  const manifestPath = (repository: string, reference: string) => `/v2/${repository}/manifests/${reference}`;

  it('checks a mutable tag with HEAD only, at most once per upstream_tag_check_interval_secs', async () => {
    const image = await seedImage(upstream, 'library/interval', 'v1');
    images.push(image);
    const hourly = await startCache({
      upstreams: [{ url: upstream.url }],
      repositoryToml: 'upstream_tag_check_interval_secs = 3600',
    });
    caches.push(hourly);
    const path = manifestPath('library/interval', 'v1');
    for (let i = 0; i < 3; i++) {
      expect(
        (await hourly.send('GET', `/v2/mirror${path.slice(3)}`, { accept: MANIFEST_ACCEPT })).status,
      ).toBe(200);
    }
    expect(accessLogCount(upstream, 'GET', path)).toBe(1);
    expect(accessLogCount(upstream, 'HEAD', path)).toBe(0);

    for (let i = 0; i < 2; i++) {
      expect(
        (await eager.send('GET', `/v2/mirror${path.slice(3)}`, { accept: MANIFEST_ACCEPT })).status,
      ).toBe(200);
    }
    // The eager cache's first pull fetched the tag; its second only asked with a HEAD.
    expect(accessLogCount(upstream, 'GET', path)).toBe(2);
    expect(accessLogCount(upstream, 'HEAD', path)).toBe(1);
  });

  it('never checks a tag that immutable_tags covers again', async () => {
    const image = await seedImage(upstream, 'library/pinned', 'v1');
    images.push(image);
    const pinned = await startCache({
      upstreams: [{ url: upstream.url }],
      repositoryToml: 'upstream_tag_check_interval_secs = 0\nimmutable_tags = true',
    });
    caches.push(pinned);
    const path = manifestPath('library/pinned', 'v1');
    for (let i = 0; i < 3; i++) {
      expect(
        (await pinned.send('GET', `/v2/mirror${path.slice(3)}`, { accept: MANIFEST_ACCEPT })).status,
      ).toBe(200);
    }
    expect(accessLogCount(upstream, 'GET', path)).toBe(1);
    expect(accessLogCount(upstream, 'HEAD', path)).toBe(0);
  });

  it('follows a tag the upstream moved', async () => {
    const first = await seedImage(upstream, 'library/moving', 'latest', ['linux/amd64']);
    images.push(first);
    const reply = await eager.send('GET', '/v2/mirror/library/moving/manifests/latest', {
      accept: MANIFEST_ACCEPT,
    });
    expect(reply.headers['docker-content-digest']).toBe(first.digest);
    const second = await seedImage(upstream, 'library/moving', 'latest', ['linux/arm64']);
    images.push(second);
    expect(second.digest).not.toBe(first.digest);
    const moved = await eager.send('GET', '/v2/mirror/library/moving/manifests/latest', {
      accept: MANIFEST_ACCEPT,
    });
    expect(moved.status).toBe(200);
    expect(moved.headers['docker-content-digest']).toBe(second.digest);
    expect(moved.headers.warning).toBeUndefined();
  });

  it('serves cached tags (with a Warning) and digests while the upstream answers 429', async () => {
    proxy.intercept = (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return true;
    };
    try {
      const tag = await eager.send('GET', '/v2/mirror/library/app/manifests/v1', { accept: MANIFEST_ACCEPT });
      expect(tag.status).toBe(200);
      expect(tag.headers['docker-content-digest']).toBe(app.digest);
      expect(tag.headers.warning).toMatch(/^110 .*rate-limited/);
      await expectCachedDigests(eager, app);
      // What was never cached cannot be served: 503, not 404.
      const cold = await eager.send('GET', '/v2/mirror/library/app/manifests/v2', {
        accept: MANIFEST_ACCEPT,
      });
      expect(cold.status).toBe(503);
      expect(cold.json().errors[0].code).toBe('UNAVAILABLE');
      expect(
        await metricValue(eager, 'angos_upstream_requests_total{repository="mirror",outcome="rate-limited"}'),
      ).toBeGreaterThan(0);
      expect(
        await metricValue(eager, 'angos_pull_through_cache_stale_served_total{kind="manifest"}'),
      ).toBeGreaterThan(0);
      expect(
        eager.logs.lines().some((line) => line.level === 'WARN' && /upstream failed/.test(line.message)),
      ).toBe(true);
    } finally {
      proxy.intercept = () => false;
    }
  });

  it('serves every cached digest, and cached tags within upstream_stale_tag_window_secs, once the upstream is stopped', async () => {
    await proxy.close();
    const tag = await eager.send('GET', '/v2/mirror/library/app/manifests/v1', { accept: MANIFEST_ACCEPT });
    expect(tag.status).toBe(200);
    expect(tag.headers.warning).toMatch(/^110 .*unavailable/);
    await expectCachedDigests(eager, app);
    const tags = await eager.send('GET', '/v2/mirror/library/app/tags/list');
    expect(tags.status).toBe(200);
    expect(tags.json().tags).toEqual(['v1']);
    expect(tags.headers.warning).toBeDefined();
    expect(
      await metricValue(eager, 'angos_upstream_requests_total{repository="mirror",outcome="unavailable"}'),
    ).toBeGreaterThan(0);

    // Past the window (0 s): the cached tag is no longer vouched for; digests still are.
    const stale = await strict.send('GET', '/v2/mirror/library/app/manifests/v1', {
      accept: MANIFEST_ACCEPT,
    });
    expect(stale.status).toBe(503);
    await expectCachedDigests(strict, app);
  });
});

/** Pulls an image's manifest by tag and every blob of it. */
async function pullAll(cache: TestCache, image: SeededImage): Promise<void> {
  const tag = await cache.send('GET', '/v2/mirror/library/app/manifests/v1', { accept: MANIFEST_ACCEPT });
  expect(tag.status).toBe(200);
  for (const blob of image.images.get('linux/amd64')!.blobs) {
    expect((await cache.send('GET', `/v2/mirror/library/app/blobs/${blob}`)).status).toBe(200);
  }
}

async function expectCachedDigests(cache: TestCache, image: SeededImage): Promise<void> {
  const byDigest = await cache.send('GET', `/v2/mirror/library/app/manifests/${image.digest}`, {
    accept: MANIFEST_ACCEPT,
  });
  expect(byDigest.status).toBe(200);
  expect(byDigest.headers.warning).toBeUndefined();
  for (const blob of image.images.get('linux/amd64')!.blobs) {
    const reply = await cache.send('GET', `/v2/mirror/library/app/blobs/${blob}`);
    expect(reply.status).toBe(200);
    expect(reply.headers['docker-content-digest']).toBe(blob);
  }
}
