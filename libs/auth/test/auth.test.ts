import type { IncomingMessage } from 'node:http';
import type { Config } from '@angos/config';
import { createMetrics, silentLogger } from '@angos/observability';
import { configOf, skipWithout } from '@angos/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, createAuth } from '../src/auth.js';
import type { AccessRequest } from '../src/request.js';
import { CLIENT, type Running, serve, startIssuer, type TestIssuer } from './helpers.js';
import { type RedisServer, startRedis } from './redis-server.js';

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';

const auths: Auth[] = [];
const servers: Running[] = [];
afterEach(async () => {
  await Promise.all(auths.splice(0).map((auth) => auth.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function authFor(config: () => Config): Auth {
  const auth = createAuth({
    config,
    logger: silentLogger,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  auths.push(auth);
  return auth;
}

function request(authorization?: string): IncomingMessage {
  return {
    headers: authorization === undefined ? {} : { authorization },
    socket: { remoteAddress: '127.0.0.1' },
  } as unknown as IncomingMessage;
}

const pull: AccessRequest = { action: 'get-manifest', namespace: 'team', reference: 'v1' };
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('createAuth', () => {
  it('follows configuration reloads: new identities, new rules', async () => {
    let config = configOf('[global.access_policy]\ndefault = "deny"\n');
    const auth = authFor(() => config);
    const before = await auth.authenticate(request(basic('alice', 'alice-secret')));
    expect(before.username).toBeUndefined();
    expect((await auth.authorize(before, pull, CLIENT)).decision).toBe('deny');

    config = configOf(`[auth.identity.alice]
username = "alice"
password = "${ALICE_HASH}"
[global.access_policy]
default = "deny"
rules = ["identity.username == 'alice'"]
`);
    const after = await auth.authenticate(request(basic('alice', 'alice-secret')));
    expect(after.username).toBe('alice');
    expect(await auth.authorize(after, pull, CLIENT)).toEqual({ decision: 'allow' });
  });

  it('says which stage refused', async () => {
    const auth = authFor(() =>
      configOf(`[global.access_policy]
default = "allow"
[repository."team".access_policy]
default = "deny"
`),
    );
    const anonymous = await auth.authenticate(request());
    expect(await auth.authorize(anonymous, pull, CLIENT)).toEqual({
      decision: 'deny',
      by: 'repository policy',
      detail: 'repository."team".access_policy',
    });
    expect(await auth.authorize(anonymous, { ...pull, namespace: 'team-evil' }, CLIENT)).toEqual({
      decision: 'allow',
    });
  });
});

describe.skipIf(skipWithout('the Redis cache tests', 'redis-server'))('createAuth with [cache.redis]', () => {
  let redis: RedisServer;
  let issuer: TestIssuer;
  beforeAll(async () => {
    redis = await startRedis();
    issuer = await startIssuer();
  }, 15_000);
  afterAll(async () => {
    await issuer?.close();
    await redis?.stop();
  });

  it('shares fetched keys and webhook decisions between replicas', async () => {
    let webhookCalls = 0;
    const webhook = await serve((_req, res) => {
      webhookCalls += 1;
      res.end();
    });
    servers.push(webhook);
    const config = configOf(`[cache.redis]
url = "${redis.url}"
key_prefix = "replicas:"
hmac_key = "0123456789abcdef0123456789abcdef"
[auth.oidc.ci]
provider = "generic"
issuer = "${issuer.issuer}"
[auth.webhook.authz]
url = "${webhook.url}"
timeout_ms = 1000
[global]
authorization_webhook = "authz"
[global.access_policy]
default = "deny"
rules = ["has(identity.oidc)"]
`);
    const replicaA = authFor(() => config);
    const replicaB = authFor(() => config);
    const token = await issuer.sign();

    const a = await replicaA.authenticate(request(`Bearer ${token}`));
    expect(a.oidc?.provider_name).toBe('ci');
    const b = await replicaB.authenticate(request(`Bearer ${token}`));
    expect(b.oidc?.provider_name).toBe('ci');
    expect(issuer.jwksRequests).toBe(1);
    expect(issuer.discoveryRequests).toBe(1);

    expect((await replicaA.authorize(a, pull, CLIENT)).decision).toBe('allow');
    expect((await replicaB.authorize(b, pull, CLIENT)).decision).toBe('allow');
    expect(webhookCalls).toBe(1);
    const keys = await redis.client.keys('replicas:auth:*');
    expect(keys.length).toBeGreaterThanOrEqual(3);
    // Every entry is authenticated (cache/authenticated.ts), none stored bare.
    for (const key of keys) expect(await redis.client.get(key)).toMatch(/^v1\.[0-9a-f]{16}\.\d+\./);
  });
});
