import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, parseConfig } from '@angos/config';
import { type JobFinished, type JobHandler, JobQueue, JobRunner } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { createMetadataStore } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { type JobDrain, startJobDrain } from '../src/job-drain.js';
import { jobPools } from '../src/jobs.js';

/**
 * The drain's hot reload, in-process: a new configuration gets a new runner for the next claims
 * while the old runner's jobs finish on what they started with; a stop waits up to its grace.
 */

const BASE = '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/tmp/angos-unused"\n';

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

let drain: JobDrain | undefined;
afterEach(async () => {
  await drain?.stop(0);
  drain = undefined;
});

describe('startJobDrain', () => {
  const store = createMetadataStore({ kind: 'memory' });
  const queue = new JobQueue({ store });
  const locks = new MemoryLockManager();

  /** A drain whose runners record, per job, the `max_concurrent_cache_jobs` of their configuration. */
  async function start(handlers: (generation: number) => JobHandler[]) {
    let config: Config = parseConfig(BASE).config;
    const finished: JobFinished[] = [];
    const closed: number[] = [];
    drain = await startJobDrain({
      config: () => config,
      logger: silentLogger,
      checkIntervalMs: 20,
      async open(generationConfig) {
        const generation = generationConfig.global.max_concurrent_cache_jobs;
        return {
          runner: new JobRunner({
            queue,
            locks,
            pools: jobPools(generationConfig, ['cache']),
            handlers: handlers(generation),
            pollIntervalMs: 20,
            onJobFinished: (event) => finished.push(event),
          }),
          close: async () => void closed.push(generation),
        };
      },
    });
    const reload = (maxCacheJobs: number) => {
      const next = parseConfig(`${BASE}[global]\nmax_concurrent_cache_jobs = ${maxCacheJobs}\n`).config;
      config = next;
    };
    return { finished, closed, reload };
  }

  it('claims with the new configuration after a reload; jobs in flight finish on the old runner', async () => {
    const ranBy = new Map<string, number>();
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { finished, closed, reload } = await start((generation) => [
      {
        kind: 'record',
        async run({ job }) {
          ranBy.set(job.lockKey, generation);
          if (job.lockKey === 'slow') await released;
        },
      },
    ]);
    await queue.enqueue('cache', 'record', 'slow', {});
    await until('the slow job to start', () => ranBy.has('slow'));

    reload(7);
    await queue.enqueue('cache', 'record', 'next', {});
    await until('the next job', () => finished.some((event) => event.outcome === 'completed'));
    expect(ranBy.get('slow')).toBe(4); // the default
    expect(ranBy.get('next')).toBe(7);
    expect(closed).toEqual([]); // the old runner still has its job

    release();
    await until('the old runner to close', () => closed.length === 1);
    expect(closed).toEqual([4]);
    expect(finished.map((event) => event.outcome)).toEqual(['completed', 'completed']);
  });

  it('on stop, waits for jobs in flight up to the grace, then cancels them', async () => {
    let started = false;
    const { finished } = await start(() => [
      {
        kind: 'stubborn',
        async run({ signal }) {
          started = true;
          await untilAborted(signal);
        },
      },
    ]);
    const { id } = await queue.enqueue('cache', 'stubborn', 'stubborn', {});
    await until('the job to start', () => started);
    expect(drain?.inFlight).toBe(1);
    await drain?.stop(300);
    expect(finished.map((event) => event.outcome)).toEqual(['cancelled']);
    // Cancelled jobs stay queued, for the next worker to take over.
    expect((await queue.listPending('cache')).items.map((job) => job.id)).toEqual([id]);
    await queue.deletePending('cache', id);
  });
});
