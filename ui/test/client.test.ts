import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError, nextMarker } from '../src/api/client.js';

/** A real HTTP server that records what the client asked and answers what the test queued. */
let server: Server;
let base = '';
const seen: { method: string; url: string }[] = [];
let answer: { status: number; body: unknown; headers?: Record<string, string> } = { status: 200, body: {} };

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '' });
    res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
    res.end(answer.status === 202 ? '' : JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = new ApiClient((path, init) => fetch(base + path, init));

describe('nextMarker', () => {
  it('reads last from the next link', () => {
    expect(nextMarker('</v2/_ext/_namespaces?parent=a&n=100&last=a%2Fb>; rel="next"')).toBe('a/b');
    expect(nextMarker(null)).toBeUndefined();
    expect(nextMarker('</x?n=1>; rel="prev"')).toBeUndefined();
  });
});

describe('ApiClient', () => {
  it('asks one page of children and returns the next marker', async () => {
    seen.length = 0;
    answer = {
      status: 200,
      body: { entries: [{ path: 'team/app', name: 'app' }] },
      headers: { Link: '</v2/_ext/_namespaces?parent=team&n=2&last=team%2Fapp>; rel="next"' },
    };
    const page = await client.namespaces('team', { n: 2 });
    expect(seen).toEqual([{ method: 'GET', url: '/v2/_ext/_namespaces?parent=team&n=2' }]);
    expect(page.items).toHaveLength(1);
    expect(page.next).toBe('team/app');
  });

  it('keeps digests and namespaces unescaped in paths (the registry does not decode them)', async () => {
    seen.length = 0;
    answer = { status: 200, body: { tags: [], total: 0 } };
    await client.tags('team/app', { n: 50, last: 'v1', sort: 'pushed', order: 'desc' });
    answer = { status: 200, body: {} };
    await client.manifest('team/app', 'sha256:abc');
    answer = { status: 202, body: null };
    await client.deleteManifest('team/app', 'v1');
    await client.cancelUpload('team/app', 'f00d');
    await client.retryJob('replication', 'j1');
    await client.deleteJob('pending', 'cache', 'j2');
    expect(seen).toEqual([
      { method: 'GET', url: '/v2/_ext/team/app/_tags?n=50&last=v1&sort=pushed&order=desc' },
      { method: 'GET', url: '/v2/_ext/team/app/_manifests/sha256:abc' },
      { method: 'DELETE', url: '/v2/team/app/manifests/v1' },
      { method: 'DELETE', url: '/v2/team/app/blobs/uploads/f00d' },
      { method: 'POST', url: '/v2/_ext/jobs/failed/replication/j1/retry' },
      { method: 'DELETE', url: '/v2/_ext/jobs/pending/cache/j2' },
    ]);
  });

  it('turns an OCI error body into an ApiError with its code', async () => {
    answer = {
      status: 404,
      body: { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known' }] },
    };
    const error = await client.revisions('secret').catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: 'NAME_UNKNOWN' });
  });
});
