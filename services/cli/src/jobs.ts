import type { Config } from '@angos/config';
import { eventDeliveryHandler } from '@angos/events';
import {
  type Enqueue,
  isJobQueue,
  JOB_QUEUES,
  type JobHandler,
  type JobQueueName,
  type QueuePool,
} from '@angos/jobs';
import type { Logger, Metrics } from '@angos/observability';
import type { Registry } from '@angos/registry';
import { replicationHandler } from '@angos/replication';
import type { PullThroughCache } from '@angos/upstream';

/**
 * The durable job queues and the job kinds this build runs, in one place: `angos worker`, the
 * in-process drain of `angos server` and `angos registry-api`, and the gauges all read them here.
 */

/**
 * The option that sizes each queue's pool: how many of its jobs one process runs at once. The
 * queue names themselves are `JOB_QUEUES` of `@angos/jobs` (what `angos worker --queue` and the
 * jobs API accept).
 */
const POOL_SIZE: Readonly<Record<JobQueueName, (config: Config) => number>> = {
  cache: (config) => config.global.max_concurrent_cache_jobs,
  replication: (config) => config.global.max_concurrent_replication_jobs,
  // The reference names no option for it: a delivery is one small POST, mostly waiting.
  events: () => EVENT_DELIVERY_CONCURRENCY,
};

/** Event deliveries (`events` queue) one process runs at once. */
export const EVENT_DELIVERY_CONCURRENCY = 16;

export { isJobQueue as isJobQueueName, JOB_QUEUES as JOB_QUEUE_NAMES, type JobQueueName };

/** A pool per queue, sized by its `max_concurrent_*_jobs` option. */
export function jobPools(config: Config, queues: readonly JobQueueName[]): QueuePool[] {
  return queues.map((name) => ({ name, concurrency: POOL_SIZE[name](config) }));
}

/** What the handlers of one runner get. */
export interface JobHandlerDeps {
  /**
   * The configuration they run with. A runner keeps it for life: a reload starts a new runner
   * for the next claims, and the jobs in flight finish with what they started with.
   */
  readonly config: Config;
  readonly registry: Registry;
  /** Where a job that causes more work puts it (counted in the enqueue metrics). */
  readonly enqueue: Enqueue;
  readonly logger: Logger;
  /** The pull-through cache whose fills the `cache` jobs are. */
  readonly cache: PullThroughCache;
  /** Where handlers count what they did (`angos_replication_push_total`…). */
  readonly metrics?: Metrics | undefined;
}

/**
 * Every job kind this build runs. A job of a kind not listed here is dead-lettered by the runner
 * with `unknown job kind "<kind>"`, so a job written by a newer version is kept, not lost: the
 * pull-through cache's fills (queue `cache`), replication pushes (queue `replication`) and
 * `async` event webhook deliveries (queue `events`).
 */
// biome-ignore lint/suspicious/noExplicitAny: a registry of handlers of different payload types
export function jobHandlers(deps: JobHandlerDeps): JobHandler<any>[] {
  return [...deps.cache.jobHandlers(), replicationHandler(deps), eventDeliveryHandler(deps)];
}

/** The `[global.job_queue]` gauge settings of a configuration; undefined without the table. */
export function gaugeSettings(
  config: Config,
): { refreshIntervalSecs: number; readyHorizonSecs: number } | undefined {
  const table = config.global.job_queue;
  return (
    table && {
      refreshIntervalSecs: table.pending_refresh_interval_secs,
      readyHorizonSecs: table.pending_ready_horizon_secs,
    }
  );
}
