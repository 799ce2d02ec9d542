import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseDigest } from '@angos/oci';
import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../src/challenge.js';
import { parseRetryAfter } from '../src/errors.js';
import { UpstreamError, VerifyingStream } from '../src/index.js';
import { TokenCache } from '../src/tokens.js';
import { clientFor, readAll, readUntilError, startServer } from './helpers.js';

describe('parseChallenges', () => {
  it('reads a Bearer challenge as Docker Hub sends it', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/nginx:pull',
        },
      },
    ]);
  });

  it('reads several challenges, token values, escapes and spacing', () => {
    expect(
      parseChallenges(['Basic realm=registry', 'Bearer  realm = "a\\"b" , error="insufficient_scope"']),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'registry' } },
      { scheme: 'bearer', params: { realm: 'a"b', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges('Negotiate abc==, Basic realm="x"')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });

  it('yields what parsed before a malformed part, and nothing for nothing', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: {} }]);
    expect(parseChallenges('=oops')).toEqual([]);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('TokenCache', () => {
  it('keeps a token until a fifth of its lifetime (at most 30 s) before it expires', () => {
    let now = 0;
    const cache = new TokenCache(() => now);
    cache.set('a', 't60', 60);
    cache.set('b', 't600', 600);
    now = 47_999;
    expect(cache.get('a')).toBe('t60');
    now = 48_000;
    expect(cache.get('a')).toBeUndefined();
    now = 569_999;
    expect(cache.get('b')).toBe('t600');
    now = 570_000;
    expect(cache.get('b')).toBeUndefined();
  });

  it('discards a token only while it is still the cached one, and bounds its size', () => {
    const cache = new TokenCache(() => 0, 2);
    cache.set('a', 'old', 60);
    cache.set('a', 'new', 60);
    cache.discard('a', 'old');
    expect(cache.get('a')).toBe('new');
    cache.discard('a', 'new');
    expect(cache.get('a')).toBeUndefined();
    cache.set('x', '1', 60);
    cache.set('y', '2', 60);
    cache.set('z', '3', 60);
    expect(cache.size).toBe(2);
    expect(cache.get('x')).toBeUndefined();
  });
});

describe('VerifyingStream', () => {
  const data = Buffer.from('0123456789'.repeat(1000));
  const digest = parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
  const chunks = () =>
    Readable.from([data.subarray(0, 4000), data.subarray(4000, 8000), data.subarray(8000)]);
  const mismatch = (message: string) => new UpstreamError('digest-mismatch', message, { upstream: 'test' });

  it('passes every byte of a good blob', async () => {
    const verifier = new VerifyingStream(digest, data.length, mismatch);
    expect((await readAll(chunks().pipe(verifier))).equals(data)).toBe(true);
  });

  it('fails a bad blob before its last chunk', async () => {
    const bad = Buffer.from(data);
    bad[0] = 0;
    const verifier = new VerifyingStream(digest, data.length, mismatch);
    const { bytes, error } = await readUntilError(
      Readable.from([bad.subarray(0, 4000), bad.subarray(4000)]).pipe(verifier),
    );
    expect((error as UpstreamError).kind).toBe('digest-mismatch');
    expect(bytes).toBeLessThan(data.length);
  });

  it('fails a blob of the wrong length', async () => {
    const verifier = new VerifyingStream(digest, data.length + 1, mismatch);
    const { error } = await readUntilError(chunks().pipe(verifier));
    expect((error as Error).message).toBe(`got ${data.length} bytes of ${data.length + 1}`);
  });
});

describe('requests', () => {
  it('keep Authorization on a redirect within the upstream origin', async () => {
    const seen: { url: string; authorization: string | undefined }[] = [];
    const manifest = Buffer.from(
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}',
    );
    const upstream = await startServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
        res.end();
      } else if (req.url === '/v2/app/manifests/v1') {
        res.writeHead(302, { location: '/moved/manifest' });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        res.end(manifest);
      }
    });
    const client = clientFor(upstream.url, { username: 'u', password: 'p' });
    try {
      const fetched = await client.getManifest('mirror/app', 'v1');
      expect(fetched.bytes.equals(manifest)).toBe(true);
      const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
      expect(seen).toEqual([
        { url: '/v2/app/manifests/v1', authorization: undefined },
        { url: '/v2/app/manifests/v1', authorization: basic },
        { url: '/moved/manifest', authorization: basic },
      ]);
    } finally {
      client.close();
      await upstream.close();
    }
  });

  it('refuse a manifest over max_manifest_size without reading it all', async () => {
    const upstream = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(Buffer.alloc(2048, 0x20));
    });
    const client = clientFor(upstream.url, {}, { maxManifestBytes: 1024 });
    try {
      const error = (await client.getManifest('mirror/app', 'v1').catch((e: unknown) => e)) as UpstreamError;
      expect(error.kind).toBe('invalid-response');
      expect(error.message).toContain('larger than 1024 bytes');
    } finally {
      client.close();
      await upstream.close();
    }
  });

  it('follow tag list pages and stop at a Link to another registry', async () => {
    const upstream = await startServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const last = url.searchParams.get('last');
      res.setHeader('content-type', 'application/json');
      if (last === null) {
        res.setHeader('link', '</v2/app/tags/list?n=2&last=b>; rel="next"');
        res.end(JSON.stringify({ name: 'app', tags: ['a', 'b'] }));
      } else if (last === 'b') {
        res.setHeader('link', '<http://elsewhere.example/v2/app/tags/list?last=c>; rel="next"');
        res.end(JSON.stringify({ name: 'app', tags: ['c'] }));
      }
    });
    const client = clientFor(upstream.url);
    try {
      const error = (await client.listTags('mirror/app').catch((e: unknown) => e)) as UpstreamError;
      expect(error.kind).toBe('invalid-response');
      expect(error.message).toContain('Link to another registry');
    } finally {
      client.close();
      await upstream.close();
    }
  });

  it('read referrers from the referrers API when the upstream has one', async () => {
    const subject = `sha256:${'a'.repeat(64)}`;
    const referrer = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'b'.repeat(64)}`,
      size: 10,
      artifactType: 'application/vnd.example.sbom',
    };
    const seen: string[] = [];
    const upstream = await startServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' });
      res.end(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [referrer],
        }),
      );
    });
    const client = clientFor(upstream.url);
    try {
      expect(await client.referrers('mirror/app', subject)).toEqual({ manifests: [referrer], source: 'api' });
      // An upstream that ignores the filter is filtered here.
      expect(await client.referrers('mirror/app', subject, { artifactType: 'application/x-other' })).toEqual({
        manifests: [],
        source: 'api',
      });
      expect(seen).toEqual([
        `/v2/app/referrers/${subject}`,
        `/v2/app/referrers/${subject}?artifactType=application%2Fx-other`,
      ]);
    } finally {
      client.close();
      await upstream.close();
    }
  });

  it('reject a namespace outside the repository before any request', async () => {
    const client = clientFor('http://127.0.0.1:9');
    try {
      await expect(client.getManifest('other/app', 'v1')).rejects.toThrow(/not under repository "mirror"/);
    } finally {
      client.close();
    }
  });
});
