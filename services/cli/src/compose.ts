import { hostname } from 'node:os';
import { createAuth } from '@angos/auth';
import type { Config, S3ConnectionConfig } from '@angos/config';
import { isPullThroughNamespace, lockBackend } from '@angos/config';
import { buildGateway } from '@angos/gateway';
import { type Handler, healthHandler } from '@angos/http';
import {
  instrumentLocks,
  type LockBackend,
  type LockManager,
  LockUnsupportedError,
  MemoryLockManager,
} from '@angos/lock';
import type { Logger, Metrics } from '@angos/observability';
import { buildPullThroughCache } from '@angos/pull-through-cache';
import { createRegistry, type Registry } from '@angos/registry';
import { buildRegistryApi } from '@angos/registry-api';
import { createReplicationEvents } from '@angos/replication';
import {
  type BlobBackendOptions,
  type BlobStore,
  type MetadataBackendOptions,
  type MetadataStore,
  type OpenStoresOptions,
  openBlobStore,
  openMetadataStore,
  type S3ConnectionOptions,
  withLinkCache,
} from '@angos/storage';
import type { PullThroughCache } from '@angos/upstream';
import { startBackgroundGc } from './background-gc.js';
import { CliError } from './errors.js';
import {
  acquireInstanceLock,
  type InstanceLock,
  InstanceLockHeldError,
  type InstanceLockOptions,
} from './instance-lock.js';
import { type ServerJobs, startServerJobs } from './server-jobs.js';

/**
 * Builds the application of each command from the configuration. No listening, and no I/O beyond
 * opening the storage (an S3 backend is checked: bucket and credentials): tests build these
 * in-process.
 */

export interface AppDeps {
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** False while the process drains before exiting, so /readyz turns traffic away first. */
  readonly accepting: () => boolean;
}

export interface App {
  readonly handler: Handler;
  /**
   * Stops the background work that takes time to wind down (the in-process job drain), waiting up
   * to `graceMs` for it; runs while requests drain, before `close`.
   */
  readonly quiesce?: (graceMs: number) => Promise<void>;
  /** Releases what the application holds open (connections to Redis, webhooks), after draining. */
  readonly close?: () => Promise<void>;
}

function s3Connection(s3: S3ConnectionConfig): S3ConnectionOptions {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    accessKeyId: s3.access_key_id,
    secretAccessKey: s3.secret_key,
    keyPrefix: s3.key_prefix,
    maxAttempts: s3.max_attempts,
    operationTimeoutSecs: s3.operation_timeout_secs,
    operationAttemptTimeoutSecs: s3.operation_attempt_timeout_secs,
  };
}

function blobBackendOf(store: Config['blob_store']): BlobBackendOptions {
  if (store.fs) return { kind: 'fs', rootDir: store.fs.root_dir, syncToDisk: store.fs.sync_to_disk };
  const s3 = store.s3;
  return {
    kind: 's3',
    ...s3Connection(s3),
    multipartPartSize: s3.multipart_part_size,
    multipartCopyThreshold: s3.multipart_copy_threshold,
    multipartCopyChunkSize: s3.multipart_copy_chunk_size,
    multipartCopyJobs: s3.multipart_copy_jobs,
    multipartUniformParts: s3.multipart_uniform_parts,
  };
}

function metadataBackendOf(store: Config['metadata_store']): MetadataBackendOptions {
  if (store.fs) return { kind: 'fs', rootDir: store.fs.root_dir, syncToDisk: store.fs.sync_to_disk };
  const s3 = store.s3;
  const declared = s3.capabilities;
  return {
    kind: 's3',
    ...s3Connection(s3),
    linkCacheTtlSecs: s3.link_cache_ttl,
    accessTimeDebounceSecs: s3.access_time_debounce_secs,
    // Undeclared capabilities (or all, without the table) are probed when the store opens.
    capabilities: declared && {
      putIfNoneMatch: declared.put_if_none_match,
      putIfMatch: declared.put_if_match,
      deleteIfMatch: declared.delete_if_match,
    },
  };
}

