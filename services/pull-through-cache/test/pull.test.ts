import { type Distribution, sha256, skipWithout, startDistribution } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessLogCount,
  MANIFEST_ACCEPT,
  type SeededImage,
  seedImage,
  startCache,
  type TestCache,
  upstreamOf,
} from './harness.js';

const skip = skipWithout('pull-through cache tests against CNCF distribution', 'docker-registry', 'openssl');

describe.skipIf(skip).each(['none', 'htpasswd', 'token'] as const)(
  'pull through the cache (upstream auth: %s)',
  (auth) => {
    let upstream: Distribution;
    let single: SeededImage;
    let multi: SeededImage;
    let cache: TestCache;

    beforeAll(async () => {
      upstream = await startDistribution({ auth });
      single = await seedImage(upstream, 'library/hello', 'v1');
      multi = await seedImage(upstream, 'library/multi', 'latest', ['linux/amd64', 'linux/arm64']);
      cache = await startCache({ upstreams: [upstreamOf(upstream, auth)] });
    });

    afterAll(async () => {
      await cache?.close();
      await upstream?.stop();
      await single?.remove();
      await multi?.remove();
    });

    it('serves a miss from the upstream, then the same bytes as a hit without asking it again', async () => {
      const image = single.images.get('linux/amd64')!;
      const cold = await cache.send('GET', '/v2/mirror/library/hello/manifests/v1', {
        accept: MANIFEST_ACCEPT,
      });
      expect(cold.status).toBe(200);
      expect(cold.headers['docker-content-digest']).toBe(single.digest);
      expect(sha256(cold.body)).toBe(single.digest);
      for (const blob of image.blobs) {
        const reply = await cache.send('GET', `/v2/mirror/library/hello/blobs/${blob}`);
        expect(reply.status).toBe(200);
        expect(sha256(reply.body)).toBe(blob);
        expect(reply.headers['docker-content-digest']).toBe(blob);
      }
      const gets = (path: string) => accessLogCount(upstream, 'GET', path);
      const before = image.blobs.map((blob) => gets(`/v2/library/hello/blobs/${blob}`));
      expect(before.every((count) => count === 1)).toBe(true);

      // Hits: the digest and every blob come from storage.
      const warm = await cache.send('GET', `/v2/mirror/library/hello/manifests/${single.digest}`);
      expect(warm.status).toBe(200);
      expect(warm.body.equals(cold.body)).toBe(true);
      for (const blob of image.blobs) {
        const head = await cache.send('HEAD', `/v2/mirror/library/hello/blobs/${blob}`);
        expect(head.status).toBe(200);
        expect((await cache.send('GET', `/v2/mirror/library/hello/blobs/${blob}`)).status).toBe(200);
      }
      expect(image.blobs.map((blob) => gets(`/v2/library/hello/blobs/${blob}`))).toEqual(before);
      expect(gets(`/v2/library/hello/manifests/${single.digest}`)).toBe(0);

      const rendered = (await cache.metrics.render()).body;
      expect(rendered).toMatch(/angos_pull_through_cache_hits_total\{kind="blob"\} [1-9]/);
      expect(rendered).toMatch(/angos_pull_through_cache_misses_total\{kind="blob"\} 2/);
      expect(rendered).toMatch(/angos_upstream_bytes_fetched_total\{repository="mirror"\} [1-9]/);
    });

    it('caches an index with every child by tag, so it pulls by digest; one platform fetches only its blobs', async () => {
      const index = await cache.send('GET', '/v2/mirror/library/multi/manifests/latest', {
        accept: MANIFEST_ACCEPT,
      });
      expect(index.status).toBe(200);
      expect(index.headers['docker-content-digest']).toBe(multi.digest);
      for (const [, image] of multi.images) {
        expect(
          await cache.registry.manifests.resolve('mirror/library/multi', {
            kind: 'digest',
            digest: parse(image.digest),
          }),
        ).toBeDefined();
      }
      const arm = multi.images.get('linux/arm64')!;
      const amd = multi.images.get('linux/amd64')!;
      const child = await cache.send('GET', `/v2/mirror/library/multi/manifests/${arm.digest}`, {
        accept: MANIFEST_ACCEPT,
      });
      expect(child.status).toBe(200);
      expect(accessLogCount(upstream, 'GET', `/v2/library/multi/manifests/${arm.digest}`)).toBe(1);
      for (const blob of arm.blobs) {
        expect((await cache.send('GET', `/v2/mirror/library/multi/blobs/${blob}`)).status).toBe(200);
      }
      for (const blob of amd.blobs) {
        if (arm.blobs.includes(blob)) continue;
        expect(accessLogCount(upstream, 'GET', `/v2/library/multi/blobs/${blob}`)).toBe(0);
      }
      // The index by digest is a hit.
      const byDigest = await cache.send('GET', `/v2/mirror/library/multi/manifests/${multi.digest}`, {
        accept: MANIFEST_ACCEPT,
      });
      expect(byDigest.status).toBe(200);
      expect(accessLogCount(upstream, 'GET', `/v2/library/multi/manifests/${multi.digest}`)).toBe(0);
    });

    it('answers a HEAD of a manifest and of a cold blob with their headers and no body', async () => {
      const manifest = await cache.send('HEAD', '/v2/mirror/library/hello/manifests/v1', {
        accept: MANIFEST_ACCEPT,
      });
      expect(manifest.status).toBe(200);
      expect(manifest.headers['docker-content-digest']).toBe(single.digest);
      expect(Number(manifest.headers['content-length'])).toBe(
        (await single.layout.blob(single.digest)).length,
      );
      expect(manifest.body.length).toBe(0);
      const [config] = multi.images.get('linux/amd64')!.blobs;
      const before = accessLogCount(upstream, 'GET', `/v2/library/multi/blobs/${config}`);
      const blob = await cache.send('HEAD', `/v2/mirror/library/multi/blobs/${config}`);
      expect(blob.status).toBe(200);
      expect(Number(blob.headers['content-length'])).toBe((await multi.layout.blob(config!)).length);
      // A HEAD fetches nothing.
      expect(accessLogCount(upstream, 'GET', `/v2/library/multi/blobs/${config}`)).toBe(before);
    });

    it('lists the cached tags merged with the upstream ones', async () => {
      const reply = await cache.send('GET', '/v2/mirror/library/hello/tags/list');
      expect(reply.status).toBe(200);
      expect(reply.json()).toEqual({ name: 'mirror/library/hello', tags: ['v1'] });
    });

    it('merges the referrers of the upstream (its tag-schema fallback included)', async () => {
      const manifest = await single.layout.blob(single.digest);
      const subject = single.digest;
      const referrer = {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: single.digest,
        size: manifest.length,
        artifactType: 'application/vnd.example.signature',
      };
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [referrer],
        }),
      );
      const pushed = await fetch(`${upstream.url}/v2/library/hello/manifests/${subject.replace(':', '-')}`, {
        method: 'PUT',
        headers: {
          ...upstream.pushHeaders('library/hello'),
          'content-type': 'application/vnd.oci.image.index.v1+json',
        },
        body: index,
      });
      expect(pushed.status).toBe(201);
      const reply = await cache.send('GET', `/v2/mirror/library/hello/referrers/${subject}`);
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe('application/vnd.oci.image.index.v1+json');
      expect(reply.json().manifests).toEqual([referrer]);
      const filtered = await cache.send(
        'GET',
        `/v2/mirror/library/hello/referrers/${subject}?artifactType=application/vnd.example.other`,
      );
      expect(filtered.json().manifests).toEqual([]);
      expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    });

    it('answers 404 for what no upstream has', async () => {
      expect((await cache.send('GET', '/v2/mirror/library/hello/manifests/nope')).status).toBe(404);
      const missing = `sha256:${'0'.repeat(64)}`;
      expect((await cache.send('GET', `/v2/mirror/library/hello/blobs/${missing}`)).status).toBe(404);
      expect((await cache.send('HEAD', `/v2/mirror/library/hello/blobs/${missing}`)).status).toBe(404);
    });

    it('refuses pushes with 405 UNSUPPORTED', async () => {
      for (const [method, path] of [
        ['POST', '/v2/mirror/library/hello/blobs/uploads/'],
        ['PUT', '/v2/mirror/library/hello/manifests/v2'],
        ['DELETE', `/v2/mirror/library/hello/manifests/${single.digest}`],
        ['DELETE', `/v2/mirror/library/hello/blobs/${single.digest}`],
      ] as const) {
        const reply = await cache.send(method, path);
        expect(reply.status, `${method} ${path}`).toBe(405);
        expect(reply.json().errors[0].code).toBe('UNSUPPORTED');
        expect(reply.json().errors[0].message).toMatch(/pull-through cache/);
      }
    });
  },
);

function parse(digest: string) {
  const [algorithm, hex] = digest.split(':') as ['sha256', string];
  return { algorithm, hex };
}
