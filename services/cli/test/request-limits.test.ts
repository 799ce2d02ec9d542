import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '@angos/observability';
import { eventually } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningService, startServer } from '../src/index.js';
import { baseConfig, useWorkspace } from './helpers.js';

const ws = useWorkspace();
let service: RunningService | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await service?.close();
  service = undefined;
});

const silent = createLogger({ filter: 'off' });

/** `serverOptions` go into `[server]`, `extra` after the storage table. */
function config(extra: string, serverOptions = ''): string {
  const text = baseConfig(ws().dir, 1, `${extra}\n[global.access_policy]\ndefault = "allow"\n`);
  return text.replace('port = 1\n', `port = 1\n${serverOptions}`);
}

async function start(extra: string, serverOptions = ''): Promise<string> {
  await ws().writeConfig(config(extra, serverOptions));
  service = await startServer({ configPath: ws().configPath, listen: '127.0.0.1:0', logger: silent });
  return `http://127.0.0.1:${service.address.port}`;
}

/** A raw connection that collects everything the server sends until it closes. */
function rawConnection(port: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  return { socket, answer: new Promise((resolve) => socket.on('close', () => resolve(received))) };
}

/** The head of a monolithic blob upload of `body`, which the caller sends itself. */
function monolithicUploadHead(body: Buffer): string {
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  return (
    `POST /v2/limits/test/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: localhost\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`
  );
}

describe('request limits of a running server', () => {
  it('accepts an upload that keeps sending for longer than query_timeout + grace', async () => {
    await start('', 'query_timeout = 1\nquery_timeout_grace_period = 1\n');
    const port = service?.address.port ?? 0;
    const body = Buffer.from('x'.repeat(40));
    const { socket, answer } = rawConnection(port);
    socket.write(monolithicUploadHead(body));
    // 40 bytes over about 4 s: twice the 2 s that query_timeout + grace allow.
    for (const byte of body) {
      await sleep(100);
      socket.write(Buffer.of(byte));
    }
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
  }, 30_000);

  it('refuses requests beyond max_concurrent_requests with 503 and Retry-After, follows reloads', async () => {
    const url = await start('[global]\nmax_concurrent_requests = 1\n');
    const port = service?.address.port ?? 0;
    // An upload whose body is still arriving holds the only slot.
    const body = Buffer.alloc(1000, 1);
    const { socket } = rawConnection(port);
    socket.write(monolithicUploadHead(body));
    socket.write(body.subarray(0, 10));

    await eventually(async () => (await fetch(`${url}/v2/`)).status === 503, { timeoutMs: 10_000 });
    const refused = await fetch(`${url}/v2/`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^http_requests_refused_total\{reason="max_concurrent_requests"\} [1-9]/m);

    // A reload raises the limit for the next request.
    await ws().writeConfig(config('[global]\nmax_concurrent_requests = 2\n'));
    await eventually(async () => (await fetch(`${url}/v2/`)).status === 200, { timeoutMs: 10_000 });

    // The abandoned upload frees its slot.
    await ws().writeConfig(config('[global]\nmax_concurrent_requests = 1\n'));
    await eventually(async () => (await fetch(`${url}/v2/`)).status === 503, { timeoutMs: 10_000 });
    socket.destroy();
    await eventually(async () => (await fetch(`${url}/v2/`)).status === 200, { timeoutMs: 10_000 });
  }, 60_000);
});
