import type { Config } from '@angos/config';
import { type Enqueue, type JobOutcome, JobQueue, JobRunner } from '@angos/jobs';
import type { LockManager } from '@angos/lock';
import type { Logger, Metrics } from '@angos/observability';
import type { Registry } from '@angos/registry';
import { REPLICATION_QUEUE, replicationHandler } from '@angos/replication';
import type { MetadataStore } from '@angos/storage';
import { jobPools } from './jobs.js';

/** Between two looks at the queue for jobs another process runs. */
const SETTLE_CHECK_MS = 1000;
/**
 * A job of the run that waits for a retry due within this long is waited for (it was joined
 * while backing off after its downstream failed: the downstream is likely back); a later one is
 * left to its retry.
 */
const RETRY_WAIT_MS = 30_000;
/** How long the jobs in flight get once every tracked job is settled (they are others' jobs). */
const STOP_GRACE_MS = 60_000;

export interface ReplicationDrainDeps {
  readonly config: Config;
  readonly registry: Registry;
  readonly metadata: MetadataStore;
  readonly locks: LockManager;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Stops the drain (a handed-off run whose client went away): the jobs left run later. */
  readonly signal?: AbortSignal | undefined;
}

/** The jobs a `scrub --replicate` run enqueued (or joined), by id. */
export class TrackedEnqueue {
  readonly ids = new Set<string>();
  readonly enqueue: Enqueue;

  constructor(queue: JobQueue) {
    this.enqueue = async (...args) => {
      const result = await queue.enqueue(...args);
      this.ids.add(result.id);
      return result;
    };
  }
}

export interface ReplicationDrainResult {
  /** Jobs of the run whose run here failed: retried later, or dead-lettered. */
  readonly failed: number;
  readonly outcomes: Readonly<Partial<Record<JobOutcome, number>>>;
}

/**
 * The end-of-run drain of `angos scrub --replicate`: runs the replication queue, as a worker
 * does (pool of `max_concurrent_replication_jobs`), until every job the run enqueued or joined
 * is settled: run here (completed, retried, dead-lettered), or no longer due in the queue
 * (another worker or server ran it, or it waits for a retry more than `RETRY_WAIT_MS` away).
 * Other ready jobs of the queue are run too, in queue order. With `[global.job_queue]` and
 * workers running, they share the work.
 */
export async function drainReplication(
  deps: ReplicationDrainDeps,
  ids: ReadonlySet<string>,
): Promise<ReplicationDrainResult> {
  const logger = deps.logger.child('angos::replication');
  const queue = new JobQueue({ store: deps.metadata, logger });
  const settled = new Set<string>();
  const failed = new Set<string>();
  const outcomes: Partial<Record<JobOutcome, number>> = {};
  const runner = new JobRunner({
    queue,
    locks: deps.locks,
    pools: jobPools(deps.config, [REPLICATION_QUEUE]),
    handlers: [
      replicationHandler({ config: deps.config, registry: deps.registry, logger, metrics: deps.metrics }),
    ],
    pollIntervalMs: 250,
    maxIdleWaitMs: SETTLE_CHECK_MS,
    logger,
    onJobFinished: ({ id, outcome }) => {
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (outcome !== 'cancelled') settled.add(id);
      if (ids.has(id) && (outcome === 'retried' || outcome === 'dead_lettered')) failed.add(id);
    },
  });
  logger.info('replication drain started', { jobs: ids.size });
  runner.start();
  try {
    while (deps.signal?.aborted !== true && [...ids].some((id) => !settled.has(id))) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_CHECK_MS));
      const due = await dueIds(queue, RETRY_WAIT_MS);
      for (const id of ids) {
        if (!due.has(id)) settled.add(id);
      }
    }
  } finally {
    await runner.stop(STOP_GRACE_MS);
  }
  logger.info('replication drain finished', { jobs: ids.size, ...outcomes });
  return { failed: failed.size, outcomes };
}

/** Ids of the pending jobs due within `withinMs` (running ones included): one listing of names. */
async function dueIds(queue: JobQueue, withinMs: number): Promise<Set<string>> {
  const horizon = queue.now() + withinMs;
  const due = new Set<string>();
  for (const { id, notBeforeMs } of await queue.pendingNames(REPLICATION_QUEUE)) {
    if (notBeforeMs <= horizon) due.add(id);
  }
  return due;
}
