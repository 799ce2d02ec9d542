import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
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
  startServer,
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

  it('credentials are not sent to a plain-HTTP token realm of an HTTPS upstream', async () => {
    const realmSaw: (string | undefined)[] = [];
    const realm = await startServer((req, res) => {
      realmSaw.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'anonymous-token' }));
    });
    const registry = createHttpsServer({ cert: server.cert, key: server.key }, (req, res) => {
      if (req.headers.authorization !== 'Bearer anonymous-token') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.url}/token",service="test"` });
        res.end();
        return;
      }
      res.writeHead(404);
      res.end();
    });
    registry.listen(0, '127.0.0.1');
    await once(registry, 'listening');
    const { port } = registry.address() as AddressInfo;
    const client = clientFor(`https://127.0.0.1:${port}`, {
      server_ca_bundle: ca.certPath,
      username: 'angos',
      password: 'secret',
    });
    try {
      expect(await client.headManifest('mirror/app', 'v1')).toBeUndefined();
      expect(realmSaw).toEqual([undefined]);
      // A realm nobody answers at is as good as an upstream that is down.
      await realm.close();
      expect(kindOf(await client.headManifest('mirror/other', 'v1').catch((e: unknown) => e))).toBe(
        'unavailable',
      );
    } finally {
      client.close();
      registry.closeAllConnections();
      await new Promise((resolve) => registry.close(resolve));
      await realm.close();
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
