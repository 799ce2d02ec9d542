import { formatKeyPath, type KeyPath, quoted } from './key-path.js';
import { lockBackend } from './sections/lock-strategy.js';
import type { Config } from './types.js';

/**
 * Features the configuration can describe but this build cannot run yet. The CLI refuses to start
 * with any of them turned on (`not supported yet: <key>`) rather than silently ignoring them.
 * One row per feature; delete the row when the feature lands.
 */
interface FeatureRow {
  /** The option as the reference names it; documentation only. */
  readonly feature: string;
  /** The keys at which `config` turns this feature on (empty when it does not). */
  readonly enabledAt: (config: Config) => KeyPath[];
}

const when = (on: boolean, path: KeyPath): KeyPath[] => (on ? [path] : []);

/** One key per named entry: `auth.identity.alice`, `event_webhook.ci`. */
const each = (entries: Readonly<Record<string, unknown>>, prefix: KeyPath): KeyPath[] =>
  Object.keys(entries).map((name) => [...prefix, name]);

/** One key per repository for which `on` holds: `repository."docker-io".upstream`. */
const perRepository =
  (option: KeyPath, on: (repository: Config['repository'][string]) => boolean) =>
  (config: Config): KeyPath[] =>
    Object.entries(config.repository)
      .filter(([, repository]) => on(repository))
      .map(([namespace]) => ['repository', quoted(namespace), ...option]);

function metadataLock(config: Config): { path: KeyPath; backend: 'memory' | 'redis' | 's3' } {
  const store = config.metadata_store;
  const strategy = store.fs ? store.fs.lock_strategy : store.s3.lock_strategy;
  const backend = lockBackend(strategy);
  return { path: ['metadata_store', store.fs ? 'fs' : 's3', 'lock_strategy', backend], backend };
}

const NOT_YET_SUPPORTED: readonly FeatureRow[] = [
  { feature: 'server.tls', enabledAt: (c) => when(c.server.tls !== undefined, ['server', 'tls']) },
  { feature: 'cache.redis', enabledAt: (c) => when(c.cache.redis !== undefined, ['cache', 'redis']) },
  { feature: 'blob_store.s3', enabledAt: (c) => when(c.blob_store.s3 !== undefined, ['blob_store', 's3']) },
  {
    feature: 'metadata_store.s3',
    enabledAt: (c) => when(c.metadata_store.s3 !== undefined, ['metadata_store', 's3']),
  },
  {
    feature: 'metadata_store.<backend>.lock_strategy.redis',
    enabledAt: (c) => when(metadataLock(c).backend === 'redis', metadataLock(c).path),
  },
  {
    feature: 'metadata_store.s3.lock_strategy.s3',
    enabledAt: (c) => when(metadataLock(c).backend === 's3', metadataLock(c).path),
  },
  {
    feature: 'global.job_queue',
    enabledAt: (c) => when(c.global.job_queue !== undefined, ['global', 'job_queue']),
  },
  {
    feature: 'global.access_policy.rules',
    enabledAt: (c) => when(c.global.access_policy.rules.length > 0, ['global', 'access_policy', 'rules']),
  },
  {
    feature: 'global.retention_policy.rules',
    enabledAt: (c) =>
      when(c.global.retention_policy.rules.length > 0, ['global', 'retention_policy', 'rules']),
  },
  {
    feature: 'global.authorization_webhook',
    enabledAt: (c) => when(Boolean(c.global.authorization_webhook), ['global', 'authorization_webhook']),
  },
  {
    feature: 'global.event_webhooks',
    enabledAt: (c) => when(c.global.event_webhooks.length > 0, ['global', 'event_webhooks']),
  },
  { feature: 'auth.identity.<name>', enabledAt: (c) => each(c.auth.identity, ['auth', 'identity']) },
  { feature: 'auth.oidc.<name>', enabledAt: (c) => each(c.auth.oidc, ['auth', 'oidc']) },
  { feature: 'auth.webhook.<name>', enabledAt: (c) => each(c.auth.webhook, ['auth', 'webhook']) },
  {
    feature: 'repository."<namespace>".upstream',
    enabledAt: perRepository(['upstream'], (r) => r.upstream.length > 0),
  },
  {
    feature: 'repository."<namespace>".downstream',
    enabledAt: perRepository(['downstream'], (r) => r.downstream.length > 0),
  },
  {
    feature: 'repository."<namespace>".access_policy.rules',
    enabledAt: perRepository(['access_policy', 'rules'], (r) => (r.access_policy?.rules.length ?? 0) > 0),
  },
  {
    feature: 'repository."<namespace>".retention_policy.rules',
    enabledAt: perRepository(
      ['retention_policy', 'rules'],
      (r) => (r.retention_policy?.rules.length ?? 0) > 0,
    ),
  },
  {
    feature: 'repository."<namespace>".authorization_webhook',
    enabledAt: perRepository(['authorization_webhook'], (r) => Boolean(r.authorization_webhook)),
  },
  {
    feature: 'repository."<namespace>".event_webhooks',
    enabledAt: perRepository(['event_webhooks'], (r) => (r.event_webhooks?.length ?? 0) > 0),
  },
  { feature: 'event_webhook.<name>', enabledAt: (c) => each(c.event_webhook, ['event_webhook']) },
  {
    feature: 'observability.tracing',
    enabledAt: (c) => when(c.observability.tracing !== undefined, ['observability', 'tracing']),
  },
  { feature: 'ui', enabledAt: (c) => when(c.ui.enabled, ['ui']) },
];

/** The features (rows above) this build does not implement yet, for documentation and tests. */
export const UNSUPPORTED_FEATURES: readonly string[] = NOT_YET_SUPPORTED.map((row) => row.feature);

/** The keys of not-yet-built features that `config` turns on, in table order. */
export function unsupportedFeatures(config: Config): string[] {
  return NOT_YET_SUPPORTED.flatMap((row) => row.enabledAt(config).map(formatKeyPath));
}
