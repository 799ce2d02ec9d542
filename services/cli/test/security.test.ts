import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { encodeContext } from '@angos/http';
import { silentLogger } from '@angos/observability';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningService, startService } from '../src/index.js';
import { baseConfig, type Workspace, workspace } from './helpers.js';
import { startTestIssuer, strangerKey, type TestIssuer } from './oidc-issuer.js';

/**
 * Attempts to get around authentication and authorization, each of which must fail, against both
 * deployments: `angos server` and `angos gateway` in front of `angos registry-api`.
 */

const HASHES = {
  alice: '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8',
  admin: '$argon2id$v=19$m=64,t=1,p=1$WeMtAjQBC5bJxS96k+yaiw$mNu1xuwuKkLp7rUmmoSVIkNWC6sLweHq0h910pK1NPk',
};
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ALICE = basic('alice', 'alice-secret');
const ADMIN = basic('admin', 'admin-secret');

function securityConfig(issuer: string, slowWebhook: string): string {
  // The suite sends many bad credentials from one address; the per-address limit on failed
  // logins, which would answer 429 to the later probes, has tests of its own (libs/auth, gateway).
  return `
[auth]
failed_auth_limit = 0

[auth.identity.alice]
username = "alice"
password = "${HASHES.alice}"
[auth.identity.admin]
username = "admin"
password = "${HASHES.admin}"

[auth.oidc.ci]
provider = "generic"
issuer = "${issuer}"
required_audience = "angos"
clock_skew_tolerance = 5

[auth.webhook.slow]
url = "${slowWebhook}"
timeout_ms = 200

[global.access_policy]
default = "deny"
rules = [
  "identity.username == 'admin'",
  "has(identity.username) && identity.username == 'alice' && has(request.namespace) && (request.namespace == 'team-evil' || request.namespace.startsWith('team-evil/'))",
  "has(identity.oidc) && request.action in ['get-api-version', 'get-manifest', 'get-blob', 'list-namespaces']",
]

[repository."team".access_policy]
default = "deny"
rules = ["identity.username == 'admin'"]

[repository."guarded"]
authorization_webhook = "slow"
`;
}

interface Deployment {
  readonly url: string;
  readonly port: number;
  /** registry-api's own address in the split deployment. */
  readonly internal?: { readonly port: number; readonly token: string };
  close(): Promise<void>;
}

async function deploy(ws: Workspace, mode: 'server' | 'split', extra: string): Promise<Deployment> {
  if (mode === 'server') {
    await writeFile(join(ws.dir, 'server.toml'), baseConfig(ws.dir, 1, extra));
    const server = await startService({
      kind: 'server',
      configPath: join(ws.dir, 'server.toml'),
      listen: '127.0.0.1:0',
      logger: silentLogger,
    });
    return {
      url: `http://127.0.0.1:${server.address.port}`,
      port: server.address.port,
      close: () => server.close(),
    };
  }
  const token = randomBytes(24).toString('hex');
  await writeFile(
    join(ws.dir, 'api.toml'),
    baseConfig(ws.dir, 1, `${extra}\n[services]\ninternal_token = "${token}"\n`),
  );
  const api = await startService({
    kind: 'registry-api',
    configPath: join(ws.dir, 'api.toml'),
    listen: '127.0.0.1:0',
    logger: silentLogger,
  });
  await writeFile(
    join(ws.dir, 'gateway.toml'),
    baseConfig(
      ws.dir,
      1,
      `${extra}\n[services]\nregistry_api_url = "http://127.0.0.1:${api.address.port}"\ninternal_token = "${token}"\n`,
    ),
  );
  let gateway: RunningService;
  try {
    gateway = await startService({
      kind: 'gateway',
      configPath: join(ws.dir, 'gateway.toml'),
      listen: '127.0.0.1:0',
      logger: silentLogger,
    });
  } catch (error) {
    await api.close();
    throw error;
  }
  return {
    url: `http://127.0.0.1:${gateway.address.port}`,
    port: gateway.address.port,
    internal: { port: api.address.port, token },
    async close() {
      await gateway.close();
      await api.close();
    },
  };
}

/** Sends bytes exactly as written (fetch would normalise the path and the method). */
async function raw(port: number, head: string): Promise<number> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`${head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += (chunk as Buffer).toString();
  return Number(text.split(' ')[1]);
}

async function codeOf(response: Response): Promise<string | undefined> {
  const body = (await response.json().catch(() => ({}))) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let ws: Workspace;
let issuer: TestIssuer;
let slowWebhook: Server;
let slowUrl: string;
beforeAll(async () => {
  ws = await workspace();
  issuer = await startTestIssuer();
  // Accepts the request and never answers: the webhook times out.
  slowWebhook = createServer(() => undefined);
  slowWebhook.listen(0, '127.0.0.1');
  await once(slowWebhook, 'listening');
  slowUrl = `http://127.0.0.1:${(slowWebhook.address() as AddressInfo).port}/authorize`;
});
afterAll(async () => {
  await issuer.close();
  slowWebhook.closeAllConnections();
  await new Promise<void>((resolve) => slowWebhook.close(() => resolve()));
  await ws.remove();
});

