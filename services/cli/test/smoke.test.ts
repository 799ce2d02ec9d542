import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { baseConfig, freePort, startAngos, useWorkspace, waitForHttp } from './helpers.js';

const ws = useWorkspace();

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';

describe('angos server (spawned)', () => {
  it('answers GET /v2/ 200 and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    await ws().writeConfig(baseConfig(ws().dir, port, ALLOW));
    const server = startAngos(['-c', ws().configPath, 'server']);
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/healthz`, server);

    const response = await fetch(`${url}/v2/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain(
      'http_requests_total{method="GET",route="get-api-version",status="200"} 1',
    );
    expect(server.output()).toMatch(/"message":"listening".*"port":\d+/);

    const started = Date.now();
    expect(await server.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('listens where --listen says, over the configuration', async () => {
    const port = await freePort();
    await ws().writeConfig(baseConfig(ws().dir, 1, ALLOW));
    const server = startAngos(['-c', ws().configPath, 'server', '--listen', `127.0.0.1:${port}`]);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, server);
    expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it('asks anonymous clients to log in when the policy denies', async () => {
    const port = await freePort();
    await ws().writeConfig(baseConfig(ws().dir, port));
    const server = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, server);
    const response = await fetch(`http://127.0.0.1:${port}/v2/`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="Angos"');
    expect(await server.stop()).toBe(0);
  });
});

describe('angos gateway + angos registry-api (spawned)', () => {
  it('serves /v2/ through the gateway; registry-api refuses requests the gateway did not sign', async () => {
    const gatewayPort = await freePort();
    const apiPort = await freePort();
    const token = randomBytes(24).toString('hex');
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        gatewayPort,
        `${ALLOW}\n[services]\nregistry_api_url = "http://127.0.0.1:${apiPort}"\ninternal_token = "${token}"\n`,
      ),
    );
    const api = startAngos(['-c', ws().configPath, 'registry-api', '--listen', `127.0.0.1:${apiPort}`]);
    const gateway = startAngos(['-c', ws().configPath, 'gateway']);
    await waitForHttp(`http://127.0.0.1:${apiPort}/healthz`, api);
    await waitForHttp(`http://127.0.0.1:${gatewayPort}/healthz`, gateway);

    const viaGateway = await fetch(`http://127.0.0.1:${gatewayPort}/v2/`);
    expect(viaGateway.status).toBe(200);
    expect(viaGateway.headers.get('docker-distribution-api-version')).toBe('registry/2.0');

    const direct = await fetch(`http://127.0.0.1:${apiPort}/v2/`);
    expect(direct.status).toBe(401);
    expect(((await direct.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAUTHORIZED');

    const forged = await fetch(`http://127.0.0.1:${apiPort}/v2/`, {
      headers: { 'x-angos-signature': `t=${Date.now()},n=forged-nonce-000000,s=${'0'.repeat(64)}` },
    });
    expect(forged.status).toBe(401);

    // A forged signature sent to the gateway is stripped, and the gateway signs the request itself.
    const throughGateway = await fetch(`http://127.0.0.1:${gatewayPort}/v2/`, {
      headers: { 'x-angos-signature': 'forged' },
    });
    expect(throughGateway.status).toBe(200);

    // The jobs API is registry-api's too: the gateway routes /v2/_ext/jobs/ to it.
    const jobs = await fetch(`http://127.0.0.1:${gatewayPort}/v2/_ext/jobs/failed?queue=replication`);
    expect(jobs.status).toBe(200);
    expect(await jobs.json()).toEqual({ queue: 'replication', jobs: [] });

    expect((await fetch(`http://127.0.0.1:${apiPort}/readyz`)).status).toBe(200);
    expect(await gateway.stop()).toBe(0);
    expect(await api.stop()).toBe(0);
  });

  it('answers 502 from the gateway when registry-api is down', async () => {
    const gatewayPort = await freePort();
    const apiPort = await freePort();
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        gatewayPort,
        `${ALLOW}\n[services]\nregistry_api_url = "http://127.0.0.1:${apiPort}"\ninternal_token = "${'t'.repeat(32)}"\n`,
      ),
    );
    const gateway = startAngos(['-c', ws().configPath, 'gateway']);
    await waitForHttp(`http://127.0.0.1:${gatewayPort}/healthz`, gateway);
    const response = await fetch(`http://127.0.0.1:${gatewayPort}/v2/`, {
      signal: AbortSignal.timeout(5000),
    });
    expect(response.status).toBe(502);
    expect(await gateway.stop()).toBe(0);
  });
});
