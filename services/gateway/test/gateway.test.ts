import { getContext, sendJson } from '@angos/http';
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../src/index.js';
import { type Running, startGateway } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

/** An in-process upstream that reports what it received. */
const echo = {
  kind: 'in-process' as const,
  handler: (req: Parameters<typeof getContext>[0], res: Parameters<typeof sendJson>[0]) =>
    sendJson(res, 200, { method: req.method, url: req.url, headers: req.headers, context: getContext(req) }),
};

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  context: { clientIp: string; mountAllowedFrom?: string[] };
}

describe('buildGateway with an in-process upstream', () => {
  it('forwards allowed /v2 requests with the request context', async () => {
    running = await startGateway(echo);
    const response = await fetch(`${running.url}/v2/team/app/manifests/latest`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Echo;
    expect(body.url).toBe('/v2/team/app/manifests/latest');
    expect(body.context.clientIp).toMatch(/127\.0\.0\.1/);
    expect(body.context.mountAllowedFrom).toBeUndefined();
  });

  it('strips x-angos-* headers clients send', async () => {
    running = await startGateway(echo);
    const response = await fetch(`${running.url}/v2/`, {
      headers: { 'x-angos-internal-token': 'forged', 'X-Angos-Context': 'forged', 'x-other': 'kept' },
    });
    const body = (await response.json()) as Echo;
    expect(Object.keys(body.headers).filter((name) => name.startsWith('x-angos-'))).toEqual([]);
    expect(body.headers['x-other']).toBe('kept');
  });

  it('answers a denied anonymous request 401 with a Basic challenge', async () => {
    running = await startGateway(echo, { global: { access_policy: { default: 'deny' } } });
    const response = await fetch(`${running.url}/v2/`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="Angos"');
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await response.json()).toEqual({
      errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }],
    });
  });

  it('denies everything when no access policy is configured', async () => {
    running = await startGateway(echo, {});
    expect((await fetch(`${running.url}/v2/a/blobs/sha256:abc`)).status).toBe(401);
    expect((await fetch(`${running.url}/v2/_catalog`)).status).toBe(401);
    expect((await fetch(`${running.url}/v2/not/a/route/at/all`)).status).toBe(401);
  });

  it('applies repository policies by namespace prefix', async () => {
    const config: PolicyConfig = {
      global: { access_policy: { default: 'deny' } },
      repository: { team: { access_policy: { default: 'allow' } } },
    };
    running = await startGateway(echo, config);
    expect((await fetch(`${running.url}/v2/team/manifests/v1`)).status).toBe(200);
    expect((await fetch(`${running.url}/v2/team/app/manifests/v1`)).status).toBe(200);
    expect((await fetch(`${running.url}/v2/teamx/manifests/v1`)).status).toBe(401);
    expect((await fetch(`${running.url}/v2/`)).status).toBe(401);
  });

  it('reads the configuration per request (hot reload)', async () => {
    let config: PolicyConfig = { global: { access_policy: { default: 'deny' } } };
    running = await startGateway(echo, () => config);
    expect((await fetch(`${running.url}/v2/`)).status).toBe(401);
    config = { global: { access_policy: { default: 'allow' } } };
    expect((await fetch(`${running.url}/v2/`)).status).toBe(200);
  });

  it.each([
    ['an allowed source', 'public/base', ['public/base']],
    ['a denied source', 'private/base', undefined],
  ])('evaluates get-blob on the mount source: %s', async (_name, from, expected) => {
    const config: PolicyConfig = {
      global: { access_policy: { default: 'allow' } },
      repository: { private: { access_policy: { default: 'deny' } } },
    };
    running = await startGateway(echo, config);
    const response = await fetch(`${running.url}/v2/app/blobs/uploads/?mount=sha256:abc&from=${from}`, {
      method: 'POST',
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Echo).context.mountAllowedFrom).toEqual(expected);
  });

  it('refuses the mount target itself when it is denied', async () => {
    const config: PolicyConfig = {
      global: { access_policy: { default: 'allow' } },
      repository: { private: { access_policy: { default: 'deny' } } },
    };
    running = await startGateway(echo, config);
    const response = await fetch(`${running.url}/v2/private/x/blobs/uploads/?mount=sha256:abc&from=public`, {
      method: 'POST',
    });
    expect(response.status).toBe(401);
  });

  it('serves health and metrics itself, whatever the policy', async () => {
    running = await startGateway(
      echo,
      { global: { access_policy: { default: 'deny' } } },
      { ready: () => false },
    );
    expect(await (await fetch(`${running.url}/healthz`)).text()).toBe('ok\n');
    expect((await fetch(`${running.url}/readyz`)).status).toBe(503);
    const metrics = await fetch(`${running.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('http_requests_total');
  });

  it('answers 404 outside /v2', async () => {
    running = await startGateway(echo);
    const response = await fetch(`${running.url}/index.html`);
    expect(response.status).toBe(404);
    expect(((await response.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNSUPPORTED');
  });
});
