import type { Server } from 'node:http';
import { type Config, ConfigError, loadConfig, watchConfig } from '@angos/config';
import { createHttpServer, type Handler, healthHandler, sendText, withObservability } from '@angos/http';
import { type Enqueue, type JobQueue, JobRunner, recordJobFinished, startQueueGauges } from '@angos/jobs';
import { createLogger, createMetrics, type Logger } from '@angos/observability';
import { replicationLagGauge } from '@angos/replication';
import { PullThroughCache } from '@angos/upstream';
import { drain } from './drain.js';
import { CliError } from './errors.js';
import { startJobDrain } from './job-drain.js';
import { gaugeSettings, JOB_QUEUE_NAMES, type JobQueueName, jobHandlers, jobPools } from './jobs.js';
import { type ListenAddress, listenOn, parseListen } from './listen.js';
import { createLiveConfig } from './live-config.js';
import { openRegistry } from './open-storage.js';
import { ServedJobQueue } from './served-queue.js';
import { logWarning } from './service.js';
import { startTracingFor } from './tracing.js';

/** The port of `/healthz`, `/readyz` and `/metrics` by default: next to the split deployment's 8000 and 8001. */
export const WORKER_PORT = 8002;

/** How long the worker's own HTTP requests (probes, scrapes) get to finish at shutdown. */
const HTTP_DRAIN_MS = 1000;

export interface StartWorkerOptions {
  readonly configPath: string;
  /** The queues to drain; default all (JOB_QUEUE_NAMES). */
  readonly queues?: readonly JobQueueName[] | undefined;
  /** Least idle wait between claim attempts (default 1 s). */
  readonly pollIntervalMs?: number | undefined;
  /** `HOST:PORT` of the health and metrics endpoints; default `[server] bind_address`, port 8002. */
  readonly listen?: string | ListenAddress | undefined;
  /** Default: a logger on stderr filtered by RUST_LOG. */
  readonly logger?: Logger | undefined;
}

export interface RunningWorker {
  readonly address: { host: string; port: number };
  /**
   * Stops claiming, waits for the jobs in flight up to `server.query_timeout_grace_period`, then
   * cancels them (their locks are released or lapse: another worker retries them), and closes.
   * Idempotent.
   */
  close(signal?: NodeJS.Signals): Promise<void>;
}

/** Why a configuration cannot run a worker, as lines for the operator; empty when it can. */
function workerProblems(config: Config): string[] {
  if (config.global.job_queue !== undefined) return [];
  return [
    'angos worker requires [global.job_queue]; without it, angos server drains the job queue in its own process',
  ];
}

/** Every other path of the worker's HTTP endpoint. */
const notFound: Handler = (_req, res) => sendText(res, 404, 'not found\n');

/**
 * `angos worker`: drains the durable job queues with a pool per queue, each sized by its
 * `max_concurrent_*_jobs`, and serves `/healthz`, `/readyz` and `/metrics`. Every accepted
 * configuration change opens a new runner (its own storage and locks) for the next claims; the
 * jobs in flight finish on what they started with. Throws CliError or ConfigError when it cannot
 * start.
 */
