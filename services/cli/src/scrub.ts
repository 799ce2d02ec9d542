import { RuleFailureLog } from '@angos/auth/cel';
import { type Config, formatIssue } from '@angos/config';
import type { Logger } from '@angos/observability';
import { createMetrics } from '@angos/observability';
import { compileRetentionPolicies, RetentionCompileError, type RetentionSettings } from '@angos/scrub';
import { runScrubJob, type ScrubJobRequest, type ScrubJobResult } from '@angos/scrub-job';
import { openRegistry, storesOptions } from './compose.js';
import { parseDurationMs } from './duration.js';
import { CliError } from './errors.js';

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
  'collectGarbage' | 'retention' | 'orphanNamespaces' | 'cacheOrphans'
> & {
  readonly blobs?: boolean | undefined;
  readonly retention?: boolean | undefined;
  readonly orphanNamespaces?: boolean | undefined;
  readonly cacheOrphans?: boolean | undefined;
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

/**
 * The checks that walk the storage, and `--blobs` (one garbage-collection pass, the protocol
 * `angos server` runs in the background): run by the scrub job (services/scrub-job) over the
 * storage and locks the configuration names, so every repair takes the locks the servers take
 * and is safe beside them. Returns the job's outcome; the caller turns it into the exit status.
 */
export async function scrubStore(
  config: Config,
  request: StoreScrubRequest,
  logger: Logger,
): Promise<ScrubJobResult> {
  const retention = request.retention ? retentionSettings(config, logger) : undefined;
  const { registry, storage, locks } = await openRegistry(
    { config: () => config, logger, metrics: createMetrics() },
    { cacheLinks: false },
  );
  try {
    const { retention: _retention, orphanNamespaces, cacheOrphans, ...selection } = request;
    return await runScrubJob(
      {
        registry,
        blobs: storage.blobs,
        metadata: storage.metadata,
        locks,
        logger,
        fsRoots: { metadata: config.metadata_store.fs?.root_dir, blobs: config.blob_store.fs?.root_dir },
        progress: process.stderr,
      },
      {
        ...selection,
        retention,
        // The repositories of the configuration own the namespaces kept.
        orphanNamespaces: orphanNamespaces ? { config } : undefined,
        // The repositories with upstreams keep their cache jobs.
        cacheOrphans: cacheOrphans ? { config } : undefined,
        collectGarbage: selection.blobs ? { gracePeriodMs: config.gc.grace_period_secs * 1000 } : undefined,
      },
    );
  } finally {
    await storage.close();
  }
}
