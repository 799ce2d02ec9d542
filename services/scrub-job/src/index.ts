import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import type { GcReport, Registry } from '@angos/registry';
import {
  checksFor,
  type FsRoots,
  logSummary,
  type PlannedAction,
  type ProgressOutput,
  runScrub,
  type ScrubSelection,
  type ScrubSummary,
} from '@angos/scrub';
import type { BlobStore, MetadataStore } from '@angos/storage';

/**
 * The scrub job: what `angos scrub` runs, from a shell, cron or a Kubernetes CronJob. A thin
 * wiring: the checks are libs/scrub's, the garbage-collection pass libs/registry's; this decides
 * their order, folds their outcomes into one summary line and one exit status.
 */

/** What one run is asked to do (the flags of `angos scrub`). */
export interface ScrubJobRequest extends ScrubSelection {
  readonly dryRun: boolean;
  /** `--uploads <duration>`, in milliseconds. */
  readonly uploadsOlderThanMs?: number | undefined;
  /** `--orphan-grants <duration>`, in milliseconds. */
  readonly orphanGrantsOlderThanMs?: number | undefined;
  /**
   * `--blobs`: one garbage-collection pass with this grace period (`[gc] grace_period_secs`), after
   * the checks (the selection's `blobs`, the re-hash and index checks, runs last among them).
   */
  readonly collectGarbage?: { readonly gracePeriodMs: number } | undefined;
}

/** The opened storage, locks and registry core of the configuration. */
export interface ScrubJobDeps {
  readonly registry: Registry;
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  readonly locks: LockManager;
  readonly logger: Logger;
  readonly fsRoots: FsRoots;
  /** The terminal for progress (stderr); nothing is drawn when it is not a TTY. */
  readonly progress?: ProgressOutput | undefined;
  readonly now?: (() => number) | undefined;
  /** Hears every action planned (tests). */
  readonly onAction?: ((action: PlannedAction) => void) | undefined;
  /** Stops the run as a killed scrub stops (a hand-off whose client went away); it then rejects. */
  readonly signal?: AbortSignal | undefined;
}

export interface ScrubJobResult {
  readonly summary: ScrubSummary;
  /** 0: the store is healthy or was repaired; 1: a check or a repair failed. */
  readonly exitCode: 0 | 1;
}

/**
 * Runs the checks asked for (libs/scrub `checksFor` order), then the garbage-collection pass,
 * after them, so that it prunes the references of the revisions they removed. Logs one summary
 * line for the whole run.
 */
export async function runScrubJob(deps: ScrubJobDeps, request: ScrubJobRequest): Promise<ScrubJobResult> {
  const now = deps.now ?? Date.now;
  const summary = await runScrub(
    checksFor(request),
    {
      metadata: deps.metadata,
      blobs: deps.blobs,
      registry: deps.registry,
      locks: deps.locks,
      logger: deps.logger,
      now,
      options: {
        uploadsOlderThanMs: request.uploadsOlderThanMs,
        orphanGrantsOlderThanMs: request.orphanGrantsOlderThanMs,
      },
      fsRoots: deps.fsRoots,
    },
    {
      dryRun: request.dryRun,
      progress: deps.progress,
      onAction: deps.onAction,
      summaryLine: false,
      signal: deps.signal,
    },
  );
  if (request.collectGarbage) {
    const report = await collectGarbage(deps, request.collectGarbage.gracePeriodMs, request.dryRun, now);
    summary.repairs += report.grantsRevoked + report.blobsDeleted + report.refsPruned;
    summary.keysWalked += report.entriesScanned;
    summary.failures += report.errors;
  }
  logSummary(deps.logger, summary, request.dryRun);
  return { summary, exitCode: summary.failures > 0 ? 1 : 0 };
}

async function collectGarbage(
  deps: ScrubJobDeps,
  gracePeriodMs: number,
  dryRun: boolean,
  now: () => number,
): Promise<GcReport> {
  try {
    const report = await deps.registry.collectGarbage({ gracePeriodMs, dryRun, now, signal: deps.signal });
    deps.signal?.throwIfAborted();
    deps.logger.info('blob scrub finished', { ...report, dry_run: dryRun });
    return report;
  } catch (error) {
    if (deps.signal?.aborted) throw error;
    deps.logger.error('scrub check failed', { check: 'blobs', error: String(error) });
    return { entriesScanned: 0, grantsRevoked: 0, blobsDeleted: 0, refsPruned: 0, errors: 1 };
  }
}
