import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMetrics } from '@angos/observability';
import { afterEach, describe, expect, it } from 'vitest';
import { type Handler, sendText } from '../src/index.js';
import { captureLogger, type Running, serve } from './helpers.js';

let running: Running | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await running?.close();
  running = undefined;
});

/** A raw connection whose whole answer (until the server closes) is collected. */
function rawConnection(port: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  const answer = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  return { socket, answer };
}

/** Resolves with `promise`, or rejects if it takes longer than `ms` (the old code hangs). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms, undefined, { ref: false }).then(() => {
      throw new Error(`no answer within ${ms} ms`);
    }),
  ]);
}

/** Reads the whole body and answers 201 with its length. */
const countBody: Handler = async (req, res) => {
  let total = 0;
  for await (const chunk of req) total += (chunk as Buffer).length;
  sendText(res, 201, String(total));
};

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One request on its own connection; `hold` is called with the request before it ends. */
function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('request timeouts', () => {
  it('lets a slow upload finish that takes longer than query_timeout + grace', async () => {
    const { logger } = captureLogger('off');
    running = await serve(countBody, logger, {
      limits: () => ({ queryTimeoutSecs: 2, maxConcurrentRequests: 64 }),
      bodyIdleTimeoutMs: 1000,
    });
    const { socket, answer } = rawConnection(running.port);
    const size = 40;
    socket.write(`PUT /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${size}\r\n\r\n`);
    // 40 bytes over about 4 s: twice the 2 s whole-request deadline, never idle for long.
    for (let sent = 0; sent < size; sent += 1) {
      await sleep(100);
      socket.write('x');
    }
    socket.end();
    const text = await within(15_000, answer);
    expect(text).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(text.endsWith(`\r\n\r\n${size}`)).toBe(true);
  }, 30_000);

  it('closes the connection of a client that stops sending its body, answering 408', async () => {
    const { logger } = captureLogger('off');
    const metrics = createMetrics({ defaultMetrics: false });
    running = await serve(countBody, logger, { bodyIdleTimeoutMs: 500, metrics });
    const { socket, answer } = rawConnection(running.port);
    socket.write('PUT /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc');
    const text = await within(10_000, answer);
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(text).toContain('"code":"UNSUPPORTED"');
    const { values } = await metrics.http.requestsRefused.get();
    expect(values).toEqual([expect.objectContaining({ labels: { reason: 'body_idle_timeout' }, value: 1 })]);
  }, 20_000);

  it('does not blame the client while the handler is not reading', async () => {
    const { logger } = captureLogger('off');
    // The handler waits four idle timeouts before it reads: the socket is paused, nothing arrives.
    running = await serve(
      async (req, res) => {
        await sleep(2000);
        await countBody(req, res);
      },
      logger,
      { bodyIdleTimeoutMs: 500 },
    );
    const size = 16 * 1024 * 1024;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: running?.port,
          method: 'PUT',
          path: '/v2/a/blobs/uploads/x',
          agent: false,
          headers: { 'content-length': size },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(Buffer.alloc(size));
    });
    expect(status).toBe(201);
  }, 30_000);

  it('cuts a client that sends its request head too slowly', async () => {
    const { logger } = captureLogger('off');
    running = await serve(countBody, logger, { headersTimeoutMs: 500 });
    const { socket, answer } = rawConnection(running.port);
    socket.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\n');
    let closed = false;
    void answer.then(() => {
      closed = true;
    });
    // One header line every 100 ms, never finishing the head.
    for (let line = 0; line < 100 && !closed; line += 1) {
      socket.write(`X-Slow-${line}: y\r\n`);
      await sleep(100);
    }
    const text = await within(5_000, answer);
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  }, 30_000);

  it('answers 503 when a handler has not started its response within the query timeout', async () => {
    const { logger } = captureLogger('off');
    running = await serve(() => new Promise<void>(() => {}), logger, {
      limits: () => ({ queryTimeoutSecs: 1, maxConcurrentRequests: 64 }),
    });
    const { socket, answer } = rawConnection(running.port);
    socket.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const text = await within(10_000, answer);
    expect(text).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(text).toContain('"code":"UNAVAILABLE"');
  }, 20_000);
});

describe('max_concurrent_requests', () => {
  /** A handler that holds every `/hold` request until released; anything else answers at once. */
  function holding() {
    const held: Array<() => void> = [];
    let arrived = 0;
    const handler: Handler = (req, res) => {
      if (req.url !== '/hold') {
        sendText(res, 200, 'ok');
        return;
      }
      arrived += 1;
      return new Promise<void>((resolve) => {
        held.push(() => {
          sendText(res, 200, 'released');
          resolve();
        });
      });
    };
    return {
      handler,
      held,
      async arrivals(count: number) {
        for (let waited = 0; arrived < count && waited < 10_000; waited += 20) await sleep(20);
        expect(arrived).toBe(count);
      },
    };
  }

  it('refuses the request beyond the limit with 503 and Retry-After, and frees the slot after completion', async () => {
    const { logger, records } = captureLogger('info');
    const metrics = createMetrics({ defaultMetrics: false });
    const hold = holding();
    running = await serve(hold.handler, logger, {
      limits: () => ({ queryTimeoutSecs: 3660, maxConcurrentRequests: 2 }),
      metrics,
    });
    const port = running.port;
    const first = get(port, '/hold');
    const second = get(port, '/hold');
    await hold.arrivals(2);

    const refused = await within(5_000, get(port, '/v2/'));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
    const { values } = await metrics.http.requestsRefused.get();
    expect(values).toEqual([
      expect.objectContaining({ labels: { reason: 'max_concurrent_requests' }, value: 1 }),
    ]);

    // A flood of refusals must not become a flood of error lines.
    expect((await records()).filter((record) => record['level'] === 'ERROR')).toEqual([]);

    // Operators' endpoints are neither counted nor refused.
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      expect((await within(5_000, get(port, path))).status).toBe(200);
    }

    hold.held.shift()?.();
    expect((await first).status).toBe(200);
    expect((await within(5_000, get(port, '/v2/'))).status).toBe(200);
    hold.held.shift()?.();
    expect((await second).status).toBe(200);
  }, 30_000);

  it('frees the slot of a request whose client went away', async () => {
    const { logger } = captureLogger('off');
    const hold = holding();
    running = await serve(hold.handler, logger, {
      limits: () => ({ queryTimeoutSecs: 3660, maxConcurrentRequests: 1 }),
    });
    const port = running.port;
    const { socket } = rawConnection(port);
    socket.write('GET /hold HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await hold.arrivals(1);
    expect((await within(5_000, get(port, '/v2/'))).status).toBe(503);

    socket.destroy();
    // The server notices the abort asynchronously; poll, bounded, until the slot is free.
    let status = 503;
    for (let attempt = 0; attempt < 100 && status === 503; attempt += 1) {
      status = (await within(5_000, get(port, '/v2/'))).status;
      if (status === 503) await sleep(50);
    }
    expect(status).toBe(200);
  }, 30_000);
});
