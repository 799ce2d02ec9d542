import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { encodeContext } from '@angos/http';
import { silentLogger } from '@angos/observability';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type RunningService, startService } from '../src/index.js';
import { baseConfig, type Workspace, workspace } from './helpers.js';

/**
 * The gateway→registry-api hop as it is on the wire: a recording proxy sits between `angos gateway`
 * and `angos registry-api`, and the requests it saw are then sent straight to registry-api,
 * unchanged or tampered with, as someone on that network could.
 */

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
const ALICE = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;
const CONFIG = `
[auth.identity.alice]
username = "alice"
password = "${ALICE_HASH}"

[global.access_policy]
default = "deny"
rules = ["has(identity.username) && identity.username == 'alice'"]
`;

interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

interface RecordingProxy {
  readonly server: Server;
  readonly port: number;
  readonly seen: Recorded[];
  /** While true, requests are recorded and answered here, never reaching registry-api. */
  capture: boolean;
}

/** Forwards every request to `target` and remembers what it carried. */
async function recordingProxy(target: number): Promise<RecordingProxy> {
  const seen: Recorded[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } });
    if (proxy.capture) {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const upstream = request(
      { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy: RecordingProxy = {
    server,
    port: (server.address() as AddressInfo).port,
    seen,
    capture: false,
  };
  return proxy;
}

/** Sends a recorded request (or a changed copy) straight to registry-api; its status. */
async function replay(port: number, recorded: Recorded): Promise<number> {
  const headers = Object.fromEntries(
    Object.entries(recorded.headers).filter(([name]) => !['host', 'connection'].includes(name)),
  ) as Record<string, string>;
  const response = await fetch(`http://127.0.0.1:${port}${recorded.url}`, {
    method: recorded.method,
    headers,
  });
  await response.arrayBuffer();
  return response.status;
}

describe('gateway → registry-api hop', () => {
  let ws: Workspace;
  let api: RunningService;
  let gateway: RunningService;
  let proxy: RecordingProxy;
  let gatewayUrl: string;

  beforeAll(async () => {
    ws = await workspace();
    const token = randomBytes(24).toString('hex');
    await writeFile(
      join(ws.dir, 'api.toml'),
      baseConfig(ws.dir, 1, `${CONFIG}\n[services]\ninternal_token = "${token}"\n`),
    );
    api = await startService({
      kind: 'registry-api',
      configPath: join(ws.dir, 'api.toml'),
      listen: '127.0.0.1:0',
      // One thread, this one: the clock the window test fakes is this thread's.
      workers: 1,
      logger: silentLogger,
    });
    proxy = await recordingProxy(api.address.port);
    await writeFile(
      join(ws.dir, 'gateway.toml'),
      baseConfig(
        ws.dir,
        1,
        `${CONFIG}\n[services]\nregistry_api_url = "http://127.0.0.1:${proxy.port}"\ninternal_token = "${token}"\n`,
      ),
    );
    gateway = await startService({
      kind: 'gateway',
      configPath: join(ws.dir, 'gateway.toml'),
      listen: '127.0.0.1:0',
      logger: silentLogger,
    });
    gatewayUrl = `http://127.0.0.1:${gateway.address.port}`;
  });

  afterAll(async () => {
    await gateway?.close();
    proxy?.server.close();
    await api?.close();
    await ws?.remove();
  });

  afterEach(() => {
    vi.useRealTimers();
    proxy.capture = false;
  });

  /** One request through the gateway as alice; what registry-api was sent for it. */
  async function forwarded(path: string, headers: Record<string, string> = {}): Promise<Recorded> {
    const before = proxy.seen.length;
    const response = await fetch(`${gatewayUrl}${path}`, { headers: { authorization: ALICE, ...headers } });
    await response.arrayBuffer();
    expect(response.status).toBe(path === '/v2/' ? 200 : 404);
    expect(proxy.seen).toHaveLength(before + 1);
    return proxy.seen[before] as Recorded;
  }

  it("does not pass the client's credentials or a static token on", async () => {
    const sent = await forwarded('/v2/', {
      cookie: 'session=secret',
      'proxy-authorization': ALICE,
      'x-angos-internal-token': 'client-sent',
    });
    expect(sent.headers.authorization).toBeUndefined();
    expect(sent.headers['proxy-authorization']).toBeUndefined();
    expect(sent.headers.cookie).toBeUndefined();
    expect(sent.headers['x-angos-internal-token']).toBeUndefined();
    expect(sent.headers['x-angos-signature']).toMatch(/^t=\d+,n=[\w-]+,s=[0-9a-f]{64}$/);
  });

  it('refuses a forwarded request replayed within the window (its nonce was used)', async () => {
    const sent = await forwarded('/v2/');
    expect(await replay(api.address.port, sent)).toBe(401);
  });

  it('refuses a captured request sent after the window', async () => {
    // Captured on the way, so registry-api never saw their nonces.
    proxy.capture = true;
    const early = await forwarded('/v2/');
    const late = await forwarded('/v2/');
    proxy.capture = false;
    // Inside the window the capture is as good as the gateway's own request...
    expect(await replay(api.address.port, early)).toBe(200);
    // ...31 s on by registry-api's clock, it has aged out.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 31_000 });
    expect(await replay(api.address.port, late)).toBe(401);
  });

  it('refuses a forwarded request sent to another path, or with another query or method', async () => {
    const sent = await forwarded('/v2/team/app/tags/list?n=1');
    expect(await replay(api.address.port, { ...sent, url: '/v2/other/app/tags/list?n=1' })).toBe(401);
    expect(await replay(api.address.port, { ...sent, url: '/v2/team/app/tags/list?n=2' })).toBe(401);
    expect(await replay(api.address.port, { ...sent, method: 'DELETE' })).toBe(401);
  });

  it('refuses a forwarded request whose context was changed', async () => {
    const sent = await forwarded('/v2/team/app/tags/list');
    const admin = encodeContext({ clientIp: '127.0.0.1', identity: { id: 'admin', username: 'admin' } });
    expect(
      await replay(api.address.port, { ...sent, headers: { ...sent.headers, 'x-angos-context': admin } }),
    ).toBe(401);
  });

  it('refuses a forwarded request without its signature', async () => {
    const sent = await forwarded('/v2/');
    const { 'x-angos-signature': _signature, ...unsigned } = sent.headers;
    expect(await replay(api.address.port, { ...sent, headers: unsigned })).toBe(401);
  });
});
