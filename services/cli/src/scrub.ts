import { RuleFailureLog } from '@angos/auth/cel';
import { type Config, formatIssue } from '@angos/config';
import { JobQueue } from '@angos/jobs';
import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import { createMetrics } from '@angos/observability';
import type { Registry } from '@angos/registry';
import {
  compileRetentionPolicies,
  type ProgressOutput,
  RetentionCompileError,
  type RetentionSettings,
} from '@angos/scrub';
import { runScrubJob, type ScrubJobRequest, type ScrubJobResult } from '@angos/scrub-job';
import type { BlobStore, MetadataStore } from '@angos/storage';
import { commandSpec } from './commands/flags.js';
import { parseDurationMs } from './duration.js';
import { CliError } from './errors.js';
import { openRegistry, storesOptions } from './open-storage.js';
import { drainReplication, TrackedEnqueue } from './replication-drain.js';

/** Seconds in a scrub `<duration>` (`1h`, `30m`, `2d`, `1h30m`); CliError naming the flag otherwise. */
export function parseDuration(flag: string, text: string): number {
  return parseDurationMs(flag, text) / 1000;
}

export interface MultipartScrubResult {
  readonly found: number;
  readonly aborted: number;
}

/**
 * `scrub --multipart <duration>`: aborts the S3 multipart uploads older than
 * the duration that no live upload session owns (or, with `dryRun`, only
 * lists them). A filesystem blob store has none.
 */
export async function scrubMultipart(
  config: Config,
  olderThanSecs: number,
  dryRun: boolean,
  logger: Logger,
  signal?: AbortSignal,
): Promise<MultipartScrubResult> {
  const options = storesOptions(config).blob;
  if (options.kind !== 's3') {
    logger.info('no multipart uploads to scrub: the blob store is not S3');
    return { found: 0, aborted: 0 };
  }
  // Loaded here, not at startup: the AWS SDK is only needed when a scrub of S3 runs.
  const { openS3MultipartCleanup } = await import('@angos/storage/s3');
  const cleanup = await openS3MultipartCleanup(options).catch((error: unknown) => {
    throw new CliError([`blob_store.s3: ${error instanceof Error ? error.message : String(error)}`]);
  });
  try {
    const cutoff = new Date(Date.now() - olderThanSecs * 1000);
    let found = 0;
    let aborted = 0;
    for await (const orphan of cleanup.orphans(cutoff)) {
      signal?.throwIfAborted();
      found++;
      const fields = {
        key: orphan.key,
        upload_id: orphan.uploadId,
        initiated: orphan.initiated?.toISOString(),
      };
      if (dryRun) {
        logger.info('orphan multipart upload (dry run: kept)', fields);
        continue;
      }
      await cleanup.abort(orphan);
      aborted++;
      logger.info('orphan multipart upload aborted', fields);
    }
    logger.info('multipart scrub finished', { found, aborted, dry_run: dryRun });
    return { found, aborted };
  } finally {
    cleanup.close();
  }
}

/** The checks of `angos scrub` that walk the registry's storage (all but `--multipart`). */
export type StoreScrubRequest = Omit<
  ScrubJobRequest,
  'collectGarbage' | 'retention' | 'orphanNamespaces' | 'cacheOrphans' | 'replicationOrphans' | 'replicate'
> & {
  readonly blobs?: boolean | undefined;
  readonly retention?: boolean | undefined;
  readonly orphanNamespaces?: boolean | undefined;
  readonly cacheOrphans?: boolean | undefined;
  readonly replicationOrphans?: boolean | undefined;
  readonly replicate?: boolean | undefined;
};

/**
 * `--retention`: the configuration's retention rules, compiled once for the run. A rule that does
 * not compile stops the run before anything is read, naming its key, as it stops the servers.
 */
function retentionSettings(config: Config, logger: Logger): RetentionSettings {
  try {
    return { config, policies: compileRetentionPolicies(config), failures: new RuleFailureLog(logger) };
  } catch (error) {
    if (error instanceof RetentionCompileError) throw new CliError(error.issues.map(formatIssue));
    throw error;
  }
}

