import { randomBytes } from 'node:crypto';
import { hash } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import {
  baseConfig,
  freePort,
  type LongRunning,
  logRecords,
  startAngos,
  useWorkspace,
  waitForHttp,
  waitForRecord,
} from './helpers.js';

const ws = useWorkspace();

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';
const MISSING_BLOB = `/v2/team/app/blobs/sha256:${'0'.repeat(64)}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const accessLines = (process: LongRunning) =>
  logRecords(process.output()).filter((record) => record['target'] === 'angos::access');

async function startServer(env: NodeJS.ProcessEnv = {}): Promise<{ server: LongRunning; url: string }> {
  const port = await freePort();
  await ws().writeConfig(baseConfig(ws().dir, port, ALLOW));
  const server = startAngos(['-c', ws().configPath, 'server'], env);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, server);
  return { server, url };
}

describe('access log of angos server (spawned)', () => {
  it('logs one info line per request on angos::access and echoes the request id', async () => {
    const { server, url } = await startServer();
    const response = await fetch(`${url}${MISSING_BLOB}`, { headers: { 'x-request-id': 'client-id-1' } });
    await response.arrayBuffer();
    expect(response.status).toBe(404);
    expect(response.headers.get('x-request-id')).toBe('client-id-1');

    const line = await waitForRecord(server, (record) => record['request_id'] === 'client-id-1');
    expect(line).toMatchObject({
      level: 'INFO',
      target: 'angos::access',
      message: 'request',
      service: 'server',
      method: 'GET',
      path: MISSING_BLOB,
      status: 404,
      auth: 'anonymous',
      identity: 'anonymous',
      client_ip: '127.0.0.1',
    });
    expect(line['bytes_in']).toBeGreaterThan(MISSING_BLOB.length);
    expect(line['bytes_out']).toBeGreaterThan(Number(response.headers.get('content-length')));
    expect(line['duration_ms']).toBeGreaterThanOrEqual(0);

    const fresh = await fetch(`${url}/v2/`);
    await fresh.arrayBuffer();
    const id = fresh.headers.get('x-request-id');
    expect(id).toMatch(UUID);
    await waitForRecord(server, (record) => record['request_id'] === id && record['path'] === '/v2/');
    expect(await server.stop()).toBe(0);
  });

  it('is switched off with RUST_LOG=info,angos::access=off; the request id stays', async () => {
    const { server, url } = await startServer({ RUST_LOG: 'info,angos::access=off' });
    const response = await fetch(`${url}/v2/`);
    await response.arrayBuffer();
    expect(response.headers.get('x-request-id')).toMatch(UUID);
    expect(await server.stop()).toBe(0);
    expect(server.output()).toContain('"message":"stopped"');
    expect(accessLines(server)).toEqual([]);
  });
});

describe('access log of angos gateway + angos registry-api (spawned)', () => {
  it('logs the same request id and identity on both, and forwards a generated id', async () => {
    const gatewayPort = await freePort();
    const apiPort = await freePort();
    const token = randomBytes(24).toString('hex');
    const password = await hash('alice-password');
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        gatewayPort,
        [
          '[global.access_policy]',
          'default = "deny"',
          `rules = ["has(identity.username) && identity.username == 'alice'"]`,
          '',
          '[auth.identity.alice]',
          'username = "alice"',
          `password = ${JSON.stringify(password)}`,
          '',
          '[services]',
          `registry_api_url = "http://127.0.0.1:${apiPort}"`,
          `internal_token = "${token}"`,
        ].join('\n'),
      ),
    );
    const api = startAngos(['-c', ws().configPath, 'registry-api', '--listen', `127.0.0.1:${apiPort}`]);
    const gateway = startAngos(['-c', ws().configPath, 'gateway']);
    const url = `http://127.0.0.1:${gatewayPort}`;
    await waitForHttp(`http://127.0.0.1:${apiPort}/healthz`, api);
    await waitForHttp(`${url}/healthz`, gateway);

    const basic = `Basic ${Buffer.from('alice:alice-password').toString('base64')}`;
    const sent = await fetch(`${url}${MISSING_BLOB}`, {
      headers: { authorization: basic, 'x-request-id': 'split-1' },
    });
    await sent.arrayBuffer();
    expect(sent.status).toBe(404);
    expect(sent.headers.get('x-request-id')).toBe('split-1');
    const expected = {
      request_id: 'split-1',
      path: MISSING_BLOB,
      status: 404,
      auth: 'basic',
      identity: 'alice',
    };
    expect(await waitForRecord(gateway, (record) => record['request_id'] === 'split-1')).toMatchObject({
      ...expected,
      target: 'angos::access',
      service: 'gateway',
    });
    expect(await waitForRecord(api, (record) => record['request_id'] === 'split-1')).toMatchObject({
      ...expected,
      target: 'angos::access',
      service: 'registry-api',
      client_ip: '127.0.0.1',
    });

    const generated = await fetch(`${url}${MISSING_BLOB}`, { headers: { authorization: basic } });
    await generated.arrayBuffer();
    const id = generated.headers.get('x-request-id');
    expect(id).toMatch(UUID);
    await waitForRecord(gateway, (record) => record['request_id'] === id);
    await waitForRecord(api, (record) => record['request_id'] === id);

    // Refused at the gateway: logged there with who asked, never reaching registry-api.
    const refused = await fetch(`${url}${MISSING_BLOB}`);
    await refused.arrayBuffer();
    expect(refused.status).toBe(401);
    const refusedId = refused.headers.get('x-request-id');
    expect(await waitForRecord(gateway, (record) => record['request_id'] === refusedId)).toMatchObject({
      status: 401,
      service: 'gateway',
      auth: 'anonymous',
      identity: 'anonymous',
    });
    expect(accessLines(api).some((record) => record['request_id'] === refusedId)).toBe(false);

    expect(await gateway.stop()).toBe(0);
    expect(await api.stop()).toBe(0);
  });
});
