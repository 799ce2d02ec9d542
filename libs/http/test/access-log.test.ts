import { request } from 'node:http';
import { createMetrics, type Logger } from '@angos/observability';
import { afterEach, describe, expect, it } from 'vitest';
import {
  authMethod,
  type Handler,
  identityName,
  REQUEST_ID_HEADER,
  sendText,
  setContext,
  withObservability,
} from '../src/index.js';
import { captureLogger, type Running, serve } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(handler: Handler, logger: Logger): Promise<Running> {
  const metrics = createMetrics({ defaultMetrics: false });
  running = await serve(withObservability(handler, { metrics, logger, service: 'test' }), logger);
  return running;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('access log', () => {
  it('logs one info line per request on angos::access, with the fields operators need', async () => {
    const { logger, records } = captureLogger('info');
    const { url } = await start((req, res) => {
      req.resume();
      req.on('end', () => sendText(res, 201, 'created'));
    }, logger);
    const response = await fetch(`${url}/v2/a/blobs/uploads/?digest=sha256:0`, {
      method: 'POST',
      body: 'x'.repeat(1000),
    });
    expect(await response.text()).toBe('created');

    const access = (await records()).filter((record) => record['target'] === 'angos::access');
    expect(access).toHaveLength(1);
    const line = access[0] ?? {};
    expect(line).toMatchObject({
      level: 'INFO',
      message: 'request',
      service: 'test',
      method: 'POST',
      path: '/v2/a/blobs/uploads/',
      status: 201,
      auth: 'anonymous',
      identity: 'anonymous',
      client_ip: '127.0.0.1',
      request_id: response.headers.get(REQUEST_ID_HEADER),
    });
    // Headers count too: more than the body in, more than the 7-byte body out.
    expect(line['bytes_in']).toBeGreaterThan(1000);
    expect(line['bytes_in']).toBeLessThan(1500);
    expect(line['bytes_out']).toBeGreaterThan(7);
    expect(line['bytes_out']).toBeLessThan(500);
    expect(typeof line['duration_ms']).toBe('number');
  });

  it('counts each request of a keep-alive connection on its own', async () => {
    const { logger, records } = captureLogger('info');
    const { port } = await start((_req, res) => sendText(res, 200, 'y'.repeat(5000)), logger);
    const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 3; i += 1) {
      await new Promise<void>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/v2/', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
    }
    agent.destroy();
    const access = (await records()).filter((record) => record['target'] === 'angos::access');
    expect(access).toHaveLength(3);
    for (const line of access) {
      expect(line['bytes_out']).toBeGreaterThan(5000);
      expect(line['bytes_out']).toBeLessThan(5400);
      expect(line['bytes_in']).toBeLessThan(200);
    }
  });

  it('names the identity the gateway attached', async () => {
    const { logger, records } = captureLogger('info');
    const { url } = await start((req, res) => {
      setContext(req, { clientIp: '10.0.0.7', identity: { id: 'alice', username: 'alice' } });
      sendText(res, 200, 'ok');
    }, logger);
    await (await fetch(`${url}/v2/`)).text();
    const access = (await records()).filter((record) => record['target'] === 'angos::access');
    expect(access[0]).toMatchObject({ auth: 'basic', identity: 'alice', client_ip: '10.0.0.7' });
  });

  it('is switched off by RUST_LOG for its target, and by a level above info', async () => {
    for (const filter of ['info,angos::access=off', 'warn']) {
      const { logger, records } = captureLogger(filter);
      const { url } = await start((_req, res) => sendText(res, 200, 'ok'), logger);
      const response = await fetch(`${url}/v2/`);
      await response.text();
      // The request id is still echoed: it is not part of the log.
      expect(response.headers.get(REQUEST_ID_HEADER)).toMatch(UUID);
      expect((await records()).filter((record) => record['target'] === 'angos::access')).toEqual([]);
      await running?.close();
      running = undefined;
    }
  });
});

describe('request id', () => {
  it('reuses a sane id the client sent, and hands it to the handler', async () => {
    const { logger, records } = captureLogger('info');
    let seen: string | string[] | undefined;
    const { url } = await start((req, res) => {
      seen = req.headers[REQUEST_ID_HEADER];
      sendText(res, 200, 'ok');
    }, logger);
    const response = await fetch(`${url}/v2/`, { headers: { 'x-request-id': 'trace-4bf92f35:00f067aa' } });
    await response.text();
    expect(response.headers.get(REQUEST_ID_HEADER)).toBe('trace-4bf92f35:00f067aa');
    expect(seen).toBe('trace-4bf92f35:00f067aa');
    const access = (await records()).filter((record) => record['target'] === 'angos::access');
    expect(access[0]?.['request_id']).toBe('trace-4bf92f35:00f067aa');
  });

  it.each([
    ['spaces', 'two words'],
    ['quotes', 'a"b'],
    ['too long', 'a'.repeat(129)],
    ['empty', ''],
  ])(
    'replaces one with %s by a new id, in the request too (so the gateway forwards it)',
    async (_what, sent) => {
      const { logger } = captureLogger('off');
      let seen: string | string[] | undefined;
      const { url } = await start((req, res) => {
        seen = req.headers[REQUEST_ID_HEADER];
        sendText(res, 200, 'ok');
      }, logger);
      const response = await fetch(`${url}/v2/`, { headers: { 'x-request-id': sent } });
      await response.text();
      const echoed = response.headers.get(REQUEST_ID_HEADER);
      expect(echoed).toMatch(UUID);
      expect(seen).toBe(echoed);
    },
  );

  it('gives every request its own id', async () => {
    const { logger } = captureLogger('off');
    const { url } = await start((_req, res) => sendText(res, 200, 'ok'), logger);
    const ids = new Set<string | null>();
    for (let i = 0; i < 5; i += 1) {
      const response = await fetch(`${url}/v2/`);
      await response.text();
      ids.add(response.headers.get(REQUEST_ID_HEADER));
    }
    expect(ids.size).toBe(5);
  });
});

describe('authMethod and identityName', () => {
  it.each([
    [undefined, 'anonymous', 'anonymous'],
    [{ id: 'alice', username: 'alice' }, 'basic', 'alice'],
    [{ oidc: { providerName: 'github', subject: 'repo:org/app:ref:main' } }, 'oidc', 'repo:org/app:ref:main'],
    [{ oidc: { providerName: 'github' } }, 'oidc', 'github'],
    [{ certificate: { commonNames: ['ci-bot'], organizations: ['ops'] } }, 'mtls', 'ci-bot'],
    [{ certificate: { commonNames: [], organizations: ['ops'] } }, 'anonymous', 'anonymous'],
  ])('%j → %s %s', (identity, auth, name) => {
    expect(authMethod(identity)).toBe(auth);
    expect(identityName(identity)).toBe(name);
  });
});
