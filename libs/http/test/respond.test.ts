import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { OciError } from '@angos/oci';
import { afterEach, describe, expect, it } from 'vitest';
import { sendError, sendJson } from '../src/index.js';
import { captureLogger, type Running, serve } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe('sendError', () => {
  it('answers an error on a pipelined request while the previous response is still being written', async () => {
    // The second request's response has no socket yet while the first one streams: it must
    // still be answered, not mistaken for a client that went away.
    const { logger } = captureLogger();
    const big = Buffer.alloc(8 * 1024 * 1024, 1);
    running = await serve((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-length': big.length });
        res.end(big);
        return;
      }
      sendError(res, new OciError('BLOB_UNKNOWN'), logger);
    }, logger);
    const port = running.port;
    const answers = await new Promise<number>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          'GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
        );
      });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        text += chunk;
      });
      socket.on('close', () => resolve((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length));
      socket.on('error', reject);
      setTimeout(() => socket.destroy(new Error('no second answer within 10 s')), 10_000);
    });
    expect(answers).toBe(2);
  });

  it('answers an OciError with its status and the OCI error body', async () => {
    const { logger, records } = captureLogger();
    running = await serve(
      (_req, res) => sendError(res, new OciError('BLOB_UNKNOWN', { digest: 'sha256:x' }), logger),
      logger,
    );
    const response = await fetch(`${running.url}/v2/a/blobs/sha256:x`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: 'sha256:x' } }],
    });
    expect((await records()).filter((r) => r['level'] === 'ERROR')).toEqual([]);
  });

  it('closes the connection after an error that left the request body part-read, so the next request is answered', async () => {
    // A full disk fails an upload after its first chunk: the rest of the body is never read.
    const { logger } = captureLogger();
    running = await serve((req, res) => {
      if (req.method !== 'PUT') {
        sendJson(res, 200, { ok: true });
        return;
      }
      req.once('data', () => {
        req.pause();
        sendError(res, Object.assign(new Error('ENOSPC'), { transient: true }), logger);
      });
    }, logger);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, body?: Buffer) =>
      new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = request(`${running!.url}/v2/`, { method, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        });
        req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} within 10 s`)));
        req.on('error', reject);
        req.end(body);
      });
    try {
      expect(await send('PUT', Buffer.alloc(4 * 1024 * 1024, 1))).toEqual({
        status: 503,
        connection: 'close',
      });
      // One socket at most: without the close, this request would wait behind the unread body.
      expect((await send('GET')).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('answers anything else 500 INTERNAL and logs the stack', async () => {
    const { logger, records } = captureLogger();
    running = await serve((_req, res) => sendError(res, new TypeError('boom'), logger), logger);
    const response = await fetch(`${running.url}/v2/`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      errors: [{ code: 'INTERNAL_ERROR', message: 'internal server error' }],
    });
    const [record] = (await records()).filter((r) => r['level'] === 'ERROR');
    expect(record).toMatchObject({ message: 'request failed', method: 'GET', path: '/v2/' });
    expect((record?.['error'] as { stack?: string } | undefined)?.stack).toContain('TypeError: boom');
  });

  it('answers a backend failure that outlived its retries 503 UNAVAILABLE, and logs it', async () => {
    const { logger, records } = captureLogger();
    // What StorageError and LockTimeoutError carry; this layer depends on neither.
    const failure = Object.assign(new Error('PutObject registry/x timed out after 3 attempts'), {
      transient: true,
    });
    running = await serve((_req, res) => sendError(res, failure, logger), logger);
    const response = await fetch(`${running.url}/v2/`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      errors: [{ code: 'UNAVAILABLE', message: 'service unavailable, try again later' }],
    });
    const [record] = (await records()).filter((r) => r['level'] === 'ERROR');
    expect((record?.['error'] as { message?: string } | undefined)?.message).toContain('timed out');
  });

  it('sends no body to HEAD but keeps the length', async () => {
    const { logger } = captureLogger();
    running = await serve((_req, res) => sendError(res, new OciError('MANIFEST_UNKNOWN'), logger), logger);
    const response = await fetch(`${running.url}/v2/a/manifests/latest`, { method: 'HEAD' });
    expect(response.status).toBe(404);
    expect(Number(response.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await response.text()).toBe('');
  });

  it('cuts the connection when the headers are already sent', async () => {
    const { logger } = captureLogger();
    running = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      sendError(res, new Error('storage failed mid-stream'), logger);
    }, logger);
    const url = running.url;
    const outcome = await new Promise<string>((resolve) => {
      request(`${url}/v2/a/blobs/sha256:x`, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('aborted'));
        res.on('aborted', () => resolve('aborted'));
      })
        .on('error', () => resolve('aborted'))
        .end();
    });
    expect(outcome).toBe('aborted');
  });

  it('turns a throwing or rejecting handler into a 500 and keeps serving', async () => {
    const { logger } = captureLogger('off');
    running = await serve(async (req, res) => {
      if (req.url === '/sync') throw new Error('sync');
      if (req.url === '/async') await Promise.reject(new Error('async'));
      sendJson(res, 200, { ok: true });
    }, logger);
    expect((await fetch(`${running.url}/sync`)).status).toBe(500);
    expect((await fetch(`${running.url}/async`)).status).toBe(500);
    const ok = await fetch(`${running.url}/fine`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
  });
});