export function storesOptions(config: Config): OpenStoresOptions {
  return { blob: blobBackendOf(config.blob_store), metadata: metadataBackendOf(config.metadata_store) };
}

/** Opens one store; a failure (bucket missing, credentials refused…) names the section it comes from. */
async function openSection<Store>(section: string, open: () => Promise<Store>): Promise<Store> {
  try {
    return await open();
  } catch (error) {
    throw new CliError([`${section}: ${error instanceof Error ? error.message : String(error)}`]);
  }
}

export interface StorageFromConfig {
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  /** Writes deferred metadata (pull times) and releases connections. */
  close(): Promise<void>;
}

/**
 * How long links (tags, revisions, grants) and listings read from fs metadata stay cached when
 * this process is their only writer (the memory lock strategy allows one writing process, and the
 * instance lock keeps a second one out: holdInstanceLock). Its own writes invalidate at once; the
 * bound is for what edits the tree behind the registry's back (an operator's hands). Shared
 * filesystems (Redis locks) are not cached: another replica's tag push must show at once.
 */
const SINGLE_WRITER_LINK_CACHE_TTL_SECS = 5;

/** How a process uses the storage it opens. */
export interface StorageUse {
  /**
   * Cache links and listings (fs metadata, memory lock strategy; see below). Off for `angos
   * scrub`: it reads each key about once, and its decisions must see what the server just wrote.
   */
  readonly cacheLinks?: boolean;
}

/** The blob and metadata stores the configuration names, opened and checked. */
export async function openStorage(
  config: Config,
  logger: Logger,
  use: StorageUse = {},
): Promise<StorageFromConfig> {
  const options = storesOptions(config);
  const blobSection = config.blob_store.fs ? 'blob_store.fs' : 'blob_store.s3';
  const metadataSection = config.metadata_store.fs ? 'metadata_store.fs' : 'metadata_store.s3';
  const blobs = await openSection(blobSection, () => openBlobStore(options.blob));
  let metadata: MetadataStore;
  try {
    metadata = await openSection(metadataSection, () =>
      openMetadataStore(options.metadata, logger.child('storage')),
    );
    if (
      (use.cacheLinks ?? true) &&
      options.metadata.kind === 'fs' &&
      lockStrategyOf(config).backend === 'memory'
    ) {
      metadata = withLinkCache(metadata, SINGLE_WRITER_LINK_CACHE_TTL_SECS, { lists: true });
    }
  } catch (error) {
    await blobs.close?.();
    throw error;
  }
  return {
    blobs,
    metadata,
    async close() {
      await metadata.close?.();
      await blobs.close?.();
    },
  };
}

/** The metadata store's lock strategy, where the configuration puts it, with the key naming it. */
function lockStrategyOf(config: Config) {
  const store = config.metadata_store;
  const strategy = store.fs !== undefined ? store.fs.lock_strategy : store.s3.lock_strategy;
  const backend = lockBackend(strategy);
  const key = `metadata_store.${store.fs !== undefined ? 'fs' : 's3'}.lock_strategy${backend === 'memory' ? '' : `.${backend}`}`;
  return { store, strategy, backend, key };
}

/** The processes that write the storage, as the instance lock names its holder. */
export type WritingCommand = 'server' | 'registry-api' | 'pull-through-cache' | 'scrub';

/** What the operator can do when the instance lock is held, by the command refused. */
const HELD_ADVICE: Readonly<Record<WritingCommand, string>> = {
  server:
    'Stop that process first, or configure [metadata_store.fs.lock_strategy.redis] on every process to run several on one directory.',
  'registry-api':
    'Stop that process first, or configure [metadata_store.fs.lock_strategy.redis] on every process to run several on one directory.',
  'pull-through-cache':
    'Stop that process first, or configure [metadata_store.fs.lock_strategy.redis] on every process to run several on one directory.',
  scrub:
    'Stop the server while scrub repairs, or configure [metadata_store.fs.lock_strategy.redis] to scrub beside it; `angos scrub --dry-run` only reads and runs beside a server.',
};

