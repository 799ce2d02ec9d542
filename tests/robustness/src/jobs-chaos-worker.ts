#!/usr/bin/env node
/**
 * One process of the job chaos run (jobs-chaos.ts starts it as `node jobs-chaos-worker.js JSON`):
 *
 * - `worker`: a JobRunner on the shared store and lock, with one handler of kind `chaos`. Each
 *   run appends `start`, then `end` (or `abort`, when its signal fired) to this process's run log,
 *   `<runDir>/<pid>.log`, with a synchronous O_APPEND write: once a line is written it survives a
 *   SIGKILL of the process, so the log says what each run did before its process died. Between the
 *   two it sleeps a random short time, stopping at once when its signal fires. SIGTERM stops the
 *   runner (in-flight jobs finish) and exits 0.
 * - `enqueue`: another replica: enqueues the given lock keys in order, pausing between batches,
 *   prints one JSON line per enqueue (`{"id","lockKey","deduplicated"}`), and exits.
 */
import { appendFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobQueue, JobRunner } from '@angos/jobs';
import { createLogger } from '@angos/observability';
import { type JobLockSpec, type JobStoreSpec, openJobLocks, openJobStore } from './jobs-backend.js';

const CHAOS_KIND = 'chaos';

export interface ChaosWorkerConfig {
  readonly mode: 'worker';
  readonly store: JobStoreSpec;
  readonly lock: JobLockSpec;
  readonly queue: string;
  readonly concurrency: number;
  readonly pollIntervalMs: number;
  /** Each run sleeps a random time in [min, max] ms. */
  readonly sleepMs: readonly [number, number];
  readonly runDir: string;
}

export interface ChaosEnqueueConfig {
  readonly mode: 'enqueue';
  readonly store: JobStoreSpec;
  readonly queue: string;
  readonly lockKeys: readonly string[];
  /** Enqueues this many, then pauses `pauseMs`: jobs sharing a lock key both join and follow one another. */
  readonly batch: number;
  readonly pauseMs: number;
}

export interface EnqueuedLine {
  readonly id: string;
  readonly lockKey: string;
  readonly deduplicated: boolean;
}

const logger = createLogger({ filter: 'info', format: 'text' });

/**
 * Opens the store, trying again for a minute while it is unreachable (an RGW restarting as this
 * process starts): a supervisor would restart a worker that gave up, this one waits instead.
 */
async function openStoreWhenUp(spec: JobStoreSpec) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await openJobStore(spec);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      logger.warn('store unreachable; trying again', { error: String(error) });
      await sleep(500);
    }
  }
}

async function runWorker(config: ChaosWorkerConfig): Promise<void> {
  const store = await openStoreWhenUp(config.store);
  const locks = openJobLocks(config.lock);
  const fd = openSync(join(config.runDir, `${process.pid}.log`), 'a');
  const record = (line: string) => appendFileSync(fd, `${line}\n`);
  let runs = 0;
  const [minSleep, maxSleep] = config.sleepMs;
  const runner = new JobRunner({
    queue: new JobQueue({ store, logger }),
    locks,
    pools: [{ name: config.queue, concurrency: config.concurrency }],
    handlers: [
      {
        kind: CHAOS_KIND,
        async run({ job, signal }) {
          const run = `${process.pid}.${++runs}`;
          record(`start ${run} ${job.id} ${job.lockKey} ${process.pid} ${Date.now()}`);
          const ms = minSleep + Math.floor(Math.random() * (maxSleep - minSleep + 1));
          await sleep(ms, undefined, { signal }).catch(() => {});
          if (signal.aborted) {
            record(`abort ${run} ${job.id} ${job.lockKey} ${process.pid} ${Date.now()}`);
            throw signal.reason;
          }
          record(`end ${run} ${job.id} ${job.lockKey} ${process.pid} ${Date.now()}`);
        },
      },
    ],
    pollIntervalMs: config.pollIntervalMs,
    lockWaitMs: 2000,
    takeoverWaitMs: 500,
    retry: { baseDelayMs: 50, maxDelayMs: 1000 },
    workerId: `chaos:${process.pid}`,
    logger,
  });
  runner.start();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void (async () => {
      await runner.stop(20_000);
      await locks.close();
      await store.close?.();
      process.exit(0);
    })();
  });
}

/**
 * One enqueue, tried again for a minute while the store fails (as a client retries a 503). A try
 * that failed half-way may have left a job of its own that still runs: one that was never
 * reported enqueued (`JobsChaosReport.unknownRuns`).
 */
async function enqueueRetrying(queue: JobQueue, queueName: string, lockKey: string, i: number) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await queue.enqueue(queueName, CHAOS_KIND, lockKey, { i });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      logger.warn('enqueue failed; trying again', { lock_key: lockKey, error: String(error) });
      await sleep(500);
    }
  }
}

async function runEnqueue(config: ChaosEnqueueConfig): Promise<void> {
  const store = await openStoreWhenUp(config.store);
  const queue = new JobQueue({ store, logger });
  for (let i = 0; i < config.lockKeys.length; i++) {
    const lockKey = config.lockKeys[i] as string;
    const { id, deduplicated } = await enqueueRetrying(queue, config.queue, lockKey, i);
    process.stdout.write(`${JSON.stringify({ id, lockKey, deduplicated } satisfies EnqueuedLine)}\n`);
    if ((i + 1) % config.batch === 0) await sleep(config.pauseMs);
  }
  await store.close?.();
}

// The orchestrator holds our stdin open: when it dies, so do we (exit code 2, like a crash).
process.stdin.on('end', () => process.exit(2));
process.stdin.on('error', () => process.exit(2));
process.stdin.resume();

const config = JSON.parse(process.argv[2] ?? '{}') as ChaosWorkerConfig | ChaosEnqueueConfig;
if (config.mode === 'worker') await runWorker(config);
else if (config.mode === 'enqueue') {
  await runEnqueue(config);
  process.exit(0); // stdin would keep the process alive
} else throw new Error('usage: jobs-chaos-worker.js \'{"mode":"worker"|"enqueue",…}\'');