export async function startWorker(options: StartWorkerOptions): Promise<RunningWorker> {
  const { configPath } = options;
  const logger = options.logger ?? createLogger({ filter: process.env['RUST_LOG'] });
  const queues = options.queues ?? JOB_QUEUE_NAMES;
  const listenAt = typeof options.listen === 'string' ? parseListen(options.listen) : options.listen;

  const { config, warnings } = await loadConfig(configPath);
  for (const warning of warnings) logWarning(logger, warning);
  const problems = workerProblems(config);
  if (problems.length > 0) throw new CliError(problems);

  const live = createLiveConfig(config);
  const metrics = createMetrics();
  const tracing = await startTracingFor(config, 'worker', logger);
  const jobsLogger = logger.child('angos::jobs');
  const onJobFinished = recordJobFinished(metrics);
  /** The queue of the newest runner: what the gauges count. */
  let latestQueue: JobQueue | undefined;

  const jobDrain = await startJobDrain({
    config: live.get,
    logger: jobsLogger,
    async open(generationConfig) {
      const frozen = () => generationConfig;
      const { registry, storage, locks } = await openRegistry({ config: frozen, logger, metrics });
      const queue = new ServedJobQueue({ store: storage.metadata, logger: jobsLogger }, metrics);
      const enqueue: Enqueue = (...args) => queue.enqueue(...args);
      // The fills of `cache` jobs, with this generation's storage, locks and configuration.
      const cache = new PullThroughCache({ registry, locks, jobs: queue, config: frozen, logger, metrics });
      const runner = new JobRunner({
        queue,
        locks,
        pools: jobPools(generationConfig, queues),
        handlers: jobHandlers({
          config: generationConfig,
          registry,
          enqueue,
          logger: jobsLogger,
          cache,
          metrics,
        }),
        pollIntervalMs: options.pollIntervalMs,
        logger: jobsLogger,
        onJobFinished,
      });
      queue.onEnqueued((name) => runner.poke(name));
      latestQueue = queue;
      return {
        runner,
        async close() {
          await cache.close();
          await storage.close();
        },
      };
    },
  });
  const gauges = startQueueGauges({
    queue: () => latestQueue as JobQueue,
    queues,
    settings: () => gaugeSettings(live.get()),
    metrics,
    logger: jobsLogger,
    pendingAges: queues.includes('replication')
      ? [replicationLagGauge({ config: () => live.get(), metrics })]
      : [],
  });

  let accepting = true;
  // Counted and logged like every service's requests: the HTTP metrics it lists are real.
  const server: Server = createHttpServer(
    withObservability(
      healthHandler(notFound, { metrics, logger, ready: () => accepting && jobDrain.claiming }),
      { metrics, logger: logger.child('http'), service: 'worker' },
    ),
    { logger, metrics },
  );
  let address: { host: string; port: number };
  try {
    address = await listenOn(server, listenAt ?? { host: config.server.bind_address, port: WORKER_PORT });
  } catch (error) {
    await gauges.stop();
    await jobDrain.stop(0);
    await tracing.shutdown();
    throw error;
  }
  logger.info('worker started', {
    queues,
    concurrency: Object.fromEntries(jobPools(config, queues).map((pool) => [pool.name, pool.concurrency])),
    host: address.host,
    port: address.port,
  });

  const watcher = watchConfig(
    configPath,
    {
      onReload(next) {
        const rejected = workerProblems(next.config);
        if (rejected.length > 0) {
          logger.error('configuration change rejected', { reasons: rejected });
          return;
        }
        for (const warning of next.warnings) logWarning(logger, warning);
        // Nothing is restart-only here but the listening address; storage and locks reopen.
        live.apply(next.config, ['server.bind_address']);
        logger.info('configuration reloaded; new claims use it', { path: configPath });
      },
      onInvalid(error) {
        const issues =
          error instanceof ConfigError ? error.issues : [{ path: configPath, message: error.message }];
        logger.error('configuration change rejected: invalid configuration', { issues });
      },
    },
    { initial: live.initial },
  );

  let closing: Promise<void> | undefined;
  const close = (signal?: NodeJS.Signals) => {
    closing ??= (async () => {
      accepting = false;
      watcher.close();
      const graceSecs = live.get().server.query_timeout_grace_period;
      logger.info('shutting down, waiting for jobs in flight', {
        signal,
        in_flight: jobDrain.inFlight,
        grace_period_secs: graceSecs,
      });
      await gauges.stop();
      await jobDrain.stop(graceSecs * 1000);
      await drain(server, HTTP_DRAIN_MS, logger);
      await tracing.shutdown();
      logger.info('stopped', { service: 'worker' });
    })();
    return closing;
  };
  return { address, close };
}
