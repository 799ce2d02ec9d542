import type { IncomingMessage } from 'node:http';
import type { AuthWebhookConfig, Config } from '@angos/config';
import type { Logger, Metrics } from '@angos/observability';
import { Argon2Pool } from './authenticate/argon2-pool.js';
import { FailedPasswords, VerifiedPasswords } from './authenticate/basic.js';
import { authenticateRequest } from './authenticate/chain.js';
import { FailedAttempts } from './authenticate/failed-attempts.js';
import { type Authorization, authorizeRequest } from './authorize.js';
import { cacheSettingsKey, createCache } from './cache/create.js';
import type { AuthCache } from './cache/types.js';
import type { Identity } from './identity.js';
import { createAuthMetrics } from './metrics.js';
import type { FetchLike } from './oidc/fetch-json.js';
import type { JwksSource } from './oidc/jwks.js';
import { RuleFailureLog } from './policy/evaluate.js';
import type { AccessRequest } from './request.js';
import { type AuthResources, type AuthSetup, argon2Limits, buildAuthSetup } from './setup.js';
import { WebhookAuthorizer } from './webhook/authorizer.js';
import type { ClientRequestDetails } from './webhook/headers.js';

export interface AuthOptions {
  /** The configuration in force; read per request, so reloads apply at once. */
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** How JWKS and discovery documents are fetched; default the global fetch. */
  readonly fetch?: FetchLike;
  /** Minimum time between key fetches caused by tokens naming unknown keys; default 30 s. */
  readonly jwksCooldownMs?: number;
}

/** Authentication and authorization for the gateway. */
export interface Auth {
  /**
   * Runs the authentication chain (mTLS, OIDC, basic); bad credentials leave the caller anonymous.
   * Throws AuthenticationRefused (an OciError with `retryAfterSeconds`) when the client address
   * failed to log in too often lately (429) or too many password checks are waiting (503).
   */
  authenticate(req: IncomingMessage): Promise<Identity>;
  /** Global policy, repository policy, webhook; deny unless every stage allows. */
  authorize(identity: Identity, request: AccessRequest, client: ClientRequestDetails): Promise<Authorization>;
  /** Closes the cache connection, webhook connections and the Argon2 workers. */
  close(): Promise<void>;
}

/**
 * Builds the gateway's authentication and authorization. Per configuration version it compiles
 * the policies and builds the methods once (the first request after a reload pays for it); what
 * is expensive to rebuild (fetched keys, the Redis connection, webhook connections) outlives
 * versions and is replaced only when its own settings change.
 */
export function createAuth(options: AuthOptions): Auth {
  const { logger } = options;
  const metrics = createAuthMetrics(options.metrics);
  const failures = new RuleFailureLog(logger.child('angos::auth::policy'));
  const authLogger = logger.child('angos::auth');

  let cacheKey = cacheSettingsKey(options.config().cache);
  let cache: AuthCache = createCache(options.config().cache, logger.child('angos::auth::cache'));
  const currentCache = () => cache;

  const jwksSources = new Map<string, JwksSource>();
  const webhooks = new Map<string, WebhookAuthorizer>();
  const setups = new WeakMap<Config, Promise<AuthSetup>>();

  const resources: AuthResources = {
    passwords: {
      verified: new VerifiedPasswords(),
      failed: new FailedPasswords(),
      // No thread starts until a password is checked, which only a configured identity causes.
      argon2: new Argon2Pool(argon2Limits(options.config())),
      attempts: new FailedAttempts(),
    },
    async jwks(issuer, jwksUri, refreshSeconds) {
      // Asked for only when an OIDC provider is configured: the module brings jose, ~7 MiB of RSS.
      const { JwksSource } = await import('./oidc/jwks.js');
      const key = JSON.stringify([issuer, jwksUri ?? null, refreshSeconds]);
      let source = jwksSources.get(key);
      if (source === undefined) {
        source = new JwksSource({
          issuer,
          jwksUri,
          refreshSeconds,
          cache: currentCache,
          ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
          ...(options.jwksCooldownMs === undefined ? {} : { cooldownMs: options.jwksCooldownMs }),
        });
        jwksSources.set(key, source);
      }
      return source;
    },
    webhook(name: string, config: AuthWebhookConfig) {
      const key = JSON.stringify([name, config]);
      let webhook = webhooks.get(key);
      if (webhook === undefined) {
        webhook = new WebhookAuthorizer(name, config, {
          cache: currentCache,
          metrics,
          logger: logger.child('angos::auth::webhook'),
        });
        webhooks.set(key, webhook);
      }
      return webhook;
    },
  };

  /**
   * A new configuration version: swap the cache when `[cache]` changed, forget webhook clients it
   * no longer uses (their idle connections time out; calls in flight finish).
   */
  const adopt = (config: Config, setup: AuthSetup) => {
    const nextCacheKey = cacheSettingsKey(config.cache);
    if (nextCacheKey !== cacheKey) {
      const previous = cache;
      cache = createCache(config.cache, logger.child('angos::auth::cache'));
      cacheKey = nextCacheKey;
      void previous.close();
    }
    const inUse = new Set(setup.webhooks.values());
    for (const [key, webhook] of webhooks) {
      if (!inUse.has(webhook)) webhooks.delete(key);
    }
  };

  /** The configuration version whose setup was started last. */
  let newest: Config | undefined;

  /**
   * The setup of a configuration version, built by its first request; concurrent requests share
   * the build. A build that fails is not kept, so the next request tries again. A build is adopted
   * only when no newer version's build started meanwhile: a reload while an older version was
   * being built must not bring the older cache settings back.
   */
  const setupFor = (config: Config): Promise<AuthSetup> => {
    let setup = setups.get(config);
    if (setup === undefined) {
      newest = config;
      setup = buildAuthSetup(config, resources).then(
        (built) => {
          if (newest === config) adopt(config, built);
          return built;
        },
        (error: unknown) => {
          setups.delete(config);
          throw error;
        },
      );
      setups.set(config, setup);
    }
    return setup;
  };

  return {
    async authenticate(req) {
      const setup = await setupFor(options.config());
      return authenticateRequest(req, setup.methods, metrics, authLogger);
    },
    async authorize(identity, request, client) {
      return authorizeRequest(await setupFor(options.config()), identity, request, client, failures);
    },
    async close() {
      for (const webhook of webhooks.values()) webhook.close();
      webhooks.clear();
      await Promise.all([cache.close(), resources.passwords.argon2.close()]);
    },
  };
}