/**
 * The instance lock of a process that writes fs metadata under the `"memory"` lock strategy
 * (instance-lock.ts): one such process per directory. Undefined with a shared lock strategy
 * (Redis: its locks exclude across processes) and on S3 metadata: there no pid can be asked (the
 * processes of a bucket run on different hosts), so the lock would be an object every server
 * rewrites every few seconds, billed and rate-limited, to tell a crashed holder from a live one;
 * the S3 lock strategy already does that per lock, and is what runs several processes. Throws a
 * CliError naming the lock strategy's key when another live process holds it.
 */
export async function holdInstanceLock(
  config: Config,
  command: WritingCommand,
  logger: Logger,
  options: InstanceLockOptions = {},
): Promise<InstanceLock | undefined> {
  const { store, backend, key } = lockStrategyOf(config);
  if (store.fs === undefined || backend !== 'memory') return undefined;
  try {
    return await acquireInstanceLock(store.fs.root_dir, `angos ${command}`, {
      onWait: (holder, waitMs) =>
        logger.warn('instance lock held by a process on another host; watching its heartbeat', {
          key,
          holder: holder.command,
          pid: holder.pid,
          host: holder.hostname,
          wait_ms: waitMs,
        }),
      onLost: (path) =>
        logger.error('instance lock lost: another process took it over, judging this one gone', {
          key,
          path,
        }),
      ...options,
    });
  } catch (error) {
    if (!(error instanceof InstanceLockHeldError)) throw error;
    const { holder, root, path } = error;
    const since = holder.since === '' ? '' : `, since ${holder.since}`;
    const lines = [
      `${key}: the "memory" lock strategy allows one angos process to write ${root}, and ` +
        `${holder.command} (pid ${holder.pid} on ${holder.hostname}${since}) holds it`,
      HELD_ADVICE[command],
    ];
    if (holder.hostname !== hostname()) {
      lines.push(`That process runs on another host and still renews its lock (${path}).`);
    }
    throw new CliError(lines);
  }
}

/**
 * Lock backends by the name the configuration gives them (STYLE.md #8). The distributed ones are
 * imported when configured: ioredis and the AWS SDK cost ~20 MiB of memory each.
 */
const LOCK_BACKENDS: Readonly<Record<LockBackend, (config: Config, logger: Logger) => Promise<LockManager>>> =
  {
    memory: async () => new MemoryLockManager(),
    redis: async (config, logger) => {
      const { strategy } = lockStrategyOf(config);
      if (strategy === 'memory' || !('redis' in strategy)) throw new Error('not a redis lock strategy');
      const redis = strategy.redis;
      const { RedisLockManager } = await import('@angos/lock/redis');
      return new RedisLockManager({
        url: redis.url,
        ttlSecs: redis.ttl,
        keyPrefix: redis.key_prefix,
        maxRetries: redis.max_retries,
        retryDelayMs: redis.retry_delay_ms,
        logger,
      });
    },
    s3: async (config, logger) => {
      const { store, strategy, key } = lockStrategyOf(config);
      // The configuration refuses S3 locks on fs metadata; this is the same rule, for the types.
      if (store.s3 === undefined || strategy === 'memory' || !('s3' in strategy)) {
        throw new Error('not an S3 lock strategy on S3 metadata');
      }
      const lock = strategy.s3;
      const { S3LockManager } = await import('@angos/lock/s3');
      const locks = new S3LockManager({
        ...s3Connection(store.s3),
        // The lock's own client: its tight timeouts, not the metadata store's.
        operationTimeoutSecs: lock.operation_timeout_secs,
        operationAttemptTimeoutSecs: lock.operation_attempt_timeout_secs,
        maxAttempts: lock.max_attempts,
        ttlSecs: lock.ttl_secs,
        maxRetries: lock.max_retries,
        retryDelayMs: lock.retry_delay_ms,
        maxHoldSecs: lock.max_hold_secs,
        deleteIfMatch: store.s3.capabilities?.delete_if_match,
        logger,
      });
      // The provider's conditional writes are checked first: startup fails, naming the key, without them.
      try {
        await locks.ready();
      } catch (error) {
        await locks.close();
        const reason =
          error instanceof LockUnsupportedError ? error.message : `S3 lock check failed: ${String(error)}`;
        throw new CliError([`${key}: ${reason}`]);
      }
      return locks;
    },
  };

