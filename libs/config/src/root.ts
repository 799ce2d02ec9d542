import { formatKeyPath, type KeyPath } from './key-path.js';
import {
  defaulted,
  type Fields,
  INVALID,
  optional,
  type ReadContext,
  readTable,
  required,
  type Shape,
  table,
  withDefault,
} from './schema.js';
import { authSchema } from './sections/auth.js';
import { cacheSchema } from './sections/cache.js';
import { eventWebhooksSchema } from './sections/event-webhook.js';
import { gcSchema } from './sections/gc.js';
import { globalSchema } from './sections/global.js';
import { lockBackend } from './sections/lock-strategy.js';
import { observabilitySchema } from './sections/observability.js';
import { repositorySchema } from './sections/repository.js';
import { serverSchema } from './sections/server.js';
import { servicesSchema } from './sections/services.js';
import {
  type BackendChoice,
  blobStoreSchema,
  type FsMetadataStoreInput,
  fsMetadataStoreSchema,
  metadataStoreSchema,
  S3_CONNECTION_OPTIONS,
  s3MetadataStoreSchema,
} from './sections/storage.js';
import { uiSchema } from './sections/ui.js';
import type { Config, MetadataStoreConfig, S3MetadataStoreConfig } from './types.js';

/** The document as written: `[metadata_store]` may be absent and `root_dir` left to follow the blob store. */
type ConfigInput = Omit<Config, 'metadata_store'> & {
  metadata_store?: BackendChoice<FsMetadataStoreInput, S3MetadataStoreConfig>;
};

const rootFields: Fields<ConfigInput> = {
  server: required(serverSchema),
  global: defaulted(globalSchema),
  cache: defaulted(cacheSchema),
  blob_store: required(blobStoreSchema),
  metadata_store: optional(metadataStoreSchema),
  auth: defaulted(authSchema),
  repository: withDefault(repositorySchema, () => ({})),
  event_webhook: withDefault(eventWebhooksSchema, () => ({})),
  observability: defaulted(observabilitySchema),
  ui: defaulted(uiSchema),
  services: defaulted(servicesSchema),
  gc: defaulted(gcSchema),
};

/** The whole document's shape: what the drift test compares with the configuration reference. */
export const configShape: Shape = table(rootFields).shape;

/**
 * Reads a parsed TOML document into a `Config`. Every problem lands in `ctx`; the result is
 * undefined when there was any. Cross-section rules run on whichever sections were valid, so
 * one bad section does not hide the problems of the others.
 */
export function readConfig(document: Record<string, unknown>, ctx: ReadContext): Config | undefined {
  const { value: input, valid } = readTable(rootFields, {}, document, [], ctx);
  const metadataStore = resolveMetadataStore(input, Object.hasOwn(document, 'metadata_store'), ctx);
  checkJobQueueLock(input, metadataStore, ctx);
  checkWebhookReferences(input, ctx);
  checkCacheIntegrity(input, ctx);
  if (!valid || metadataStore === undefined || ctx.issues.length > 0) return undefined;
  return { ...(input as ConfigInput), metadata_store: metadataStore };
}

/**
 * `[metadata_store]` defaults to the blob store's backend: the same root_dir on the filesystem,
 * the same bucket and credentials on S3. An explicit `[metadata_store.fs]` without root_dir uses
 * the blob store's when that is a filesystem store too.
 */
function resolveMetadataStore(
  input: Partial<ConfigInput>,
  written: boolean,
  ctx: ReadContext,
): MetadataStoreConfig | undefined {
  const blob = input.blob_store;
  const metadata = input.metadata_store;
  if (!written) {
    if (blob?.fs) {
      const fs = fsMetadataStoreSchema.read(
        { root_dir: blob.fs.root_dir, sync_to_disk: blob.fs.sync_to_disk },
        ['metadata_store', 'fs'],
        ctx,
      );
      return fs === INVALID ? undefined : { fs: { ...fs, root_dir: blob.fs.root_dir } };
    }
    if (blob?.s3) {
      const connection = Object.fromEntries(
        S3_CONNECTION_OPTIONS.filter((key) => Object.hasOwn(blob.s3, key)).map((key) => [
          key,
          (blob.s3 as unknown as Record<string, unknown>)[key],
        ]),
      );
      const s3 = s3MetadataStoreSchema.read(connection, ['metadata_store', 's3'], ctx);
      return s3 === INVALID ? undefined : { s3 };
    }
    return undefined;
  }
  if (metadata?.s3) return { s3: metadata.s3 };
  if (metadata?.fs) {
    const root_dir = metadata.fs.root_dir ?? blob?.fs?.root_dir;
    if (root_dir !== undefined) return { fs: { ...metadata.fs, root_dir } };
    if (blob?.s3)
      ctx.error(['metadata_store', 'fs', 'root_dir'], 'required when the blob store is not [blob_store.fs]');
  }
  return undefined;
}

