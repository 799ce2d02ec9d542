import type { AuthWebhookConfig, Config, ConfigIssue } from '@angos/config';
import { formatKeyPath } from '@angos/config';
import type { Argon2PoolLimits } from './authenticate/argon2-pool.js';
import { BasicAuthenticator, type PasswordChecks } from './authenticate/basic.js';
import type { AuthenticationMethods } from './authenticate/chain.js';
import type { AuthorizationSetup } from './authorize.js';
import type { JwksSource } from './oidc/jwks.js';
import type { OidcProvider } from './oidc/provider.js';
import { compilePolicies, PolicyCompileError } from './policy/compile.js';
import { createWebhookAgent, type WebhookAuthorizer, WebhookSetupError } from './webhook/authorizer.js';

/** Everything authentication and authorization need for one version of the configuration. */
export interface AuthSetup extends AuthorizationSetup {
  readonly methods: AuthenticationMethods;
}

/** What outlives a configuration version: caches, key sets, connections. */
export interface AuthResources {
  /** Remembered passwords, the Argon2 pool and failed logins per address. */
  readonly passwords: PasswordChecks;
  /** Key sets by provider endpoint, so a reload does not throw away fetched keys. */
  readonly jwks: (issuer: string, jwksUri: string | undefined, refreshSeconds: number) => Promise<JwksSource>;
  /** Webhook clients by definition, so a reload keeps their connections when they did not change. */
  readonly webhook: (name: string, config: AuthWebhookConfig) => WebhookAuthorizer;
}

/** `[auth] password_verify_concurrency` and `password_verify_queue`, as the pool takes them. */
export function argon2Limits(config: Config): Argon2PoolLimits {
  return {
    concurrency: config.auth.password_verify_concurrency,
    queueLimit: config.auth.password_verify_queue,
  };
}

/** The `[auth.oidc.<name>]` providers, in configuration order. */
async function oidcProviders(config: Config, resources: AuthResources): Promise<OidcProvider[]> {
  const providers = Object.entries(config.auth.oidc);
  if (providers.length === 0) return [];
  // Loaded only when an OIDC provider is configured: it brings jose, ~7 MiB of RSS.
  const { OidcProvider } = await import('./oidc/provider.js');
  return Promise.all(
    providers.map(
      async ([name, provider]) =>
        new OidcProvider(
          name,
          provider,
          await resources.jwks(provider.issuer, provider.jwks_uri, provider.jwks_refresh_interval),
        ),
    ),
  );
}

/**
 * Builds the authentication methods, compiled policies and webhook clients of a configuration.
 * Rejects with PolicyCompileError or WebhookSetupError when the configuration cannot be used; the
 * CLI calls {@link checkAuthConfig} first, so a running process never meets either.
 */
export async function buildAuthSetup(config: Config, resources: AuthResources): Promise<AuthSetup> {
  resources.passwords.argon2.configure(argon2Limits(config));
  const policies = compilePolicies(config);
  const oidc = await oidcProviders(config, resources);
  const webhooks = new Map<string, WebhookAuthorizer>();
  for (const [name, webhook] of Object.entries(config.auth.webhook)) {
    webhooks.set(name, resources.webhook(name, webhook));
  }
  return {
    config,
    policies,
    webhooks,
    methods: {
      basic: new BasicAuthenticator(config.auth.identity, resources.passwords, {
        limit: config.auth.failed_auth_limit,
        windowSeconds: config.auth.failed_auth_window_secs,
      }),
      oidc,
    },
  };
}

/**
 * The problems that keep a configuration's security settings from loading, each with its key
 * path: access policy rules that do not compile or type-check, and webhook TLS files that cannot
 * be read. Startup fails on any; a reload with any is rejected and the running settings stay.
 */
export function checkAuthConfig(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  try {
    compilePolicies(config);
  } catch (error) {
    if (!(error instanceof PolicyCompileError)) throw error;
    issues.push(...error.issues);
  }
  for (const [name, webhook] of Object.entries(config.auth.webhook)) {
    try {
      createWebhookAgent(webhook).destroy();
    } catch (error) {
      if (!(error instanceof WebhookSetupError)) throw error;
      issues.push({ path: formatKeyPath(['auth', 'webhook', name, error.option]), message: error.message });
    }
  }
  return issues;
}
