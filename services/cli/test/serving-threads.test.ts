import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { type ClientRequest, request } from 'node:http';
import { join } from 'node:path';
import { CONTEXT_HEADER, createRequestSigner, encodeContext, SIGNATURE_HEADER } from '@angos/http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  baseConfig,
  configOnlyManifest,
  freePort,
  fresh,
  killAll,
  type LongRunning,
  logRecords,
  runAngos,
  startAngos,
  useWorkspace,
  waitForRecord,
} from './helpers.js';

/**
 * `[server] workers` above 1: one service, several serving threads on one port. Every request
 * here opens its own connection, so the kernel spreads them over the threads (SO_REUSEPORT):
 * state that one thread kept to itself would show (a stale tag, a lost chunk, a count too low).
 */

const ws = useWorkspace();
afterEach(() => killAll());

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function startThreaded(extra: string, args: readonly string[] = ['server', '--workers', '2']) {
  const port = await freePort();
  await ws().writeConfig(baseConfig(ws().dir, port, extra));
  const server = startAngos(['-c', ws().configPath, ...args]);
  await waitForRecord(server, (record) => record['message'] === 'serving threads started');
  return { url: `http://127.0.0.1:${port}`, server };
}

async function pushBlob(url: string, namespace: string, blob: Buffer): Promise<string> {
  const digest = sha256(blob);
  const put = await fresh(`${url}/v2/${namespace}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    body: blob,
  });
  expect(put.status).toBe(201);
  return digest;
}

const stop = async (server: LongRunning) => expect(await server.stop()).toBe(0);

describe('angos server --workers 2', () => {
  it('answers a tag moved through one thread with its new manifest on every other', async () => {
    const { url, server } = await startThreaded(ALLOW);
    const config = Buffer.from('{}');
    const configRef = { digest: await pushBlob(url, 'threads/app', config), size: config.length };
    for (let round = 0; round < 12; round += 1) {
      const manifest = configOnlyManifest(configRef);
      const variant = Buffer.concat([
        manifest.subarray(0, -1),
        Buffer.from(`,"annotations":{"r":"${round}"}}`),
      ]);
      const put = await fresh(`${url}/v2/threads/app/manifests/latest`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: variant,
      });
      expect(put.status).toBe(201);
      for (let read = 0; read < 4; read += 1) {
        const got = await fresh(`${url}/v2/threads/app/manifests/latest`, {
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        });
        expect(got.headers['docker-content-digest']).toBe(sha256(variant));
      }
    }
    await stop(server);
  }, 60_000);

  it('completes a chunked upload whose PATCHes arrive on different connections, checking its digest', async () => {
    const { url, server } = await startThreaded(ALLOW);
    const blob = randomBytes(8 * 64 * 1024);
    const started = await fresh(`${url}/v2/threads/chunks/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    let location = String(started.headers['location']);
    for (let offset = 0; offset < blob.length; offset += 64 * 1024) {
      const chunk = blob.subarray(offset, offset + 64 * 1024);
      const patched = await fresh(new URL(location, url).href, {
        method: 'PATCH',
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
      });
      expect(patched.status).toBe(202);
      location = String(patched.headers['location']);
    }
    const done = new URL(location, url);
    done.searchParams.set('digest', sha256(blob));
    expect((await fresh(done.href, { method: 'PUT' })).status).toBe(201);
    const pulled = await fresh(`${url}/v2/threads/chunks/blobs/${sha256(blob)}`);
    expect(pulled.body.equals(blob)).toBe(true);
    await stop(server);
  }, 60_000);

  it('sums every thread in /metrics, and applies max_concurrent_requests to the service', async () => {
    const limited = '[global]\nmax_concurrent_requests = 2\n\n[global.access_policy]\ndefault = "allow"\n';
    const { url, server } = await startThreaded(limited);
    for (let i = 0; i < 30; i += 1) expect((await fresh(`${url}/v2/`)).status).toBe(200);
    const metrics = (await fresh(`${url}/metrics`)).body.toString();
    expect(metrics).toContain('http_requests_total{method="GET",route="get-api-version",status="200"} 30');

    // Two pushes whose bodies never finish hold both slots, whichever threads they landed on.
    const holders: ClientRequest[] = [];
    await Promise.all(
      [0, 1].map(
        (i) =>
          new Promise<void>((resolve) => {
            const digest = sha256(Buffer.from(`never sent ${i}`));
            const req = request(`${url}/v2/threads/held/blobs/uploads/?digest=${digest}`, {
              method: 'POST',
              agent: false,
              headers: { 'content-length': '1000000' },
            });
            req.on('error', () => {});
            holders.push(req);
            req.write(Buffer.alloc(1000), () => resolve());
          }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    const answers = await Promise.all(Array.from({ length: 10 }, () => fresh(`${url}/v2/`)));
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(503));
    for (const req of holders) req.destroy();
    await stop(server);
  }, 60_000);

  it('holds the instance lock for all its threads, and releases it once they have drained', async () => {
    const { server } = await startThreaded(ALLOW);
    const second = await runAngos(['-c', ws().configPath, 'server', '--workers', '2']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('holds it');
    await stop(server);
    const drained = logRecords(server.output()).filter((record) => record['message'] === 'stopped');
    // Each thread, then the main thread.
    expect(drained).toHaveLength(3);
    const again = await startThreaded(ALLOW);
    await stop(again.server);
  }, 60_000);
});

describe('a signal while serving threads start', () => {
  it('drains the service once started, instead of killing the process', async () => {
    const port = await freePort();
    await ws().writeConfig(baseConfig(ws().dir, port, ALLOW));
    const server = startAngos(['-c', ws().configPath, 'server', '--workers', '2']);
    // The first thread listens; the second is still starting.
    await waitForRecord(server, (record) => record['message'] === 'listening');
    expect(await server.stop()).toBe(0);
    expect(
      logRecords(server.output()).some((record) => record['message'] === 'serving threads started'),
    ).toBe(true);
  }, 60_000);
});

describe('the port of a service with serving threads', () => {
  it('is refused to a second service with serving threads, as to any other process', async () => {
    const { url, server } = await startThreaded(ALLOW);
    const port = new URL(url).port;
    const other = join(ws().dir, 'other.toml');
    await writeFile(other, baseConfig(join(ws().dir, 'other'), Number(port), ALLOW));
    const second = await runAngos(['-c', other, 'server', '--workers', '2']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`);
    await stop(server);
  }, 60_000);
});

describe('angos registry-api --workers 2', () => {
  it('admits a signed request once, whichever thread each replay reaches', async () => {
    const token = 't'.repeat(32);
    const { url, server } = await startThreaded(`[services]\ninternal_token = "${token}"\n`, [
      'registry-api',
      '--workers',
      '2',
    ]);
    const sign = createRequestSigner(token);
    const context = encodeContext({ clientIp: '127.0.0.1' });
    const headers = { [SIGNATURE_HEADER]: sign('GET', '/v2/', context), [CONTEXT_HEADER]: context };
    const answers = [];
    for (let i = 0; i < 12; i += 1) answers.push((await fresh(`${url}/v2/`, { headers })).status);
    expect(answers[0]).toBe(200);
    expect(answers.slice(1)).toEqual(Array(11).fill(401));
    await stop(server);
  }, 60_000);
});