/** The durable queue is drained by several processes; an in-process lock cannot serialize them. */
function checkJobQueueLock(
  input: Partial<ConfigInput>,
  metadataStore: MetadataStoreConfig | undefined,
  ctx: ReadContext,
): void {
  if (!input.global?.job_queue || !metadataStore) return;
  const backend = metadataStore.fs ? 'fs' : 's3';
  const strategy = metadataStore.fs ? metadataStore.fs.lock_strategy : metadataStore.s3.lock_strategy;
  if (lockBackend(strategy) !== 'memory') return;
  const shared =
    backend === 's3'
      ? '[metadata_store.s3.lock_strategy.s3] or [metadata_store.s3.lock_strategy.redis]'
      : '[metadata_store.fs.lock_strategy.redis]';
  ctx.error(
    ['global', 'job_queue'],
    `requires a shared lock strategy (${shared}); the in-process "memory" lock cannot coordinate ` +
      'worker processes. Remove [global.job_queue] to drain jobs in-process instead',
  );
}

/** Webhooks are enabled by name; a name with no definition is a typo that would silently do nothing. */
function checkWebhookReferences(input: Partial<ConfigInput>, ctx: ReadContext): void {
  const authWebhooks = input.auth?.webhook;
  const eventWebhooks = input.event_webhook;
  const checkAuthorization = (name: string | undefined, at: KeyPath) => {
    // An empty name means "none" (a repository uses it to opt out of the global webhook).
    if (!authWebhooks || name === undefined || name === '' || Object.hasOwn(authWebhooks, name)) return;
    ctx.error(at, `unknown webhook "${name}" (no ${tableOf(['auth', 'webhook', name])})`);
  };
  const checkEvents = (names: readonly string[] | undefined, at: KeyPath) => {
    if (!eventWebhooks || !names) return;
    names.forEach((name, index) => {
      if (!Object.hasOwn(eventWebhooks, name)) {
        ctx.error([...at, index], `unknown event webhook "${name}" (no ${tableOf(['event_webhook', name])})`);
      }
    });
  };

  if (input.global) {
    checkAuthorization(input.global.authorization_webhook, ['global', 'authorization_webhook']);
    checkEvents(input.global.event_webhooks, ['global', 'event_webhooks']);
  }
  for (const [namespace, repository] of Object.entries(input.repository ?? {})) {
    const at: KeyPath = ['repository', { quoted: namespace }];
    checkAuthorization(repository.authorization_webhook, [...at, 'authorization_webhook']);
    checkEvents(repository.event_webhooks, [...at, 'event_webhooks']);
  }
}

/**
 * Without `hmac_key`, Redis could not be trusted with signing keys or webhook decisions, so they
 * are cached in each process instead. That is safe but gives up sharing between replicas, which
 * is what `[cache.redis]` was written for: say so when there is something to cache.
 */
function checkCacheIntegrity(input: Partial<ConfigInput>, ctx: ReadContext): void {
  const redis = input.cache?.redis;
  if (redis === undefined || redis.hmac_key !== undefined) return;
  const cached: string[] = [];
  if (Object.keys(input.auth?.oidc ?? {}).length > 0) cached.push('OIDC signing keys');
  if (Object.values(input.auth?.webhook ?? {}).some((webhook) => webhook.cache_ttl > 0)) {
    cached.push('authorization webhook decisions');
  }
  if (cached.length === 0) return;
  ctx.warn(
    ['cache', 'redis', 'hmac_key'],
    `not set: ${cached.join(' and ')} are cached in each process only, not shared through Redis; ` +
      'set the same long random secret on every replica to share them (openssl rand -hex 32)',
  );
}

function tableOf(path: KeyPath): string {
  return `[${formatKeyPath(path)}]`;
}