describe.each(['server', 'split'] as const)('bypass attempts against %s', (mode) => {
  let registry: Deployment;
  const config = Buffer.from('{}');
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [],
    }),
  );

  beforeAll(async () => {
    registry = await deploy(ws, mode, securityConfig(issuer.issuer, slowUrl));
    // The protected content: pushed by the admin.
    const blob = await fetch(`${registry.url}/v2/team/app/blobs/uploads/?digest=${configDigest}`, {
      method: 'POST',
      headers: { authorization: ADMIN, 'content-type': 'application/octet-stream' },
      body: config,
    });
    expect(blob.status).toBe(201);
    const put = await fetch(`${registry.url}/v2/team/app/manifests/v1`, {
      method: 'PUT',
      headers: { authorization: ADMIN, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);
  });
  afterAll(async () => {
    await registry.close();
  });

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${registry.url}${path}`, { method, headers });

  it('the admin reads the protected manifest; alice cannot (baseline)', async () => {
    expect((await get('/v2/team/app/manifests/v1', { authorization: ADMIN })).status).toBe(200);
    const denied = await get('/v2/team/app/manifests/v1', { authorization: ALICE });
    expect(denied.status).toBe(403);
    expect(await codeOf(denied)).toBe('DENIED');
    expect((await get('/v2/team/app/manifests/v1')).status).toBe(401);
  });

  it.each([
    ['an encoded slash', '/v2/team%2fapp/manifests/v1'],
    ['an encoded slash after an allowed prefix', '/v2/team-evil%2f..%2fteam/app/manifests/v1'],
    ['a double slash before the name', '/v2//team/app/manifests/v1'],
    ['a double slash inside the name', '/v2/team//app/manifests/v1'],
    ['an upper-case name', '/v2/TEAM/app/manifests/v1'],
    ['a mixed-case name', '/v2/Team/app/manifests/v1'],
  ])('refuses %s with NAME_INVALID, never reaching the manifest', async (_name, path) => {
    const response = await get(path, { authorization: ALICE });
    expect(response.status).toBe(400);
    expect(await codeOf(response)).toBe('NAME_INVALID');
  });

  // Sent raw: URL parsers in clients (fetch included) resolve `%2e%2e` and `..` before sending.
  it.each([
    ['encoded dot segments', 'GET /v2/team-evil/%2e%2e/team/app/manifests/v1 HTTP/1.1', 400],
    ['encoded upper-case dot segments', 'GET /v2/team-evil/%2E%2E/team/app/manifests/v1 HTTP/1.1', 400],
    ['literal dot segments', 'GET /v2/team-evil/../team/app/manifests/v1 HTTP/1.1', 400],
    ['a dot segment', 'GET /v2/team-evil/./app/manifests/v1 HTTP/1.1', 400],
    ['an upper-case API prefix', 'GET /V2/team/app/manifests/v1 HTTP/1.1', 404],
    ['a lower-case method', 'get /v2/team/app/manifests/v1 HTTP/1.1', 400],
  ])('refuses %s sent raw', async (_name, head, status) => {
    expect(await raw(registry.port, `${head}\r\nAuthorization: ${ALICE}`)).toBe(status);
  });

  it('applies the same decision to HEAD as to GET', async () => {
    expect((await get('/v2/team/app/manifests/v1', { authorization: ALICE }, 'HEAD')).status).toBe(403);
    expect((await get('/v2/team/app/manifests/v1', {}, 'HEAD')).status).toBe(401);
    expect((await get(`/v2/team/app/blobs/${configDigest}`, { authorization: ALICE }, 'HEAD')).status).toBe(
      403,
    );
    expect((await get('/v2/team/app/manifests/v1', { authorization: ADMIN }, 'HEAD')).status).toBe(200);
  });

  it('keeps team and team-evil apart (a namespace sharing a prefix)', async () => {
    // alice may use team-evil: allowed, and nothing is there.
    expect((await get('/v2/team-evil/app/manifests/v1', { authorization: ALICE })).status).toBe(404);
    // team's policy is not team-evil's, and team-evil's grant is not team's.
    expect((await get('/v2/team/manifests/v1', { authorization: ALICE })).status).toBe(403);
    expect((await get('/v2/team-evilx/manifests/v1', { authorization: ALICE })).status).toBe(403);
    // Mounting team's blob into team-evil: the source is not readable, so no mount (202, a plain upload).
    const mount = await fetch(
      `${registry.url}/v2/team-evil/app/blobs/uploads/?mount=${configDigest}&from=team/app`,
      { method: 'POST', headers: { authorization: ALICE } },
    );
    expect(mount.status).toBe(202);
    // And the blob cannot be read through team-evil either.
    expect((await get(`/v2/team-evil/app/blobs/${configDigest}`, { authorization: ALICE })).status).toBe(404);
  });

  it('ignores spoofed internal trust headers sent to the public port', async () => {
    const forged = encodeContext({ clientIp: '127.0.0.1', identity: { id: 'admin', username: 'admin' } });
    const headers = {
      'x-angos-context': forged,
      'x-angos-internal-token': registry.internal?.token ?? 'guess',
      'x-angos-signature': 't=1,n=forged-nonce-000000,s=' + '0'.repeat(64),
      'x-registry-username': 'admin',
      'x-forwarded-for': '10.0.0.1',
    };
    expect((await get('/v2/team/app/manifests/v1', headers)).status).toBe(401);
    expect((await get('/v2/team/app/manifests/v1', { ...headers, authorization: ALICE })).status).toBe(403);
  });

  it.runIf(mode === 'split')('refuses requests that go around the gateway to registry-api', async () => {
    const internal = `http://127.0.0.1:${registry.internal?.port}`;
    const forged = encodeContext({ clientIp: '127.0.0.1', identity: { id: 'admin', username: 'admin' } });
    const attempts: Record<string, string>[] = [
      {},
      { authorization: ADMIN },
      { 'x-angos-context': forged },
      { 'x-angos-context': forged, 'x-angos-internal-token': 'not-the-token' },
      // The token itself no longer opens registry-api: only a signature made with it does.
      { 'x-angos-context': forged, 'x-angos-internal-token': registry.internal?.token ?? '' },
      {
        'x-angos-context': forged,
        'x-angos-signature': `t=${Date.now()},n=forged-nonce-000000,s=${'0'.repeat(64)}`,
      },
    ];
    for (const headers of attempts) {
      const response = await fetch(`${internal}/v2/team/app/manifests/v1`, { headers });
      expect(response.status).toBe(401);
    }
  });

  it('refuses bad OIDC tokens and accepts a good one', async () => {
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, string]> = [
      ['expired', issuer.token({ aud: 'angos', exp: now - 60 })],
      ['not valid yet', issuer.token({ aud: 'angos', nbf: now + 600 })],
      ['unsigned (alg none)', issuer.unsigned({ aud: 'angos' })],
      ['HS256 keyed with the public key', issuer.hmacWithPublicKey({ aud: 'angos' })],
      [
        'signed by another key under the published kid',
        issuer.forge(
          { alg: 'RS256', kid: issuer.kid },
          { iss: issuer.issuer, aud: 'angos', exp: now + 600 },
          strangerKey(),
        ),
      ],
      ['for another audience', issuer.token({ aud: 'someone-else' })],
      ['from another issuer', issuer.token({ aud: 'angos', iss: 'https://evil.example' })],
      [
        'with a tampered payload',
        issuer.token({ aud: 'angos' }).replace(/\.([^.]+)\./, (_m, p: string) => `.${p.slice(0, -2)}AA.`),
      ],
    ];
    for (const [name, token] of cases) {
      const response = await get('/v2/team-evil/x/manifests/v1', bearer(token));
      expect(response.status, name).toBe(401);
      expect(
        (await get('/v2/', { authorization: basic('ci', token) })).status,
        `${name} via docker login`,
      ).toBe(401);
    }
    const good = issuer.token({ aud: 'angos' });
    expect((await get('/v2/team-evil/x/manifests/v1', bearer(good))).status).toBe(404);
    expect((await get('/v2/', { authorization: basic('ci', good) })).status).toBe(200);
    // A valid token does not grant more than the rules do.
    expect((await get('/v2/team-evil/x/manifests/v1', bearer(good), 'DELETE')).status).toBe(403);
  });

  it('lists namespaces for an OIDC caller whose claims fill a whole token', async () => {
    // The listing is decided by the caller's claims, which the gateway forwards to registry-api.
    const groups: string[] = [];
    let token = issuer.token({ aud: 'angos', groups });
    while (token.length < 15_000) {
      for (let i = 0; i < 20; i += 1)
        groups.push(`team-${String(groups.length).padStart(5, '0')}-developers`);
      token = issuer.token({ aud: 'angos', groups });
    }
    const response = await get('/v2/_ext/_namespaces', { authorization: `Bearer ${token}` });
    expect(response.status).toBe(200);
  });

  it('refuses wrong passwords and unknown users', async () => {
    expect(
      (await get('/v2/team-evil/x/manifests/v1', { authorization: basic('alice', 'wrong') })).status,
    ).toBe(401);
    expect((await get('/v2/team-evil/x/manifests/v1', { authorization: basic('mallory', 'x') })).status).toBe(
      401,
    );
    expect((await get('/v2/team-evil/x/manifests/v1', { authorization: basic('alice', '') })).status).toBe(
      401,
    );
  });

  it('fails closed when the authorization webhook times out', async () => {
    const started = Date.now();
    const admin = await get('/v2/guarded/app/manifests/v1', { authorization: ADMIN });
    expect(admin.status).toBe(403);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await get('/v2/guarded/app/manifests/v1')).status).toBe(401);
  });
});
