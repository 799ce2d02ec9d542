import { MediaType } from '@angos/oci';
import {
  DISTRIBUTION_USER,
  type Distribution,
  OciClient,
  skipWithout,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUpstreamError, type UpstreamClient } from '../src/index.js';
import { clientFor, readAll, type SeededImage, seedImage } from './helpers.js';

const skip = skipWithout('upstream client tests against CNCF distribution', 'docker-registry', 'openssl');

/** Credentials the client is configured with in each mode. */
const CREDENTIALS = { username: DISTRIBUTION_USER.username, password: DISTRIBUTION_USER.password };

describe.skipIf(skip).each(['none', 'htpasswd', 'token'] as const)(
  'pulls from distribution (auth: %s)',
  (auth) => {
    let upstream: Distribution;
    let single: SeededImage;
    let multi: SeededImage;
    let client: UpstreamClient;

    beforeAll(async () => {
      upstream = await startDistribution({ auth });
      single = await seedImage(upstream, 'library/hello', 'v1');
      multi = await seedImage(upstream, 'library/multi', 'latest', ['linux/amd64', 'linux/arm64']);
      client = clientFor(upstream.url, auth === 'none' ? {} : CREDENTIALS);
    });

    afterAll(async () => {
      client?.close();
      await upstream?.stop();
      await single?.remove();
      await multi?.remove();
    });

    it('heads and gets a manifest by tag and by digest, checked against its digest', async () => {
      const bytes = await single.layout.blob(single.digest);
      const head = await client.headManifest('mirror/library/hello', 'v1');
      expect(head).toEqual({ digest: single.digest, mediaType: MediaType.OciManifest, size: bytes.length });

      const byTag = await client.getManifest('mirror/library/hello', 'v1');
      expect(byTag.digest).toBe(single.digest);
      expect(byTag.bytes.equals(bytes)).toBe(true);
      const byDigest = await client.getManifest('mirror/library/hello', single.digest);
      expect(byDigest).toEqual(byTag);
    });

    it('gets an index and each of its children by digest', async () => {
      const index = await client.getManifest('mirror/library/multi', 'latest');
      expect(index.digest).toBe(multi.digest);
      expect(index.mediaType).toBe(MediaType.OciIndex);
      const children = (JSON.parse(index.bytes.toString()) as { manifests: { digest: string }[] }).manifests;
      expect(children).toHaveLength(2);
      for (const child of children) {
        const manifest = await client.getManifest('mirror/library/multi', child.digest);
        expect(manifest.digest).toBe(child.digest);
        expect(manifest.mediaType).toBe(MediaType.OciManifest);
      }
    });

    it('streams every blob, verified, byte for byte', async () => {
      for (const image of [single, multi]) {
        const namespace = image === single ? 'mirror/library/hello' : 'mirror/library/multi';
        for (const digest of image.blobs) {
          const expected = await image.layout.blob(digest);
          expect(await client.headBlob(namespace, digest)).toEqual({ size: expected.length });
          const blob = await client.getBlob(namespace, digest);
          expect(blob.verified).toBe(true);
          expect(blob.size).toBe(expected.length);
          expect((await readAll(blob.body)).equals(expected)).toBe(true);
        }
      }
      // The access log shows each GET (what the cache's one-GET-per-digest tests will count).
      expect(upstream.output()).toContain(`"GET /v2/library/hello/blobs/${single.blobs[0]} HTTP/1.1" 200`);
    });

    it('serves a range of a blob, unverified', async () => {
      const digest = single.blobs.at(-1)!;
      const expected = await single.layout.blob(digest);
      const blob = await client.getBlob('mirror/library/hello', digest, { range: { start: 2, end: 9 } });
      expect(blob.verified).toBe(false);
      if (blob.verified) return;
      expect(blob.range).toEqual({ start: 2, end: 9 });
      expect(blob.size).toBe(expected.length);
      expect((await readAll(blob.body)).equals(expected.subarray(2, 10))).toBe(true);
    });

    it('maps namespaces onto a path URL: the path replaces the repository key', async () => {
      const credentials = auth === 'none' ? {} : CREDENTIALS;
      const prefixed = clientFor(`${upstream.url}/library`, credentials);
      const root = clientFor(`${upstream.url}/library/hello`, credentials);
      try {
        expect(prefixed.remoteNamespace('mirror/hello')).toBe('library/hello');
        expect((await prefixed.getManifest('mirror/hello', 'v1')).digest).toBe(single.digest);
        expect(root.remoteNamespace('mirror')).toBe('library/hello');
        expect((await root.getManifest('mirror', 'v1')).digest).toBe(single.digest);
      } finally {
        prefixed.close();
        root.close();
      }
    });

    it('lists tags', async () => {
      expect(await client.listTags('mirror/library/hello')).toEqual(['v1']);
    });

    it('answers not-found for what the upstream does not have', async () => {
      expect(await client.headManifest('mirror/library/hello', 'missing')).toBeUndefined();
      await expect(client.getManifest('mirror/library/hello', 'missing')).rejects.toSatisfy((error) =>
        isUpstreamError(error, 'not-found'),
      );
      const unknown = `sha256:${'0'.repeat(64)}`;
      expect(await client.headBlob('mirror/library/hello', unknown)).toBeUndefined();
      await expect(client.getBlob('mirror/library/hello', unknown)).rejects.toSatisfy((error) =>
        isUpstreamError(error, 'not-found'),
      );
      await expect(client.listTags('mirror/library/nothing-here')).rejects.toSatisfy((error) =>
        isUpstreamError(error, 'not-found'),
      );
    });

    it('finds referrers through the referrers tag, distribution 2.8 having no referrers API', async () => {
      expect(await client.referrers('mirror/library/hello', single.digest)).toEqual({
        manifests: [],
        source: 'tag-schema',
      });
      const manifest = await single.layout.blob(single.digest);
      const referrer = {
        mediaType: MediaType.OciManifest,
        digest: single.digest,
        size: manifest.length,
        artifactType: 'application/vnd.example.sbom',
      };
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [referrer],
      });
      const tag = `sha256-${single.digest.slice('sha256:'.length)}`;
      const pushed = await new OciClient(upstream.url, upstream.pushHeaders('library/hello')).pushManifest(
        'library/hello',
        tag,
        index,
        MediaType.OciIndex,
      );
      expect(pushed.status).toBe(201);
      expect(await client.referrers('mirror/library/hello', single.digest)).toEqual({
        manifests: [referrer],
        source: 'tag-schema',
      });
      const filtered = await client.referrers('mirror/library/hello', single.digest, {
        artifactType: 'application/vnd.example.signature',
      });
      expect(filtered.manifests).toEqual([]);
    });
  },
);