/**
 * The configured lock manager, instrumented with the lock metrics. Built once: changing the lock
 * strategy requires a restart.
 */
export async function createLocks(
  config: Config,
  deps: { logger: Logger; metrics: Metrics },
): Promise<LockManager> {
  const { backend } = lockStrategyOf(config);
  const locks = await LOCK_BACKENDS[backend](config, deps.logger.child('lock'));
  return instrumentLocks(locks, deps.metrics);
}

/** The registry core over the configured storage and locks; `storage.close()` releases both. */
export async function openRegistry(
  deps: Pick<AppDeps, 'config' | 'logger' | 'metrics'>,
  use: StorageUse = {},
): Promise<{ registry: Registry; storage: StorageFromConfig; locks: LockManager }> {
  const initial = deps.config();
  const opened = await openStorage(initial, deps.logger, use);
  let locks: LockManager;
  try {
    locks = await createLocks(initial, deps);
  } catch (error) {
    await opened.close();
    throw error;
  }
  // The locks close with the storage they guard, once requests have drained.
  const storage: StorageFromConfig = {
    ...opened,
    async close() {
      await locks.close();
      await opened.close();
    },
  };
  const registry = createRegistry({
    blobs: storage.blobs,
    metadata: storage.metadata,
    locks,
    config: deps.config,
    logger: deps.logger,
  });
  return { registry, storage, locks };
}

/**
 * The registry of a serving process, with garbage collection and the job queue running beside
 * the requests (never inside them); both stop before the storage closes.
 */
async function createRegistryFromConfig(
  deps: AppDeps,
  command: 'server' | 'registry-api' | 'pull-through-cache',
): Promise<{ registry: Registry; storage: StorageFromConfig; jobs: ServerJobs; cache: PullThroughCache }> {
  // Before anything is opened: a second process on the directory stops with nothing to undo.
  const instance = await holdInstanceLock(deps.config(), command, deps.logger);
  let opened: Awaited<ReturnType<typeof openRegistry>>;
  try {
    opened = await openRegistry(deps);
  } catch (error) {
    await instance?.release();
    throw error;
  }
  const { registry, storage, locks } = opened;
  let jobs: ServerJobs;
  try {
    jobs = await startServerJobs({ ...deps, registry, metadata: storage.metadata, locks });
  } catch (error) {
    await storage.close();
    await instance?.release();
    throw error;
  }
  const gc = startBackgroundGc(registry, deps.config, deps.logger.child('angos::gc'));
  return {
    registry,
    jobs,
    cache: jobs.cache,
    storage: {
      ...storage,
      async close() {
        await gc.stop();
        await jobs.stop(0); // after quiesce: returns at once; otherwise cancels what still runs
        await jobs.cache.close();
        await storage.close();
        // Last: deferred writes (pull times) are on disk before another process may start.
        await instance?.release();
      },
    },
  };
}

function readiness(deps: AppDeps, registry?: Registry): () => Promise<boolean> {
  return async () => deps.accepting() && (registry === undefined || (await registry.ready()));
}

/**
 * `angos server`: gateway, registry-api and the pull-through cache in one process, no hop between
 * them. The gateway sends the namespaces of repositories with upstreams to the cache.
 */
