import type { Config } from '@angos/config';
import { type Enqueue, type JobQueue, JobRunner, recordJobFinished, startQueueGauges } from '@angos/jobs';
import type { LockManager } from '@angos/lock';
import type { Logger, Metrics } from '@angos/observability';
import type { Registry } from '@angos/registry';
import { replicationLagGauge } from '@angos/replication';
import type { MetadataStore } from '@angos/storage';
import { PullThroughCache } from '@angos/upstream';
import { startJobDrain } from './job-drain.js';
import { gaugeSettings, JOB_QUEUE_NAMES, jobHandlers, jobPools } from './jobs.js';
import { ServedJobQueue } from './served-queue.js';
import type { ServingThread } from './thread-data.js';

/**
 * Between two looks at a queue by a server's own drain. Longer than a worker's 1 s: every look
 * is two listings (on S3, two LIST requests per queue), paid by every idle server, and the jobs
 * this process enqueues are looked at at once anyway. An empty queue backs off from it to once a
 * minute: three queues looked at every 5 s were ~3 million LIST requests a month per server.
 */
const IN_PROCESS_POLL_INTERVAL_MS = 5000;

export interface ServerJobsDeps {
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly metadata: MetadataStore;
  readonly locks: LockManager;
  /**
   * Whether this process drains the queue and publishes its gauges (default). A serving thread
   * other than the leader only enqueues, and announces its enqueues to the leader's drain.
   */
  readonly drain?: boolean;
  /** Where the serving threads of one service announce their enqueues to the leader. */
  readonly enqueued?: ServingThread['enqueued'] | undefined;
}

/** The job queue as a serving process (`angos server`, `angos registry-api`, `angos pull-through-cache`) has it. */
export interface ServerJobs {
  readonly queue: JobQueue;
  /** Enqueue, counted in `angos_job_queue_enqueued_total` and `…_enqueue_failures_total`. */
  readonly enqueue: Enqueue;
  /**
   * The pull-through cache over this process's registry and queue: it serves the pull-through
   * namespaces where the process does, and its job handlers run the `cache` jobs the drain claims
   * (a fill this process has in flight is then joined, not fetched twice). Closed by the caller.
   */
  readonly cache: PullThroughCache;
  /** Stops draining (waiting up to `graceMs` for the jobs in flight) and refreshing the gauges. */
  stop(graceMs: number): Promise<void>;
}

/**
 * Without `[global.job_queue]` the process drains every queue itself, with the registry's own
 * storage and locks (the memory lock suffices: one process). With it, the process only enqueues
 * and publishes `angos_job_queue_pending` and `angos_job_queue_failed`; `angos worker` processes
 * drain. A reload that adds or removes the table switches between the two at the next claim.
 */
export async function startServerJobs(deps: ServerJobsDeps): Promise<ServerJobs> {
  const logger = deps.logger.child('angos::jobs');
  const queue = new ServedJobQueue({ store: deps.metadata, logger }, deps.metrics);
  const enqueue: Enqueue = (...args) => queue.enqueue(...args);
  const cache = new PullThroughCache({
    registry: deps.registry,
    locks: deps.locks,
    jobs: queue,
    config: deps.config,
    logger: deps.logger,
    metrics: deps.metrics,
  });
  if (deps.drain === false) {
    const announced = deps.enqueued;
    if (announced !== undefined) queue.onEnqueued((name) => announced.announce(name));
    return { queue, enqueue, cache, stop: async () => {} };
  }
  const onJobFinished = recordJobFinished(deps.metrics);
  const drain = await startJobDrain({
    config: deps.config,
    logger,
    async open(config) {
      if (config.global.job_queue !== undefined) return undefined;
      const handlers = jobHandlers({
        config,
        registry: deps.registry,
        enqueue,
        logger,
        cache,
        metrics: deps.metrics,
      });
      return {
        runner: new JobRunner({
          queue,
          locks: deps.locks,
          pools: jobPools(config, JOB_QUEUE_NAMES),
          handlers,
          pollIntervalMs: IN_PROCESS_POLL_INTERVAL_MS,
          // Poked for every job enqueued here: an empty queue is looked at less and less often,
          // up to once a minute (the jobs of another replica sharing the store wait that long).
          backOffWhenEmpty: true,
          logger,
          onJobFinished,
        }),
      };
    },
  });
  // A job enqueued here runs at once; the slower poll only finds those of other replicas.
  queue.onEnqueued((name) => drain.poke(name));
  deps.enqueued?.listen((name) => drain.poke(name));
  const gauges = startQueueGauges({
    queue: () => queue,
    queues: JOB_QUEUE_NAMES,
    settings: () => gaugeSettings(deps.config()),
    metrics: deps.metrics,
    logger,
    pendingAges: [replicationLagGauge({ config: deps.config, metrics: deps.metrics })],
  });
  let stopping: Promise<void> | undefined;
  return {
    queue,
    enqueue,
    cache,
    stop(graceMs) {
      stopping ??= Promise.all([gauges.stop(), drain.stop(graceMs)]).then(() => {});
      return stopping;
    },
  };
}
