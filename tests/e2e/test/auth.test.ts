import { createHmac, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AngosInstance,
  containersEnv,
  mkOci,
  OciLayout,
  type RunResult,
  run,
  runOk,
  startAngos,
  startDockerd,
} from '@angos/test-support';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { MODES, skipUnlessRoot, skipWithoutClients } from './fixture.js';
import { ADMIN_HASH, ALICE_HASH } from './identities.js';

/**
 * Real clients logging in the way they log in to any registry: skopeo `--creds`, podman login,
 * with basic auth identities and with an OIDC token used as a password (`<provider>:<token>`, as
 * CI jobs do), against `angos server` and the split gateway + registry-api.
 */

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** An OIDC issuer on 127.0.0.1: discovery, a JWKS with an RS256 key made for this run, a signer. */
async function startIssuer() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `e2e-${randomUUID().slice(0, 8)}`;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  let issuer = '';
  const server: Server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration')
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    else if (req.url === '/jwks') res.end(JSON.stringify({ keys: [jwk] }));
    else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const encode = (header: object, claims: object) =>
    `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const claims = (extra: object) => ({
    iss: issuer,
    sub: 'repo:org/app:ref:refs/heads/main',
    aud: 'angos',
    repository: 'org/app',
    exp: Math.floor(Date.now() / 1000) + 600,
    ...extra,
  });
  return {
    issuer,
    token(extra: object = {}) {
      const input = encode({ alg: 'RS256', kid, typ: 'JWT' }, claims(extra));
      return `${input}.${b64url(sign('sha256', Buffer.from(input), privateKey))}`;
    },
    hmacForgery() {
      const input = encode({ alg: 'HS256', kid, typ: 'JWT' }, claims({}));
      const secret = publicKey.export({ format: 'pem', type: 'spki' });
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function config(issuer: string): string {
  return `
[auth.identity.admin]
username = "admin"
password = "${ADMIN_HASH}"

[auth.identity.alice]
username = "alice"
password = "${ALICE_HASH}"

[auth.oidc.ci]
provider = "generic"
issuer = "${issuer}"
required_audience = "angos"

