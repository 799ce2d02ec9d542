import { hostname } from 'node:os';
import type { Config, S3ConnectionConfig } from '@angos/config';
import { lockBackend } from '@angos/config';
import {
  instrumentLocks,
  type LockBackend,
  type LockManager,
  LockUnsupportedError,
  MemoryLockManager,
} from '@angos/lock';
import type { Logger, Metrics } from '@angos/observability';
import { createRegistry, type Registry } from '@angos/registry';
import {
  type BlobBackendOptions,
  type BlobStore,
  instrumentBlobStore,
  instrumentMetadataStore,
  type LinkCacheVersions,
  type MetadataBackendOptions,
  type MetadataStore,
  type OpenStoresOptions,
  openBlobStore,
  openMetadataStore,
  type S3ConnectionOptions,
  withLinkCache,
} from '@angos/storage';
import { CliError } from './errors.js';
import {
  acquireInstanceLock,
  type InstanceLock,
  InstanceLockHeldError,
  type InstanceLockOptions,
} from './instance-lock.js';

/**
 * Opens what every command that touches the registry needs, from the configuration: the blob and
 * metadata stores (checked), the lock manager of the `[metadata_store]` lock strategy, the
 * registry core over them, and the instance lock of a single-process filesystem store. The
 * services (compose.ts), `angos worker` and `angos scrub` share it.
 */

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
  /**
   * The lock manager to use instead of the configured strategy's: a serving thread's line to
   * the lock table its main thread keeps (`"memory"` strategy, `[server] workers` above 1).
   */
  readonly locks?: LockManager | undefined;
  /** The link cache version table every serving thread of the service shares (LinkCacheVersions). */
  readonly linkCacheVersions?: LinkCacheVersions | undefined;
}

/**
 * The blob and metadata stores the configuration names, opened and checked, and instrumented
 * (storage metrics, and spans when tracing is on) below the fs link cache: a cached answer is not
 * a storage operation. (The S3 metadata store's own link cache sits inside it: its hits count.)
 */
export async function openStorage(
  config: Config,
  deps: { readonly logger: Logger; readonly metrics: Metrics },
  use: StorageUse = {},
): Promise<StorageFromConfig> {
  const { logger, metrics } = deps;
  const configured = storesOptions(config);
  // The S3 store's own link cache shares the serving threads' version table too.
  const options =
    configured.metadata.kind === 's3' && use.linkCacheVersions !== undefined
      ? { ...configured, metadata: { ...configured.metadata, linkCacheVersions: use.linkCacheVersions } }
      : configured;
  const blobSection = config.blob_store.fs ? 'blob_store.fs' : 'blob_store.s3';
  const metadataSection = config.metadata_store.fs ? 'metadata_store.fs' : 'metadata_store.s3';
  const blobs = instrumentBlobStore(
    await openSection(blobSection, () => openBlobStore(options.blob)),
    metrics,
  );
  let metadata: MetadataStore;
  try {
    metadata = instrumentMetadataStore(
      await openSection(metadataSection, () => openMetadataStore(options.metadata, logger.child('storage'))),
      metrics,
    );
    if (
      (use.cacheLinks ?? true) &&
      options.metadata.kind === 'fs' &&
      lockStrategyOf(config).backend === 'memory'
    ) {
      metadata = withLinkCache(metadata, SINGLE_WRITER_LINK_CACHE_TTL_SECS, {
        lists: true,
        versions: use.linkCacheVersions,
      });
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

/** The instance lock refused a process: the lines to print, and who holds it. */
export class InstanceLockRefusal extends CliError {
  constructor(
    lines: readonly string[],
    readonly held: InstanceLockHeldError,
    /** Whether the holder runs on this host (a scrub can hand its run only to such a one). */
    readonly onThisHost: boolean,
  ) {
    super(lines);
  }
}

/**
 * The instance lock of a process that writes fs metadata under the `"memory"` lock strategy
 * (instance-lock.ts): one such process per directory. Undefined with a shared lock strategy
 * (Redis: its locks exclude across processes) and on S3 metadata: there no pid can be asked (the
 * processes of a bucket run on different hosts), so the lock would be an object every server
 * rewrites every few seconds, billed and rate-limited, to tell a crashed holder from a live one;
 * the S3 lock strategy already does that per lock, and is what runs several processes. Throws a
 * CliError (InstanceLockRefusal) naming the lock strategy's key when another live process holds it.
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
    const onThisHost = holder.hostname === hostname();
    if (!onThisHost) {
      lines.push(`That process runs on another host and still renews its lock (${path}).`);
    }
    throw new InstanceLockRefusal(lines, error, onThisHost);
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
  deps: { readonly config: () => Config; readonly logger: Logger; readonly metrics: Metrics },
  use: StorageUse = {},
): Promise<{ registry: Registry; storage: StorageFromConfig; locks: LockManager }> {
  const initial = deps.config();
  const opened = await openStorage(initial, deps, use);
  let locks: LockManager;
  try {
    locks =
      use.locks === undefined ? await createLocks(initial, deps) : instrumentLocks(use.locks, deps.metrics);
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
