import { join } from 'node:path';
import {
  createTestCa,
  type Distribution,
  type Issued,
  skipWithout,
  startDistribution,
  type TestCa,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamClient, type UpstreamError, UpstreamSetupError } from '../src/index.js';
import {
  clientFor,
  MAX_MANIFEST_BYTES,
  REPOSITORY,
  readAll,
  type SeededImage,
  seedImage,
  upstreamConfig,
} from './helpers.js';

const skip = skipWithout('upstream mTLS tests against CNCF distribution', 'docker-registry', 'openssl');

const kindOf = (error: unknown) => (error as UpstreamError).kind;

describe.skipIf(skip)('mTLS and server_ca_bundle (distribution with http.tls.clientcas)', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let server: Issued;
  let robot: Issued;
  let stranger: Issued;
  let upstream: Distribution;
  let image: SeededImage;

  beforeAll(async () => {
    ca = createTestCa('Upstream CA');
    otherCa = createTestCa('Other CA');
    server = ca.issue('upstream', { subject: '/CN=127.0.0.1', usage: 'server' });
    robot = ca.issue('robot', { subject: '/CN=angos-cache', usage: 'client' });
    stranger = otherCa.issue('stranger', { subject: '/CN=stranger', usage: 'client' });
    // Seeded over plain HTTP, then served over mTLS from the same storage root.
    const dataDir = join(ca.dir, 'upstream-data');
    const seeding = await startDistribution({ dataDir });
    try {
      image = await seedImage(seeding, 'app', 'v1');
    } finally {
      await seeding.stop();
    }
    upstream = await startDistribution({
      dataDir,
      tls: { certPath: server.certPath, keyPath: server.keyPath, clientCaPath: ca.certPath },
    });
  });

  afterAll(async () => {
    await upstream?.stop();
    await image?.remove();
    ca?.remove();
    otherCa?.remove();
  });

  it('pulls with the client certificate, trusting server_ca_bundle', async () => {
    const client = clientFor(upstream.url, {
      server_ca_bundle: ca.certPath,
      client_certificate: robot.certPath,
      client_private_key: robot.keyPath,
    });
    try {
      expect((await client.getManifest('mirror/app', 'v1')).digest).toBe(image.digest);
      for (const digest of image.blobs) {
        const blob = await client.getBlob('mirror/app', digest);
        expect((await readAll(blob.body)).equals(await image.layout.blob(digest))).toBe(true);
      }
    } finally {
      client.close();
    }
  });

  it('without a client certificate, or with one of another CA: unavailable', async () => {
    for (const overrides of [
      { server_ca_bundle: ca.certPath },
      {
        server_ca_bundle: ca.certPath,
        client_certificate: stranger.certPath,
        client_private_key: stranger.keyPath,
      },
    ]) {
      const client = clientFor(upstream.url, overrides);
      try {
        expect(kindOf(await client.headManifest('mirror/app', 'v1').catch((e: unknown) => e))).toBe(
          'unavailable',
        );
      } finally {
        client.close();
      }
    }
  });

  it('without server_ca_bundle the server is not trusted: unavailable', async () => {
    const client = clientFor(upstream.url, {
      client_certificate: robot.certPath,
      client_private_key: robot.keyPath,
    });
    try {
      const error = await client.headManifest('mirror/app', 'v1').catch((e: unknown) => e);
      expect(kindOf(error)).toBe('unavailable');
      expect((error as Error).message).toMatch(/certificate/i);
    } finally {
      client.close();
    }
  });

  it('a TLS file that cannot be read fails when the client is built, naming the option', () => {
    const build = () =>
      new UpstreamClient({
        repository: REPOSITORY,
        config: upstreamConfig(upstream.url, { server_ca_bundle: join(ca.dir, 'missing.pem') }),
        maxManifestBytes: MAX_MANIFEST_BYTES,
      });
    expect(build).toThrow(UpstreamSetupError);
    expect(build).toThrow(/missing\.pem: ENOENT/);
  });
});