[global.access_policy]
default = "deny"
rules = [
  "identity.username == 'admin'",
  "has(identity.username) && identity.username == 'alice' && request.action in ['get-api-version', 'get-manifest', 'get-blob']",
  "has(identity.oidc) && identity.oidc.claims['repository'] == 'org/app' && (request.action == 'get-api-version' || (has(request.namespace) && request.namespace.startsWith('ci/')))",
]
`;
}

const failed = (result: RunResult) => result.code !== 0 && !result.timedOut;

describe.skipIf(skipWithoutClients('skopeo', 'podman')).each(MODES)('logging in to angos %s', (mode) => {
  let angos: AngosInstance;
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let image: OciLayout;
  let counter = 0;
  const path = (name: string) => join(work, `${++counter}-${name}`);
  const ref = (repo: string) => `docker://${angos.host}/${repo}:v1`;
  const attempt = (cmd: string, args: string[], input?: string) =>
    run(cmd, args, { env, timeoutMs: 45_000, ...(input === undefined ? {} : { input }) });
  const ok = (cmd: string, args: string[], input?: string) =>
    runOk(cmd, args, { env, timeoutMs: 45_000, ...(input === undefined ? {} : { input }) });
  const push = (creds: string | undefined, repo: string) =>
    attempt('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      ...(creds === undefined ? [] : ['--dest-creds', creds]),
      `oci:${image.dir}:v1`,
      ref(repo),
    ]);
  const pull = (creds: string | undefined, repo: string) =>
    attempt('skopeo', [
      'copy',
      '--src-tls-verify=false',
      ...(creds === undefined ? [] : ['--src-creds', creds]),
      ref(repo),
      `oci:${path('out')}:v1`,
    ]);

  beforeAll(async () => {
    work = join(tmpdir(), `angos-e2e-auth-${mode}-${randomUUID().slice(0, 8)}`);
    await mkdir(work);
    issuer = await startIssuer();
    angos = await startAngos({ mode, config: config(issuer.issuer), env: { RUST_LOG: 'debug' } });
    env = await containersEnv(join(work, 'containers'), { insecureRegistries: [angos.host] });
    image = new OciLayout(join(work, 'image'));
    await mkOci(image.dir, 'v1', ['linux/amd64'], { seed: randomUUID() });
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => console.error(`angos ${mode} log:\n${angos?.logs().slice(-20_000) ?? ''}`));
  });
  afterAll(async () => {
    await angos?.stop();
    await issuer?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('skopeo --creds: the admin pushes, alice pulls but cannot push, anonymous and wrong passwords are refused', async () => {
    const anonymous = await push(undefined, 't/img');
    expect(failed(anonymous)).toBe(true);
    expect(anonymous.stderr).toMatch(/authentication required|unauthorized/i);
    expect(failed(await push('admin:wrong-password', 't/img'))).toBe(true);

    await ok('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      'admin:admin-secret',
      `oci:${image.dir}:v1`,
      ref('t/img'),
    ]);

    expect((await pull('alice:alice-secret', 't/img')).code).toBe(0);
    expect(failed(await pull(undefined, 't/img'))).toBe(true);
    const denied = await push('alice:alice-secret', 't/alice');
    expect(failed(denied)).toBe(true);
    expect(denied.stderr).toMatch(/denied/i);
  });

  it('podman login stores working credentials; a wrong password is refused', async () => {
    const wrong = await attempt(
      'podman',
      ['login', '--tls-verify=false', '-u', 'admin', '--password-stdin', angos.host],
      'nope\n',
    );
    expect(failed(wrong)).toBe(true);
    await ok(
      'podman',
      ['login', '--tls-verify=false', '-u', 'admin', '--password-stdin', angos.host],
      'admin-secret\n',
    );
    const id = (await ok('podman', ['pull', '-q', `oci:${image.dir}:v1`])).stdout.trim();
    await ok('podman', ['tag', id, `${angos.host}/t/podman:v1`]);
    await ok('podman', ['push', '-q', '--tls-verify=false', `${angos.host}/t/podman:v1`]);
    await ok('podman', ['rmi', '-a', '-f']);
    await ok('podman', ['pull', '-q', '--tls-verify=false', `${angos.host}/t/podman:v1`]);
    await ok('podman', ['logout', angos.host]);
    expect(
      failed(await attempt('podman', ['pull', '-q', '--tls-verify=false', `${angos.host}/t/podman:v1`])),
    ).toBe(true);
  });

  it('a CI job logs in with its OIDC token as the password of the provider name', async () => {
    const token = issuer.token();
    await ok('skopeo', [
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `ci:${token}`,
      `oci:${image.dir}:v1`,
      ref('ci/app'),
    ]);
    expect((await pull(`ci:${token}`, 'ci/app')).code).toBe(0);
    // The token's claims decide: this job may not write outside ci/.
    expect(failed(await push(`ci:${token}`, 't/from-ci'))).toBe(true);
    await ok(
      'podman',
      ['login', '--tls-verify=false', '-u', 'ci', '--password-stdin', angos.host],
      `${token}\n`,
    );
    await ok('podman', ['logout', angos.host]);
    // Tokens that must not work: from another repository, expired, for another audience, forged.
    for (const bad of [
      issuer.token({ repository: 'evil/app' }),
      issuer.token({ exp: Math.floor(Date.now() / 1000) - 120 }),
      issuer.token({ aud: 'other' }),
      issuer.hmacForgery(),
    ]) {
      expect(failed(await push(`ci:${bad}`, 'ci/bad'))).toBe(true);
    }
  });

  it.skipIf(skipWithoutClients('dockerd', 'docker') || skipUnlessRoot('docker login'))(
    'docker login with a password and with an OIDC token',
    async () => {
      // A private daemon (startDockerd), stopped at the end of the test.
      const daemon = await startDockerd({ dir: path('dockerd') });
      onTestFinished(() => daemon.stop(), 60_000);
      const dockerEnv = { ...env, DOCKER_HOST: daemon.env.DOCKER_HOST, DOCKER_CONFIG: path('docker-config') };
      const docker = (args: string[], input: string) =>
        run('docker', args, { env: dockerEnv, timeoutMs: 45_000, input });
      expect(failed(await docker(['login', '-u', 'admin', '--password-stdin', angos.host], 'wrong\n'))).toBe(
        true,
      );
      expect(
        (await docker(['login', '-u', 'admin', '--password-stdin', angos.host], 'admin-secret\n')).code,
      ).toBe(0);
      expect(
        (await docker(['login', '-u', 'ci', '--password-stdin', angos.host], `${issuer.token()}\n`)).code,
      ).toBe(0);
    },
    120_000,
  );
});
