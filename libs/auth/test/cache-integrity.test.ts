import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Config } from '@angos/config';
import { createMetrics, type Logger, silentLogger } from '@angos/observability';
import { captureLogger, configOf, skipWithout } from '@angos/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, createAuth } from '../src/auth.js';
import { AuthenticatedCache } from '../src/cache/authenticated.js';
import { MemoryCache } from '../src/cache/memory.js';
import type { Identity } from '../src/identity.js';
import type { AccessRequest } from '../src/request.js';
import { webhookHeaders } from '../src/webhook/headers.js';
import { CLIENT, type Running, type SigningKey, serve, startIssuer, type TestIssuer } from './helpers.js';
import { type RedisServer, startRedis } from './redis-server.js';

/**
 * Issue 2.3, finding 4: whoever can write to the shared Redis cache must not be able to plant
 * signing keys or `allow` decisions. Entries are authenticated with `[cache.redis] hmac_key`;
 * without it nothing security-relevant is kept in Redis.
 */

const KEY = '0123456789abcdef0123456789abcdef';
const INTEGRITY_WARNING = 'cache entry failed its integrity check, ignored';

describe('AuthenticatedCache', () => {
  const authenticated = (inner = new MemoryCache(), secret = KEY, logger: Logger = silentLogger) =>
    new AuthenticatedCache(inner, secret, logger);

  it('returns what it stored, and stores it with a MAC', async () => {
    const inner = new MemoryCache();
    const cache = authenticated(inner);
    await cache.set('auth:a', 'allow', 60);
    expect(await cache.get('auth:a')).toBe('allow');
    expect(await inner.get('auth:a')).toMatch(/^v1\.[0-9a-f]{16}\.\d+\.[A-Za-z0-9_-]{43}\.allow$/);
    expect(await cache.get('auth:missing')).toBeUndefined();
  });

  it('ignores, and logs, a bare value, a changed value, a copy under another key and another key’s entry', async () => {
    const inner = new MemoryCache();
    const { logger, records } = captureLogger('warn');
    const cache = authenticated(inner, KEY, logger);
    await cache.set('auth:a', 'deny', 60);
    await cache.set('auth:b', 'allow', 60);
    const genuineB = (await inner.get('auth:b'))!;

    await inner.set('auth:bare', 'allow', 60);
    expect(await cache.get('auth:bare')).toBeUndefined();
    await inner.set('auth:changed', genuineB.replace(/allow$/, 'allow-everyone'), 60);
    expect(await cache.get('auth:changed')).toBeUndefined();
    await inner.set('auth:a', genuineB, 60);
    expect(await cache.get('auth:a')).toBeUndefined();
    await authenticated(inner, 'another-secret-of-some-length').set('auth:other', 'allow', 60);
    expect(await cache.get('auth:other')).toBeUndefined();

    // The first rejection is logged with its key and reason; the next ones within the interval
    // are counted into the following warning instead of one line per request.
    expect(records()).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: INTEGRITY_WARNING,
        key: 'auth:bare',
        reason: 'not an authenticated entry',
      }),
    ]);
    expect(await cache.get('auth:b')).toBe('allow');
  });

  it('names the reason: a MAC that does not match, an entry written with another hmac_key', async () => {
    for (const [plant, reason] of [
      [
        async (inner: MemoryCache) =>
          inner.set('k', (await inner.get('k'))!.replace(/\.deny$/, '.allow'), 60),
        'MAC does not match',
      ],
      [
        (inner: MemoryCache) => authenticated(inner, 'another-secret-of-some-length').set('k', 'allow', 60),
        'written with another cache.redis.hmac_key',
      ],
    ] as const) {
      const inner = new MemoryCache();
      const { logger, records } = captureLogger('warn');
      const cache = authenticated(inner, KEY, logger);
      await cache.set('k', 'deny', 60);
      await plant(inner);
      expect(await cache.get('k')).toBeUndefined();
      expect(records()).toEqual([expect.objectContaining({ message: INTEGRITY_WARNING, key: 'k', reason })]);
    }
  });

  it('does not serve an entry past the expiry it was written with, whatever the backend keeps', async () => {
    let now = 1_000_000;
    const inner = new MemoryCache(10, () => 0);
    const cache = new AuthenticatedCache(inner, KEY, silentLogger, () => now);
    await cache.set('k', 'allow', 10);
    expect(await cache.get('k')).toBe('allow');
    now += 10_000;
    expect(await cache.get('k')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Two replicas sharing a real redis-server; someone else writes to it directly.

const pull = (namespace: string): AccessRequest => ({ action: 'get-manifest', namespace, reference: 'v1' });

function bearer(token: string): IncomingMessage {
  return {
    headers: { authorization: `Bearer ${token}` },
    socket: { remoteAddress: '127.0.0.1' },
  } as unknown as IncomingMessage;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const anonymous: Identity = { client_ip: '127.0.0.1' };

const webhookTables = (url: string) => `[auth.webhook.authz]
url = "${url}"
timeout_ms = 2000
[global]
authorization_webhook = "authz"
[global.access_policy]
default = "allow"
`;

/** The cache key of webhook "authz"'s decision for an anonymous `request` (webhook/authorizer.ts). */
function webhookCacheKey(config: Config, request: AccessRequest): string {
  const webhook = config.auth.webhook['authz']!;
  const headers = webhookHeaders(webhook, anonymous, request, CLIENT);
  const context = Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `auth:webhook:${sha256(JSON.stringify(['authz', webhook.url, '', context]))}`;
}

describe.skipIf(skipWithout('the Redis cache integrity tests', 'redis-server'))(
  'security material in the shared Redis cache (redis-server)',
  () => {
    let redis: RedisServer;
    let issuer: TestIssuer;
    let forger: SigningKey;
    /** The forger's own JWKS endpoint, for a planted discovery document to point at. */
    let forgerJwks: Running;
    const auths: Auth[] = [];
    const servers: Running[] = [];
    let prefixCounter = 0;

    beforeAll(async () => {
      redis = await startRedis();
      issuer = await startIssuer();
      forger = await issuer.stranger();
      forgerJwks = await serve((_req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: [forger.publicJwk] }));
      });
    }, 15_000);
    afterEach(async () => {
      await Promise.all(auths.splice(0).map((auth) => auth.close()));
      await Promise.all(servers.splice(0).map((server) => server.close()));
    });
    afterAll(async () => {
      await forgerJwks?.close();
      await issuer?.close();
      await redis?.stop();
    });

    function replica(config: Config, logger: Logger = silentLogger): Auth {
      const auth = createAuth({
        config: () => config,
        logger,
        metrics: createMetrics({ defaultMetrics: false }),
      });
      auths.push(auth);
      return auth;
    }

    /** A `[cache.redis]` table with a key prefix of its own, so tests do not see each other's entries. */
    function cacheTable(withKey: boolean): { toml: string; prefix: string } {
      const prefix = `integrity-${++prefixCounter}:`;
      const hmac = withKey ? `hmac_key = "${KEY}"\n` : '';
      return { prefix, toml: `[cache.redis]\nurl = "${redis.url}"\nkey_prefix = "${prefix}"\n${hmac}` };
    }

    /** What a forger with write access to Redis stores as a JWKS document: its own key, fresh. */
    const forgedJwks = () => JSON.stringify({ fetched_at: Date.now(), jwks: { keys: [forger.publicJwk] } });

    /** An authorization webhook that allows namespace "open" only, counting its calls. */
    async function denyingWebhook(): Promise<Running & { calls: number }> {
      const state = { calls: 0 };
      const running = await serve((req, res) => {
        state.calls += 1;
        res.statusCode = req.headers['x-registry-namespace'] === 'open' ? 200 : 403;
        res.end();
      });
      servers.push(running);
      return Object.assign(state, running);
    }

    for (const withKey of [true, false]) {
      const variant = withKey ? 'with hmac_key' : 'without hmac_key';

      it(`${variant}: a JWKS planted in Redis is ignored, so a token signed by the planter's key is refused`, async () => {
        const { toml, prefix } = cacheTable(withKey);
        const config = configOf(
          `${toml}[auth.oidc.ci]\nprovider = "generic"\nissuer = "${issuer.issuer}"\njwks_uri = "${issuer.jwksUri}"\n`,
        );
        await redis.client.set(`${prefix}auth:oidc:jwks:${sha256(issuer.jwksUri)}`, forgedJwks(), 'EX', 300);
        const { logger, records } = captureLogger('warn');
        const auth = replica(config, logger);
        const requestsBefore = issuer.jwksRequests;

        const forged = await auth.authenticate(bearer(await issuer.sign({}, { key: forger })));
        expect(forged.oidc).toBeUndefined();
        // The keys came from the issuer instead, and a genuine token still passes.
        expect(issuer.jwksRequests).toBeGreaterThan(requestsBefore);
        expect((await auth.authenticate(bearer(await issuer.sign()))).oidc?.provider_name).toBe('ci');
        if (withKey) {
          expect(records()).toContainEqual(
            expect.objectContaining({
              level: 'WARN',
              message: INTEGRITY_WARNING,
              reason: 'not an authenticated entry',
            }),
          );
        }
      });

      it(`${variant}: a discovery document planted in Redis, naming the planter's JWKS, is ignored`, async () => {
        const { toml, prefix } = cacheTable(withKey);
        const config = configOf(`${toml}[auth.oidc.ci]\nprovider = "generic"\nissuer = "${issuer.issuer}"\n`);
        await redis.client.set(
          `${prefix}auth:oidc:discovery:${sha256(issuer.issuer)}`,
          `${forgerJwks.url}/keys`,
          'EX',
          300,
        );
        const auth = replica(config);
        const forged = await auth.authenticate(bearer(await issuer.sign({}, { key: forger })));
        expect(forged.oidc).toBeUndefined();
        expect((await auth.authenticate(bearer(await issuer.sign()))).oidc?.provider_name).toBe('ci');
      });

      it(`${variant}: an allow decision planted in Redis is ignored, and the webhook is asked again`, async () => {
        const webhook = await denyingWebhook();
        const { toml, prefix } = cacheTable(withKey);
        const config = configOf(`${toml}${webhookTables(webhook.url)}`);
        // Where the decision for this exact request lives, worked out as anyone reading the
        // source (or watching Redis) could.
        await redis.client.set(`${prefix}${webhookCacheKey(config, pull('closed'))}`, 'allow', 'EX', 300);

        const auth = replica(config);
        expect((await auth.authorize(anonymous, pull('closed'), CLIENT)).decision).toBe('deny');
        expect(webhook.calls).toBe(1);
      });
    }

    it("with hmac_key: a genuine allow copied over another request's entry is ignored; genuine entries still hit", async () => {
      const webhook = await denyingWebhook();
      const { toml, prefix } = cacheTable(true);
      const config = configOf(`${toml}${webhookTables(webhook.url)}`);
      const { logger, records } = captureLogger('warn');
      const first = replica(config);
      expect((await first.authorize(anonymous, pull('closed'), CLIENT)).decision).toBe('deny');
      expect((await first.authorize(anonymous, pull('open'), CLIENT)).decision).toBe('allow');
      expect(webhook.calls).toBe(2);

      const openKey = `${prefix}${webhookCacheKey(config, pull('open'))}`;
      const closedKey = `${prefix}${webhookCacheKey(config, pull('closed'))}`;
      const genuineAllow = await redis.client.get(openKey);
      expect(genuineAllow).toMatch(/^v1\..*\.allow$/);
      await redis.client.set(closedKey, genuineAllow!, 'EX', 300);

      const second = replica(config, logger);
      expect((await second.authorize(anonymous, pull('closed'), CLIENT)).decision).toBe('deny');
      expect(webhook.calls).toBe(3);
      expect(records()).toContainEqual(
        expect.objectContaining({ message: INTEGRITY_WARNING, reason: 'MAC does not match' }),
      );
      // The genuine entry for "open", written by the first replica, is used without a call.
      expect((await second.authorize(anonymous, pull('open'), CLIENT)).decision).toBe('allow');
      expect(webhook.calls).toBe(3);
    });

    it('without hmac_key, nothing is stored in Redis', async () => {
      const webhook = await denyingWebhook();
      const { toml, prefix } = cacheTable(false);
      const config = configOf(
        `${toml}${webhookTables(webhook.url)}[auth.oidc.ci]\nprovider = "generic"\nissuer = "${issuer.issuer}"\n`,
      );
      const auth = replica(config);
      expect((await auth.authenticate(bearer(await issuer.sign()))).oidc?.provider_name).toBe('ci');
      expect((await auth.authorize(anonymous, pull('closed'), CLIENT)).decision).toBe('deny');
      expect(await redis.client.keys(`${prefix}*`)).toEqual([]);
    });
  },
);
