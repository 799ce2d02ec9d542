import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_HEADER_SIZE, sendText } from '../src/index.js';
import { captureLogger, type Running, serve } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/** Sends raw bytes and collects everything until the server closes (bounded by a timeout). */
function rawExchange(port: number, payload: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms; got ${JSON.stringify(received)}`));
    }, timeoutMs);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(payload);
  });
}

const ok = (_req: unknown, res: Parameters<typeof sendText>[0]) => sendText(res, 200, 'ok');

describe('createHttpServer', () => {
  it('answers 431 to request headers beyond 16 KiB', async () => {
    const { logger } = captureLogger('off');
    running = await serve(ok, logger);
    const big = 'a'.repeat(MAX_HEADER_SIZE + 1024);
    const answer = await rawExchange(
      running.port,
      `GET /v2/ HTTP/1.1\r\nHost: localhost\r\nX-Big: ${big}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  });

  it('still accepts headers just under the limit', async () => {
    const { logger } = captureLogger('off');
    running = await serve(ok, logger);
    const response = await fetch(`${running.url}/v2/`, { headers: { 'x-big': 'a'.repeat(12 * 1024) } });
    expect(response.status).toBe(200);
  });

  it('answers 400 to a malformed request and keeps running', async () => {
    const { logger } = captureLogger('off');
    running = await serve(ok, logger);
    const answer = await rawExchange(running.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const response = await fetch(`${running.url}/v2/`);
    expect(response.status).toBe(200);
  });
});
