import { type Logger, type Metrics, silentLogger } from '@angos/observability';
import { type PendingAgeGauge, PendingAgeTracker } from './pending-ages.js';
import { type EnqueueOptions, type EnqueueResult, GAUGE_COUNT_CAP, type JobQueue } from './queue.js';
import type { JobFinished } from './runner.js';

/** Seconds; from a no-op job to a multi-gigabyte replication push. */
export const JOB_DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600] as const;

/**
 * The job queue metrics, in one place: the four of the configuration reference with its names
 * and labels, and the per-queue duration and outcome of the runs.
 */
function jobMetrics(metrics: Metrics) {
  return {
    pending: metrics.gauge({
      name: 'angos_job_queue_pending',
      help: `Jobs ready to run within [global.job_queue] pending_ready_horizon_secs, running ones included; counts up to ${GAUGE_COUNT_CAP}, deeper queues read as ${GAUGE_COUNT_CAP}`,
      labelNames: ['queue'],
    }),
    failed: metrics.gauge({
      name: 'angos_job_queue_failed',
      help: `Dead-lettered jobs; counts up to ${GAUGE_COUNT_CAP}, more read as ${GAUGE_COUNT_CAP}`,
      labelNames: ['queue'],
    }),
    enqueued: metrics.counter({
      name: 'angos_job_queue_enqueued_total',
      help: 'Jobs enqueued; dedup="hit" when the enqueue joined a pending job of the same lock key, "miss" otherwise',
      labelNames: ['queue', 'dedup'],
    }),
    enqueueFailures: metrics.counter({
      name: 'angos_job_queue_enqueue_failures_total',
      help: 'Enqueues that failed (the storage refused or could not be reached)',
      labelNames: ['queue'],
    }),
    duration: metrics.histogram({
      name: 'angos_job_duration_seconds',
      help: 'Time a job ran, from its start under its lock to its outcome, by queue and kind',
      labelNames: ['queue', 'kind'],
      buckets: JOB_DURATION_BUCKETS,
    }),
    finished: metrics.counter({
      name: 'angos_jobs_finished_total',
      help: 'Job runs ended, by queue, kind and outcome (completed, retried, dead_lettered, cancelled, deleted)',
      labelNames: ['queue', 'kind', 'outcome'],
    }),
  };
}

/** `JobQueue.enqueue`, as the services call it. */
export type Enqueue = (
  queue: string,
  kind: string,
  lockKey: string,
  payload: unknown,
  options?: EnqueueOptions,
) => Promise<EnqueueResult>;

/**
 * The enqueue every service uses: `queue.enqueue`, counted in `angos_job_queue_enqueued_total`
 * (with `dedup`) or, when it throws, `angos_job_queue_enqueue_failures_total` (the error is
 * rethrown: the caller decides whether its request fails).
 */
export function instrumentedEnqueue(queue: Pick<JobQueue, 'enqueue'>, metrics: Metrics): Enqueue {
  const m = jobMetrics(metrics);
  return async (name, kind, lockKey, payload, options) => {
    let result: EnqueueResult;
    try {
      result = await queue.enqueue(name, kind, lockKey, payload, options);
    } catch (error) {
      m.enqueueFailures.inc({ queue: name });
      throw error;
    }
    m.enqueued.inc({ queue: name, dedup: result.deduplicated ? 'hit' : 'miss' });
    return result;
  };
}

/** The `onJobFinished` of a runner that records each run's duration and outcome. */
export function recordJobFinished(metrics: Metrics): (event: JobFinished) => void {
  const m = jobMetrics(metrics);
  return ({ queue, kind, outcome, durationMs }) => {
    m.duration.observe({ queue, kind }, durationMs / 1000);
    m.finished.inc({ queue, kind, outcome });
  };
}

export interface QueueGaugeOptions {
  /** The queue to count (read at each refresh: a worker reopens it when its configuration changes). */
  readonly queue: () => JobQueue;
  /** The queues whose gauges this process publishes. */
  readonly queues: readonly string[];
  /**
   * `[global.job_queue]` as configured now: refresh interval and ready horizon, read at each
   * refresh so a reload applies to the next one. Undefined while there is none: nothing is
   * published then (the in-process drain keeps no gauge) and the table is looked for again later.
   */
  readonly settings: () => { refreshIntervalSecs: number; readyHorizonSecs: number } | undefined;
  readonly metrics: Metrics;
  readonly logger?: Logger | undefined;
  /**
   * Ages of the oldest pending job per group, of queues among `queues` (the replication lag per
   * downstream): computed from the same bounded listing as the queue's pending count.
   */
  readonly pendingAges?: readonly PendingAgeGauge[] | undefined;
}

export interface QueueGauges {
  /** Stops refreshing; a refresh in progress is awaited. */
  stop(): Promise<void>;
}

/** How long the gauges wait before looking at the configuration again while not published. */
const UNPUBLISHED_RECHECK_SECS = 15;

/**
 * Publishes `angos_job_queue_pending` and `angos_job_queue_failed` for each queue, refreshed at
 * once and then every `refreshIntervalSecs`. Each counts up to `GAUGE_COUNT_CAP` (10,000; a
 * deeper queue reads as the cap), so one refresh reads at most 10,000 names of `pending/` and
 * 10,000 of `failed/` per queue (on S3, 10 ListObjectsV2 requests of 1,000 keys each; on fs, two
 * readdirs each) and no records, however deep the queue. A queue with `pendingAges` has its
 * count and ages from one listing of its first 10,000 names, and reads the records of the jobs it
 * has not seen yet (`AGE_READS_PER_REFRESH` at most). A failed refresh keeps the last values and
 * is logged.
 */
export function startQueueGauges(options: QueueGaugeOptions): QueueGauges {
  const m = jobMetrics(options.metrics);
  const logger = options.logger ?? silentLogger;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;

  const trackers = new Map(
    (options.pendingAges ?? []).map((gauge) => [gauge.queue, new PendingAgeTracker(gauge)] as const),
  );
  const refresh = async (readyHorizonSecs: number) => {
    const queue = options.queue();
    for (const name of options.queues) {
      try {
        const tracker = trackers.get(name);
        if (tracker === undefined) {
          m.pending.set({ queue: name }, await queue.pendingCount(name, readyHorizonSecs));
        } else {
          // One bounded listing for the count and the ages.
          const names = await queue.pendingNames(name, GAUGE_COUNT_CAP);
          const horizon = queue.now() + readyHorizonSecs * 1000;
          m.pending.set({ queue: name }, names.filter(({ notBeforeMs }) => notBeforeMs <= horizon).length);
          tracker.gauge.publish(await tracker.refresh(queue, names));
        }
        m.failed.set({ queue: name }, await queue.failedCount(name));
      } catch (error) {
        logger.warn('job queue gauges not refreshed', { queue: name, error: String(error) });
      }
    }
  };
  const tick = () => {
    if (stopped) return;
    const settings = options.settings();
    if (settings === undefined) {
      m.pending.reset();
      m.failed.reset();
      for (const tracker of trackers.values()) tracker.gauge.publish(undefined);
      schedule(UNPUBLISHED_RECHECK_SECS);
      return;
    }
    refreshing = refresh(settings.readyHorizonSecs).finally(() => {
      refreshing = undefined;
      schedule(options.settings()?.refreshIntervalSecs ?? UNPUBLISHED_RECHECK_SECS);
    });
  };
  const schedule = (secs: number) => {
    if (stopped) return;
    timer = setTimeout(tick, secs * 1000);
    timer.unref();
  };
  tick();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await refreshing;
    },
  };
}
