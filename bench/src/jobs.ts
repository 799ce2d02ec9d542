/**
 * The job queue scenario: enqueue N no-op jobs, measure one `angos_job_queue_pending` refresh
 * (`JobQueue.pendingCount`) at that depth, then drain them with one runner at the default pool
 * size. The library is driven in-process, on fs and on S3; on S3 a counting proxy in front of the
 * bucket says how many LIST requests each step costs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobQueue, JobRunner } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { createMetadataStore, type MetadataStore, openMetadataStore } from '@angos/storage';
import type { S3Endpoint } from '@angos/test-support';
import { type CountingProxy, startCountingProxy } from './counting-proxy.js';

export interface JobQueueFigures {
  readonly backend: 'fs' | 's3';
  readonly jobs: number;
  readonly enqueuePerSecond: number;
  /** One pendingCount at full depth. */
  readonly refreshMs: number;
  /** ListObjectsV2 requests of that refresh (S3). */
  readonly refreshLists: number | undefined;
  /** Jobs drained per second; over the jobs drained when the drain hit its time limit. */
  readonly drainPerSecond: number;
  readonly drained: number;
  /** ListObjectsV2 requests of the whole drain, per job (S3). */
  readonly drainListsPerJob: number | undefined;
}

export interface JobQueueBenchOptions {
  readonly jobs: number;
  /** Enqueues in flight at once (requests of a server enqueuing in parallel). */
  readonly enqueueConcurrency?: number;
  /** `max_concurrent_*_jobs` (default 4). */
  readonly concurrency?: number;
  /** `--poll-interval` (default 1 s). */
  readonly pollIntervalMs?: number;
  /** The drain stops here and reports the rate so far (default 10 min). */
  readonly drainLimitMs?: number;
  readonly log?: (line: string) => void;
}

/** `angos_job_queue_pending`'s default `pending_ready_horizon_secs`. */
const READY_HORIZON_SECS = 600;
const QUEUE = 'bench';

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { value, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

async function inParallel(
  count: number,
  width: number,
  work: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

export async function benchJobQueue(
  backend: 'fs' | 's3',
  options: JobQueueBenchOptions,
  s3?: S3Endpoint,
): Promise<JobQueueFigures> {
  const log = options.log ?? (() => {});
  let dir: string | undefined;
  let proxy: CountingProxy | undefined;
  let store: MetadataStore;
  if (backend === 'fs') {
    dir = await mkdtemp(join(tmpdir(), 'angos-bench-jobs-'));
    store = createMetadataStore({ kind: 'fs', rootDir: dir, syncToDisk: false });
  } else {
    if (s3 === undefined) throw new Error('the S3 job queue scenario needs an S3 endpoint');
    proxy = await startCountingProxy(s3.endpoint);
    store = await openMetadataStore({
      kind: 's3',
      endpoint: proxy.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      keyPrefix: `bench-jobs-${randomBytes(4).toString('hex')}`,
      maxAttempts: 3,
      operationTimeoutSecs: 60,
      operationAttemptTimeoutSecs: 20,
      linkCacheTtlSecs: 30,
      accessTimeDebounceSecs: 0,
    });
  }
  const queue = new JobQueue({ store });
  const locks = new MemoryLockManager();
  try {
    const { jobs } = options;
    const enqueue = await timed(() =>
      inParallel(jobs, options.enqueueConcurrency ?? 16, (i) =>
        queue.enqueue(QUEUE, 'noop', `bench:${i}`, {}),
      ),
    );
    log(`  ${backend}: enqueued ${jobs} in ${enqueue.seconds.toFixed(1)} s`);

    const listsBefore = proxy?.lists ?? 0;
    const refresh = await timed(() => queue.pendingCount(QUEUE, READY_HORIZON_SECS));
    if (refresh.value !== jobs) throw new Error(`pendingCount said ${refresh.value}, not ${jobs}`);
    const refreshLists = proxy ? proxy.lists - listsBefore : undefined;

    let drained = 0;
    const failures: string[] = [];
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    const runner = new JobRunner({
      queue,
      locks,
      pools: [{ name: QUEUE, concurrency: options.concurrency ?? 4 }],
      handlers: [{ kind: 'noop', run: async () => {} }],
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      onJobFinished: (event) => {
        if (event.outcome !== 'completed') {
          failures.push(`job ${event.id}: ${event.outcome} ${event.error ?? ''}`);
          return;
        }
        if (++drained === jobs) allDone();
        else if (drained % 1000 === 0) log(`  ${backend}: drained ${drained}`);
      },
    });
    const drainListsBefore = proxy?.lists ?? 0;
    const limitMs = options.drainLimitMs ?? 600_000;
    let limitTimer: NodeJS.Timeout | undefined;
    const drain = await timed(async () => {
      runner.start();
      await Promise.race([
        done,
        new Promise<void>((resolve) => {
          limitTimer = setTimeout(resolve, limitMs);
        }),
      ]);
      clearTimeout(limitTimer);
    });
    await runner.stop(30_000);
    if (failures.length > 0)
      throw new Error(`no-op jobs did not complete: ${failures.slice(0, 5).join('; ')}`);
    if (drained < jobs)
      log(`  ${backend}: drain stopped at the ${limitMs / 1000} s limit after ${drained} jobs`);
    const drainLists = proxy ? proxy.lists - drainListsBefore : undefined;
    return {
      backend,
      jobs,
      enqueuePerSecond: jobs / enqueue.seconds,
      refreshMs: refresh.seconds * 1000,
      refreshLists,
      drainPerSecond: drained / drain.seconds,
      drained,
      drainListsPerJob: drainLists === undefined || drained === 0 ? undefined : drainLists / drained,
    };
  } finally {
    await store.deletePrefix(`_jobs/${QUEUE}`).catch(() => {});
    await store.close?.();
    await locks.close();
    await proxy?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

/** The job queue figures as a Markdown table. */
export function jobQueueTable(figures: readonly JobQueueFigures[]): string {
  const cell = (value: number | undefined, digits = 0) => (value === undefined ? '—' : value.toFixed(digits));
  const header = [
    'backend',
    'jobs',
    'enqueue jobs/s',
    'drain jobs/s',
    'pending gauge refresh ms',
    'refresh LIST requests',
    'drain LIST requests per job',
  ];
  const rows = figures.map((f) => [
    f.backend,
    f.drained < f.jobs ? `${f.jobs} (${f.drained} drained)` : String(f.jobs),
    cell(f.enqueuePerSecond),
    cell(f.drainPerSecond, 1),
    cell(f.refreshMs, 1),
    f.backend === 'fs' ? '1 readdir' : cell(f.refreshLists),
    cell(f.drainListsPerJob, 1),
  ]);
  return [header, header.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}
