import { connect } from 'node:net';
import { random } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, OCI_MANIFEST, pushImage, sha256, startApi } from './harness.js';

const NAMES = [
  't/img',
  'T/img',
  't/../img',
  't/%2e%2e/img',
  't%2Fimg',
  'a'.repeat(300),
  't//img',
  't/img%00',
  '_x',
  't/img/',
];
const REFERENCES = [
  'v1',
  'latest',
  '-bad',
  'a'.repeat(129),
  'sha256:abc',
  `sha256:${'A'.repeat(64)}`,
  'md5:00',
  '%2e%2e',
  'v1%00',
  'x:y',
];
const SUFFIXES = [
  (r: string) => `/manifests/${r}`,
  (r: string) => `/blobs/${r}`,
  () => '/blobs/uploads/',
  (r: string) => `/blobs/uploads/${r}`,
  () => '/tags/list?n=-1',
  () => '/tags/list?n=abc&last=%00',
  () => '/tags/list?n=99999999999999999999',
  (r: string) => `/referrers/${r}?artifactType=%ff`,
  (r: string) => `/blobs/uploads/?mount=${r}&from=../../etc`,
  (r: string) => `/blobs/uploads/?digest=${r}`,
];
const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND'];
const HEADERS: Array<Record<string, string>> = [
  {},
  { Range: 'bytes=5-2' },
  { Range: 'bytes=0-1,4-5' },
  { Range: 'bytes=99999999999999999999-' },
  { 'Content-Range': '10-5' },
  { 'Content-Range': 'bytes */*' },
  { 'Content-Type': 'application/vnd.oci.image.index.v1+json; charset=%' },
  { Accept: ',,,;;;' },
];
const BODIES = [
  '',
  '{',
  '{"schemaVersion":2}',
  'x'.repeat(70_000),
  `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`,
];

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

describe('malformed and adversarial requests', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi('[global]\nmax_manifest_size = "64KiB"\n');
    await pushImage(api, 't/img', 'v1');
  });
  afterAll(async () => api.close());

  it('answers 1500 seeded random requests with a 2xx-4xx and an OCI body on errors', async () => {
    const next = random(20261124);
    for (let i = 0; i < 1500; i++) {
      const path = `/v2/${pick(next, NAMES)}${pick(next, SUFFIXES)(pick(next, REFERENCES))}`;
      const method = pick(next, METHODS);
      const body = method === 'GET' || method === 'HEAD' ? undefined : pick(next, BODIES);
      const reply = await api.send(method, path, {
        headers: pick(next, HEADERS),
        ...(body !== undefined && { body }),
      });
      const where = `#${i} ${method} ${path}`;
      expect(reply.status, where).toBeGreaterThanOrEqual(200);
      expect(reply.status, where).toBeLessThan(500);
      if (reply.status >= 400 && method !== 'HEAD') {
        expect(reply.body.toString(), where).toMatch(/^{"errors":\[/);
      }
    }
    // Still alive and consistent afterwards.
    expect((await api.send('GET', '/v2/t/img/manifests/v1')).status).toBe(200);
  }, 120_000);

  it('survives a chunk cut off mid-stream and keeps what arrived', async () => {
    const start = await api.send('POST', '/v2/t/cut/blobs/uploads/');
    const location = String(start.headers.location);
    const port = Number(new URL(api.url).port);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n${'a'.repeat(40)}`);
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    // The server settles the aborted chunk; the session then holds a consistent prefix.
    let range = '';
    for (let attempt = 0; attempt < 50; attempt++) {
      const status = await api.send('GET', location);
      expect(status.status).toBe(204);
      range = String(status.headers.range);
      if (range === '0-39' || range === '0-0') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(['0-39', '0-0']).toContain(range);
    const size = range === '0-0' ? 0 : 40;
    const rest = 'a'.repeat(100 - size);
    const done = await api.send('PUT', `${location}?digest=${sha256('a'.repeat(100))}`, { body: rest });
    expect(done.status).toBe(201);
  });

  it('refuses PATCH and PUT to a finished session', async () => {
    const start = await api.send('POST', '/v2/t/img/blobs/uploads/');
    const location = String(start.headers.location);
    expect((await api.send('PUT', `${location}?digest=${sha256('done')}`, { body: 'done' })).status).toBe(
      201,
    );
    expect((await api.send('PATCH', location, { body: 'more' })).status).toBe(404);
    expect((await api.send('PUT', `${location}?digest=${sha256('done')}`)).status).toBe(404);
  });

  it('refuses a manifest that references itself as subject of an unknown type without crashing', async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
      layers: [],
      subject: { mediaType: 'text/plain', digest: 'sha256:zz', size: 1 },
    });
    const reply = await api.send('PUT', '/v2/t/img/manifests/weird', {
      body,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    expect(reply.status).toBe(400);
  });
});
