import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '@angos/observability';
import { afterEach, describe, expect, it } from 'vitest';
import { drain } from '../src/drain.js';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server = undefined;
});

/** A server whose requests answer only when `release()` is called. */
async function slowServer() {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let arrived!: () => void;
  const requestArrived = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  server = createServer((_req, res) => {
    arrived();
    void released.then(() => res.end('done'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, release, requestArrived };
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(
      { host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'keep-alive' } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    )
      .on('error', reject)
      .end();
  });
}

describe('drain', () => {
  it('waits for in-flight requests, then resolves', async () => {
    const slow = await slowServer();
    const response = get(slow.port);
    await slow.requestArrived;

    let drained = false;
    const draining = drain(slow.server, 10_000, silentLogger).then(() => {
      drained = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(drained).toBe(false);
    // No new connections while draining.
    await expect(get(slow.port)).rejects.toThrow();

    slow.release();
    expect(await response).toEqual({ status: 200, body: 'done' });
    // The now idle keep-alive connection must not hold the drain for the keep-alive timeout.
    const answered = Date.now();
    await draining;
    expect(Date.now() - answered).toBeLessThan(1000);
    expect(drained).toBe(true);
  });

  it('cuts requests still running when the bound expires', async () => {
    const slow = await slowServer();
    const response = get(slow.port).catch((error: Error) => error);
    await slow.requestArrived;
    const started = Date.now();
    await drain(slow.server, 300, silentLogger);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await response).toBeInstanceOf(Error);
  });
});