export async function composeServer(deps: AppDeps): Promise<App> {
  const { registry, storage, jobs, cache } = await createRegistryFromConfig(deps, 'server');
  const api = buildRegistryApi({
    registry,
    jobs: jobs.queue,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'in-process' },
    replication: createReplicationEvents({ config: deps.config, enqueue: jobs.enqueue, logger: deps.logger }),
  });
  const auth = createAuth({ config: deps.config, logger: deps.logger, metrics: deps.metrics });
  const handler = buildGateway({
    auth,
    config: deps.config,
    logger: deps.logger.child('gateway'),
    metrics: deps.metrics,
    upstream: { kind: 'in-process', handler: api },
    pullThroughCache: {
      handles: (namespace) => cache.handles(namespace),
      upstream: {
        kind: 'in-process',
        handler: buildPullThroughCache({
          cache,
          config: deps.config,
          logger: deps.logger,
          trust: { kind: 'in-process' },
        }),
      },
    },
    ready: readiness(deps, registry),
  });
  return {
    handler,
    quiesce: (graceMs) => jobs.stop(graceMs),
    async close() {
      await auth.close();
      await storage.close();
    },
  };
}

/** `angos registry-api`: the OCI API, accepting only requests the gateway vouches for. */
export async function composeRegistryApi(deps: AppDeps, internalToken: string): Promise<App> {
  const { registry, storage, jobs } = await createRegistryFromConfig(deps, 'registry-api');
  const api = buildRegistryApi({
    registry,
    jobs: jobs.queue,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'internal-token', token: internalToken },
    replication: createReplicationEvents({ config: deps.config, enqueue: jobs.enqueue, logger: deps.logger }),
  });
  return {
    handler: healthHandler(api, {
      metrics: deps.metrics,
      logger: deps.logger,
      ready: readiness(deps, registry),
    }),
    quiesce: (graceMs) => jobs.stop(graceMs),
    close: () => storage.close(),
  };
}

/**
 * `angos pull-through-cache`: the namespaces of repositories with upstreams, accepting only requests
 * the gateway vouches for (split deployment).
 */
export async function composePullThroughCache(deps: AppDeps, internalToken: string): Promise<App> {
  const { registry, storage, jobs, cache } = await createRegistryFromConfig(deps, 'pull-through-cache');
  const service = buildPullThroughCache({
    cache,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'internal-token', token: internalToken },
  });
  return {
    handler: healthHandler(service, {
      metrics: deps.metrics,
      logger: deps.logger,
      ready: readiness(deps, registry),
    }),
    quiesce: (graceMs) => jobs.stop(graceMs),
    close: () => storage.close(),
  };
}

/** Where the split gateway forwards: registry-api, and the pull-through cache service when configured. */
export interface GatewayRoutes {
  readonly registryApiUrl: string;
  /** Absent: no repository has an upstream (startup checks that). */
  readonly pullThroughCacheUrl?: string | undefined;
  readonly internalToken: string;
}

/**
 * `angos gateway`: the public edge, forwarding over HTTP to registry-api, and the namespaces of
 * pull-through repositories to the pull-through cache service; both hops signed alike.
 */
export function composeGateway(deps: AppDeps, routes: GatewayRoutes): App {
  const auth = createAuth({ config: deps.config, logger: deps.logger, metrics: deps.metrics });
  const { internalToken, pullThroughCacheUrl } = routes;
  const handler = buildGateway({
    auth,
    config: deps.config,
    logger: deps.logger.child('gateway'),
    metrics: deps.metrics,
    upstream: { kind: 'http', url: routes.registryApiUrl, internalToken },
    pullThroughCache:
      pullThroughCacheUrl === undefined
        ? undefined
        : {
            handles: (namespace) => isPullThroughNamespace(deps.config(), namespace),
            upstream: { kind: 'http', url: pullThroughCacheUrl, internalToken },
          },
    ready: readiness(deps),
  });
  return { handler, close: () => auth.close() };
}