/** The registry, stores and locks a scrub runs over. */
export interface ScrubStores {
  readonly registry: Registry;
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  readonly locks: LockManager;
}

/** Where a scrub runs and reports. */
export interface ScrubTarget {
  readonly config: Config;
  readonly logger: Logger;
  /** The terminal for progress (stderr); nothing is drawn when it is not a TTY. */
  readonly progress: ProgressOutput;
  /** A serving process's own registry (a hand-off); absent: opened from the configuration. */
  readonly stores?: ScrubStores | undefined;
  /** Stops the run as a killed scrub stops (a hand-off whose client went away). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * The checks that walk the storage, and `--blobs` (one garbage-collection pass, the protocol
 * `angos server` runs in the background): run by the scrub job (services/scrub-job) over the
 * storage and locks the configuration names, so every repair takes the locks the servers take
 * and is safe beside them. A `--replicate` run that enqueued jobs then drains them (end-of-run
 * drain): a job of the run that failed counts as a failure. Returns the job's outcome; the caller
 * turns it into the exit status. With `target.stores` (a run handed off to a server) it runs over those, in that process: the
 * server's link cache sees every repair, and its memory locks exclude its own requests.
 */
export async function scrubStore(request: StoreScrubRequest, target: ScrubTarget): Promise<ScrubJobResult> {
  const { config, logger } = target;
  const retention = request.retention ? retentionSettings(config, logger) : undefined;
  if (target.stores !== undefined) return runStoreScrub(request, target, target.stores, retention);
  const { registry, storage, locks } = await openRegistry(
    { config: () => config, logger, metrics: createMetrics() },
    { cacheLinks: false },
  );
  try {
    const stores = { registry, blobs: storage.blobs, metadata: storage.metadata, locks };
    return await runStoreScrub(request, target, stores, retention);
  } finally {
    await storage.close();
  }
}

async function runStoreScrub(
  request: StoreScrubRequest,
  target: ScrubTarget,
  stores: ScrubStores,
  retention: RetentionSettings | undefined,
): Promise<ScrubJobResult> {
  const { config, logger } = target;
  const {
    retention: _retention,
    orphanNamespaces,
    cacheOrphans,
    replicationOrphans,
    replicate,
    ...selection
  } = request;
  // Where the reconcile and replication counts go (the scrub's log has them too).
  const metrics = createMetrics();
  const tracked = new TrackedEnqueue(new JobQueue({ store: stores.metadata, logger }));
  const result = await runScrubJob(
    {
      ...stores,
      logger,
      fsRoots: { metadata: config.metadata_store.fs?.root_dir, blobs: config.blob_store.fs?.root_dir },
      progress: target.progress,
      signal: target.signal,
    },
    {
      ...selection,
      retention,
      // The repositories of the configuration own the namespaces kept.
      orphanNamespaces: orphanNamespaces ? { config } : undefined,
      // The repositories with upstreams keep their cache jobs.
      cacheOrphans: cacheOrphans ? { config } : undefined,
      // The downstreams of the configuration keep their replication jobs.
      replicationOrphans: replicationOrphans ? { config } : undefined,
      replicate: replicate ? { config, enqueue: tracked.enqueue, metrics } : undefined,
      collectGarbage: selection.blobs ? { gracePeriodMs: config.gc.grace_period_secs * 1000 } : undefined,
    },
  );
  if (tracked.ids.size === 0) return result;
  const drained = await drainReplication(
    { config, ...stores, logger, metrics, signal: target.signal },
    tracked.ids,
  );
  if (drained.failed === 0) return result;
  result.summary.failures += drained.failed;
  return { summary: result.summary, exitCode: 1 };
}

const SCRUB = commandSpec('scrub');

/** The flags of `angos scrub`, by name, as parsed (what a hand-off sends to the server). */
export type ScrubFlags = Readonly<Record<string, unknown>>;

/** The names of the flags of `angos scrub`, `--dry-run` included. */
export const SCRUB_FLAG_NAMES: readonly string[] = SCRUB.flags.map(({ name }) => name);

/**
 * The checks of the CLI reference this build cannot run yet: recognised, so that asking for one
 * says so instead of being rejected as an unknown option.
 */
const LATER_CHECKS = SCRUB.flags.filter((flag) => !flag.supported);

/** The flags that select a check (every supported one but `--dry-run`). */
const CHECK_FLAGS = SCRUB.flags.filter((flag) => flag.supported && flag.name !== 'dry-run');

/** One run of `angos scrub`, as its flags ask. */
export interface ScrubPlan {
  readonly dryRun: boolean;
  /** `--multipart <duration>`, in seconds. */
  readonly multipartSecs?: number | undefined;
  /** The checks that walk the storage; none when only `--multipart` was asked. */
  readonly store?: StoreScrubRequest | undefined;
}

/** The run the flags ask for; CliError for a check not supported yet, none asked, or a bad duration. */
export function planScrub(flags: ScrubFlags): ScrubPlan {
  const asked = (name: string) => flags[name] !== undefined && flags[name] !== false;
  const later = LATER_CHECKS.filter(({ name }) => asked(name));
  if (later.length > 0) throw new CliError(later.map(({ name }) => `not supported yet: scrub --${name}`));
  if (!CHECK_FLAGS.some(({ name }) => asked(name))) {
    throw new CliError([
      'specify which checks to run (e.g. -t -m -b, --uploads 1h, --multipart 24h); see `angos scrub --help`',
    ]);
  }
  const duration = (name: string) => {
    const value = flags[name];
    return value === undefined ? undefined : parseDuration(name, String(value));
  };
  const flag = (name: string) => (flags[name] === undefined ? undefined : flags[name] === true);
  const multipartSecs = duration('multipart');
  const uploadsSecs = duration('uploads');
  const orphanGrantsSecs = duration('orphan-grants');
  const dryRun = flags['dry-run'] === true;
  const walksStore = CHECK_FLAGS.some(({ name }) => name !== 'multipart' && asked(name));
  return {
    dryRun,
    multipartSecs,
    store: walksStore
      ? {
          dryRun,
          tags: flag('tags'),
          manifests: flag('manifests'),
          links: flag('links'),
          mediaTypes: flag('media-types'),
          referrers: flag('referrers'),
          retention: flag('retention'),
          uploads: uploadsSecs !== undefined,
          uploadsOlderThanMs: uploadsSecs === undefined ? undefined : uploadsSecs * 1000,
          blobs: flag('blobs'),
          reconcileBlobIndex: flag('reconcile-blob-index'),
          orphanGrants: orphanGrantsSecs !== undefined,
          orphanGrantsOlderThanMs: orphanGrantsSecs === undefined ? undefined : orphanGrantsSecs * 1000,
          orphanNamespaces: flag('orphan-namespaces'),
          cacheOrphans: flag('cache-orphans'),
          replicationOrphans: flag('replication-orphans'),
          replicate: flag('replicate'),
        }
      : undefined,
  };
}

/**
 * Runs a planned scrub: `--multipart` first, then the checks that walk the storage. The one
 * composition of `angos scrub`, whether it runs in its own process or handed off to a server.
 * Throws CliError when a check or a repair failed (each was logged with its key; the run went on).
 */
export async function executeScrub(plan: ScrubPlan, target: ScrubTarget): Promise<void> {
  if (plan.multipartSecs !== undefined) {
    await scrubMultipart(target.config, plan.multipartSecs, plan.dryRun, target.logger, target.signal);
  }
  if (plan.store === undefined) return;
  const { summary, exitCode } = await scrubStore(plan.store, target);
  if (exitCode !== 0) throw new CliError([`scrub: ${summary.failures} check(s) or repair(s) failed`]);
}
