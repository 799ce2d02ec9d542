import { readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import {
  DISTRIBUTION_USER,
  type Distribution,
  type Listening,
  listenOnFreePort,
  skipWithout,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamError } from '../src/index.js';
import {
  clientFor,
  readAll,
  readUntilError,
  type SeededImage,
  seedImage,
  startProxy,
  startServer,
  type TestProxy,
} from './helpers.js';

const skip = skipWithout('upstream failure tests against CNCF distribution', 'docker-registry', 'openssl');

/** Flips one byte of a file in place. */
async function corrupt(path: string, at: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(path, bytes);
}

/**
 * Changes one hex digit of the first digest in a manifest file: the JSON stays valid, so
 * distribution serves it (it parses manifests), but it no longer hashes to its digest.
 */
async function corruptManifest(path: string): Promise<void> {
  const bytes = await readFile(path);
  const at = bytes.indexOf('sha256:') + 'sha256:'.length;
  bytes[at] = bytes[at] === 0x61 ? 0x62 : 0x61;
  await writeFile(path, bytes);
}

const kindOf = (error: unknown) => (error as UpstreamError).kind;

describe.skipIf(skip)('an upstream serving corrupted bytes', () => {
  let upstream: Distribution;
  let image: SeededImage;

  beforeAll(async () => {
    upstream = await startDistribution();
    // A 1 MiB layer: many chunks, so holding back the last one is visible.
    image = await seedImage(upstream, 'app', 'v1', ['linux/amd64'], { fillMb: 1, compress: 'none' });
  });

  afterAll(async () => {
    await upstream?.stop();
    await image?.remove();
  });

  it('a blob whose bytes do not hash to its digest fails at the end, before its last chunk', async () => {
    const layer = image.blobs.at(-1)!;
    const size = (await image.layout.blob(layer)).length;
    await corrupt(upstream.blobDataPath(layer), 1000);
    const client = clientFor(upstream.url);
    try {
      const blob = await client.getBlob('mirror/app', layer);
      expect(blob.verified).toBe(true);
      const { bytes, error } = await readUntilError(blob.body);
      expect(kindOf(error)).toBe('digest-mismatch');
      expect((error as Error).message).toContain(layer);
      // The consumer never held the whole (bad) blob: nothing could have committed it.
      expect(bytes).toBeLessThan(size);
    } finally {
      client.close();
    }
  });

  it('a blob asked for with verify: false streams whole, unchecked, for a caller that checks it itself', async () => {
    const layer = image.blobs.at(-1)!;
    const size = (await image.layout.blob(layer)).length;
    await corrupt(upstream.blobDataPath(layer), 2000);
    const client = clientFor(upstream.url);
    try {
      const blob = await client.getBlob('mirror/app', layer, { verify: false });
      expect(blob).toMatchObject({ verified: false, range: undefined, size });
      // Every byte, bad or not, and no error: the cache's upload path is what refuses them.
      expect((await readAll(blob.body)).length).toBe(size);
    } finally {
      client.close();
    }
  });

  it('a manifest whose bytes do not hash to its digest is refused, by digest and by tag', async () => {
    const client = clientFor(upstream.url);
    try {
      await corruptManifest(upstream.blobDataPath(image.digest));
      for (const reference of [image.digest, 'v1']) {
        const error = await client.getManifest('mirror/app', reference).catch((e: unknown) => e);
        expect(kindOf(error)).toBe('digest-mismatch');
      }
    } finally {
      client.close();
    }
  });
});

describe.skipIf(skip)('an upstream that cannot serve', () => {
  let upstream: Distribution;
  let image: SeededImage;

  beforeAll(async () => {
    upstream = await startDistribution();
    image = await seedImage(upstream, 'app', 'v1');
  });

  afterAll(async () => {
    await upstream?.stop();
    await image?.remove();
  });

  it('429 with Retry-After: rate-limited, with the delay', async () => {
    const proxy = await startProxy(upstream.url, (req, res) => {
      if (!req.url?.includes('/blobs/')) return false;
      res.writeHead(429, { 'retry-after': '7', 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      return true;
    });
    const client = clientFor(proxy.url);
    try {
      expect((await client.getManifest('mirror/app', 'v1')).digest).toBe(image.digest);
      const error = (await client
        .getBlob('mirror/app', image.blobs[0]!)
        .catch((e: unknown) => e)) as UpstreamError;
      expect(error.kind).toBe('rate-limited');
      expect(error.retryAfterSeconds).toBe(7);
      expect(error.code).toBe('TOOMANYREQUESTS');
      expect(error.status).toBe(429);
      expect(error.transient).toBe(true);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  it('5xx: unavailable', async () => {
    const proxy = await startProxy(upstream.url, (_req, res) => {
      res.writeHead(503, { 'retry-after': '3' });
      res.end();
      return true;
    });
    const client = clientFor(proxy.url);
    try {
      const error = (await client.headManifest('mirror/app', 'v1').catch((e: unknown) => e)) as UpstreamError;
      expect(error.kind).toBe('unavailable');
      expect(error.retryAfterSeconds).toBe(3);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  it('a server that accepts but never answers: unavailable after the timeout', async () => {
    // Reads and ignores the request (a socket nobody reads would never see the client close).
    const silent = createServer((socket) => socket.resume());
    silent.listen(0, '127.0.0.1');
    await new Promise((resolve) => silent.once('listening', resolve));
    const { port } = silent.address() as { port: number };
    const client = clientFor(
      `http://127.0.0.1:${port}`,
      {},
      { timeouts: { responseMs: 500, idleMs: 10_000 } },
    );
    try {
      const error = await client.getManifest('mirror/app', 'v1').catch((e: unknown) => e);
      expect(kindOf(error)).toBe('unavailable');
      expect((error as Error).message).toMatch(/no answer .* within 500 ms/);
    } finally {
      client.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a blob body that stops mid-way: unavailable on the stream after the idle timeout', async () => {
    const expected = await image.layout.blob(image.blobs[0]!);
    const stalled = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(expected.length) });
      res.write(expected.subarray(0, 10));
    });
    const client = clientFor(stalled.url, {}, { timeouts: { responseMs: 10_000, idleMs: 500 } });
    try {
      const blob = await client.getBlob('mirror/app', image.blobs[0]!);
      const { error } = await readUntilError(blob.body);
      expect(kindOf(error)).toBe('unavailable');
    } finally {
      client.close();
      await stalled.close();
    }
  });

  it('an upstream that was stopped: unavailable', async () => {
    const stopped = await startDistribution();
    const client = clientFor(stopped.url);
    try {
      expect(await client.listTags('mirror/app').catch((e: unknown) => kindOf(e))).toBe('not-found');
      await stopped.stop();
      for (const call of [
        () => client.headManifest('mirror/app', 'v1'),
        () => client.getManifest('mirror/app', 'v1'),
        () => client.getBlob('mirror/app', image.blobs[0]!),
        () => client.listTags('mirror/app'),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(kindOf(error)).toBe('unavailable');
        expect((error as Error).message).toContain('ECONNREFUSED');
      }
    } finally {
      client.close();
      await stopped.stop();
    }
  });
});

describe.skipIf(skip)('redirects', () => {
  let upstream: Distribution;
  let image: SeededImage;
  /** Object storage stand-in on another origin: serves a blob by digest, recording what it got. */
  let storage: Listening;
  const storageSeen: (string | undefined)[] = [];
  let proxy: TestProxy;
  let corruptStorage = false;

  beforeAll(async () => {
    upstream = await startDistribution({ auth: 'htpasswd' });
    image = await seedImage(upstream, 'app', 'v1');
    storage = await listenOnFreePort(
      createHttpServer(async (req, res) => {
        storageSeen.push(req.headers.authorization);
        const bytes = Buffer.from(
          await image.layout.blob(decodeURIComponent(req.url!.slice('/object/'.length))),
        );
        if (corruptStorage) bytes[0] = bytes[0]! ^ 0xff;
        res.writeHead(200, { 'content-length': String(bytes.length) });
        res.end(bytes);
      }),
    );
    // Blob GETs that carry the upstream's credentials are sent to storage, as S3-backed registries do.
    proxy = await startProxy(upstream.url, (req, res) => {
      const blob = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '');
      if (req.method !== 'GET' || blob === null || req.headers.authorization === undefined) return false;
      res.writeHead(307, { location: `${storage.url}/object/${encodeURIComponent(blob[1]!)}` });
      res.end();
      return true;
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await storage?.close();
    await upstream?.stop();
    await image?.remove();
  });

  const credentials = { username: DISTRIBUTION_USER.username, password: DISTRIBUTION_USER.password };

  it('are followed, without the upstream Authorization to another origin', async () => {
    const client = clientFor(proxy.url, credentials);
    try {
      storageSeen.length = 0;
      for (const digest of image.blobs) {
        const blob = await client.getBlob('mirror/app', digest);
        expect((await readAll(blob.body)).equals(await image.layout.blob(digest))).toBe(true);
      }
      expect(storageSeen).toEqual(image.blobs.map(() => undefined));
      const redirected = proxy.seen.filter((r) => r.url.includes('/blobs/') && r.authorization !== undefined);
      expect(redirected.length).toBeGreaterThanOrEqual(image.blobs.length);
    } finally {
      client.close();
    }
  });

  it('redirected bytes are verified too', async () => {
    const client = clientFor(proxy.url, credentials);
    corruptStorage = true;
    try {
      const blob = await client.getBlob('mirror/app', image.blobs[0]!);
      expect(kindOf((await readUntilError(blob.body)).error)).toBe('digest-mismatch');
    } finally {
      corruptStorage = false;
      client.close();
    }
  });

  it('beyond max_redirect: unavailable', async () => {
    const loop = await startServer((req, res) => {
      res.writeHead(302, { location: req.url ?? '/' });
      res.end();
    });
    try {
      for (const max of [0, 2]) {
        const client = clientFor(loop.url, { max_redirect: max });
        try {
          const error = await client.getManifest('mirror/app', 'v1').catch((e: unknown) => e);
          expect(kindOf(error)).toBe('unavailable');
          expect((error as Error).message).toContain(`max_redirect (${max})`);
        } finally {
          client.close();
        }
      }
      // The storage redirect works with max_redirect 1 and not with 0.
      const strict = clientFor(proxy.url, { ...credentials, max_redirect: 0 });
      const one = clientFor(proxy.url, { ...credentials, max_redirect: 1 });
      try {
        expect(await strict.getBlob('mirror/app', image.blobs[0]!).catch((e: unknown) => kindOf(e))).toBe(
          'unavailable',
        );
        expect(
          (await readAll((await one.getBlob('mirror/app', image.blobs[0]!)).body)).length,
        ).toBeGreaterThan(0);
      } finally {
        strict.close();
        one.close();
      }
    } finally {
      await loop.close();
    }
  });
});
