import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockLostError, type LockManager } from '@angos/lock';
import type { MetadataStore } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeEnvelope, newJobId, pendingName } from '../src/envelope.js';
import {
  type JobContext,
  type JobFinished,
  type JobHandler,
  JobQueue,
  JobRunner,
  type JobRunnerOptions,
  TerminalJobError,
} from '../src/index.js';
import { paths } from '../src/layout.js';
import { encodeClaim } from '../src/records.js';

/** One backend combination: a metadata store and a lock strategy, as worker processes share them. */
export interface JobBackend {
  readonly store: MetadataStore;
  /** The lock manager of one more worker (memory: every worker shares one, as in one process). */
  locks(): LockManager;
  /** The lock TTL: how long a dead worker's lock blocks its job. */
  readonly lockTtlMs: number;
  /**
   * Leaves the lock of `lockKey` as a worker killed while holding it does: taken, never renewed
   * nor released. Absent for the memory lock, which dies with its process.
   */
  holdAsDeadWorker?(lockKey: string): Promise<void>;
  /**
   * As holdAsDeadWorker, but the lock lives until the returned function lets it lapse (a dead
   * worker's lock with a long TTL). Absent where a lock's lifetime cannot be set from outside.
   */
  holdAsDeadWorkerUntil?(lockKey: string): Promise<() => Promise<void>>;
  /** Takes the lock from its holder (overwritten or deleted). Absent where locks cannot be lost. */
  loseLock?(lockKey: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Fast polls and retries: the suite takes seconds per backend. */
const POLL_MS = 50;

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 45_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Every key under a prefix, recursively. */
async function everythingUnder(store: MetadataStore, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await store.list(prefix)) {
    const path = `${prefix}/${name}`;
    const below = await everythingUnder(store, path);
    found.push(...(below.length > 0 ? below : [path]));
  }
  return found;
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * The queue's contract: every store and lock combination runs it. Each test has a queue of its
 * own and must leave nothing under `_jobs/<queue>`.
 */
export function describeJobQueueContract(name: string, open: () => Promise<JobBackend>): void {
  describe(`job queue contract: ${name}`, () => {
    let backend: JobBackend;
    let queue: JobQueue;
    let q: string;
    let runners: JobRunner[];
    let lockManagers: Set<LockManager>;
    let finished: JobFinished[];

    beforeEach(async () => {
      backend = await open();
      queue = new JobQueue({ store: backend.store });
      q = `test-${randomBytes(4).toString('hex')}`;
      runners = [];
      lockManagers = new Set();
      finished = [];
    });

    afterEach(async () => {
      try {
        await Promise.all(runners.map((runner) => runner.stop(0)));
        await Promise.all([...lockManagers].map((locks) => locks.close()));
        expect(await everythingUnder(backend.store, paths.queue(q)), `left under _jobs/${q}`).toEqual([]);
      } finally {
        await backend.cleanup();
      }
    });

    // biome-ignore lint/suspicious/noExplicitAny: handlers of several payload types
    function startWorker(handlers: JobHandler<any>[], options: Partial<JobRunnerOptions> = {}): JobRunner {
      const locks = backend.locks();
      lockManagers.add(locks);
      const runner = new JobRunner({
        queue: new JobQueue({ store: backend.store }),
        locks,
        pools: [{ name: q, concurrency: 3 }],
        handlers,
        pollIntervalMs: POLL_MS,
        takeoverWaitMs: 500,
        retry: { baseDelayMs: 20, maxDelayMs: 200 },
        onJobFinished: (event) => finished.push(event),
        ...options,
      });
      runners.push(runner);
      runner.start();
      return runner;
    }

    const outcomes = () => finished.map((event) => event.outcome);

    it('joins enqueues of a lock key while its job is pending: K enqueues, one run', async () => {
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => queue.enqueue(q, 'count', 'tag:team/app:latest', { i })),
      );
      expect(results.filter((result) => !result.deduplicated)).toHaveLength(1);
      expect(new Set(results.map((result) => result.id)).size).toBe(1);
      expect(await queue.pendingCount(q, 0)).toBe(1);

      let runs = 0;
      startWorker([{ kind: 'count', run: async () => void runs++ }]);
      // A run ends (its outcome reported) once its records are written.
      await waitFor('the run', () => finished.length === 1);
      expect(runs).toBe(1);
      expect(await queue.pendingCount(q, 0)).toBe(0);

      // Once it ran, the lock key takes a new job.
      const again = await queue.enqueue(q, 'count', 'tag:team/app:latest', {});
      expect(again.deduplicated).toBe(false);
      expect(again.id).not.toBe(results[0]?.id);
      await waitFor('the second run', () => finished.length === 2);
      expect(outcomes()).toEqual(['completed', 'completed']);
      expect(runs).toBe(2);
    });

    it('runs every job once, and never two jobs of one lock key at once, across workers', async () => {
      const active = new Map<string, number>();
      const maxActive = new Map<string, number>();
      const runs = new Map<string, number>();
      interface Step {
        readonly key: string;
        readonly step: number;
        readonly steps: number;
      }
      const chain: JobHandler<Step> = {
        kind: 'chain',
        async run({ payload }: JobContext<Step>) {
          const { key, step, steps } = payload;
          active.set(key, (active.get(key) ?? 0) + 1);
          maxActive.set(key, Math.max(maxActive.get(key) ?? 0, active.get(key) ?? 0));
          runs.set(`${key}#${step}`, (runs.get(`${key}#${step}`) ?? 0) + 1);
          try {
            // The next step of the lock key is enqueued while this one runs: another worker
            // claims it at once and must wait for the lock.
            if (step + 1 < steps) await queue.enqueue(q, 'chain', key, { key, step: step + 1, steps });
            await sleep(30);
          } finally {
            active.set(key, (active.get(key) ?? 0) - 1);
          }
        },
      };
      const keys = ['repo:a', 'repo:b', 'repo:c'];
      const steps = 4;
      for (const key of keys) await queue.enqueue(q, 'chain', key, { key, step: 0, steps });
      for (let i = 0; i < 12; i++)
        await queue.enqueue(q, 'chain', `solo:${i}`, { key: `solo:${i}`, step: 0, steps: 1 });
      for (let w = 0; w < 4; w++) startWorker([chain]);

      const expected = keys.length * steps + 12;
      await waitFor(
        'every job to complete',
        () => outcomes().filter((o) => o === 'completed').length >= expected,
      );
      await waitFor('the queue to empty', async () => (await queue.pendingCount(q, 3600)) === 0);
      expect(runs.size).toBe(expected);
      expect(
        [...runs.values()].every((count) => count === 1),
        JSON.stringify([...runs]),
      ).toBe(true);
      expect(Math.max(...maxActive.values())).toBe(1);
      expect(outcomes().filter((o) => o !== 'completed')).toEqual([]);
    });

    it('retries a failed run with exponential backoff, then completes', async () => {
      const seen: JobContext<unknown>['job'][] = [];
      await queue.enqueue(q, 'flaky', 'flaky:1', { what: 'x' });
      startWorker([
        {
          kind: 'flaky',
          async run({ job }) {
            seen.push(job);
            if (seen.length < 3) throw new Error(`boom ${seen.length}`);
          },
        },
      ]);
      await waitFor('completion', () => outcomes().includes('completed'));
      expect(outcomes()).toEqual(['retried', 'retried', 'completed']);
      // Each run is counted as it starts: a handler sees its own run among the attempts.
      expect(seen.map((job) => job.attempts)).toEqual([1, 2, 3]);
      expect(seen.map((job) => job.lastError)).toEqual([undefined, 'boom 1', 'boom 2']);
      expect(new Set(seen.map((job) => job.id)).size).toBe(1);
      const notBefore = seen.map((job) => Date.parse(job.notBefore));
      // Each retry waits at least half its backoff (jitter) after the failure.
      expect(notBefore[1]).toBeGreaterThanOrEqual((notBefore[0] as number) + 10);
      expect(notBefore[2]).toBeGreaterThan(notBefore[1] as number);
    });

    it('dead-letters a job after its attempt budget, with the last error; a retried dead letter runs again', async () => {
      let failing = true;
      let runs = 0;
      const { id } = await queue.enqueue(q, 'fails', 'fails:1', { n: 1 }, { maxAttempts: 2 });
      startWorker([
        {
          kind: 'fails',
          async run() {
            runs++;
            if (failing) throw new Error(`always ${runs}`);
          },
        },
      ]);
      await waitFor('the dead letter', () => outcomes().includes('dead_lettered'));
      expect(await queue.failedCount(q)).toBe(1);
      const failed = await queue.listFailed(q);
      expect(failed.items).toHaveLength(1);
      expect(failed.items[0]).toMatchObject({
        id,
        kind: 'fails',
        lockKey: 'fails:1',
        attempts: 2,
        lastError: 'always 2',
      });
      expect(failed.items[0]?.payload).toEqual({ n: 1 });
      expect(await queue.pendingCount(q, 3600)).toBe(0);
      expect(outcomes()).toEqual(['retried', 'dead_lettered']);

      failing = false;
      expect(await queue.retryFailed(q, id)).toBe(true);
      expect(await queue.retryFailed(q, id)).toBe(false);
      await waitFor('the retried run', () => outcomes().includes('completed'));
      expect(await queue.failedCount(q)).toBe(0);
      expect(runs).toBe(3);

      failing = true;
      const second = await queue.enqueue(q, 'fails', 'fails:2', {}, { maxAttempts: 1 });
      await waitFor(
        'the second dead letter',
        () => outcomes().filter((o) => o === 'dead_lettered').length === 2,
      );
      expect(await queue.failedCount(q)).toBe(1);
      expect(await queue.deleteFailed(q, second.id)).toBe(true);
      expect(await queue.deleteFailed(q, second.id)).toBe(false);
    });

    it('dead-letters a job whose every run is cut off before it finishes, after its attempt budget', async () => {
      // As a job that SIGKILLs its worker: each run is abandoned without an outcome (here the
      // worker stops at once, cancelling it), its claim left behind for the next worker to take
      // over. Counted as each run starts, such runs spend the budget; uncounted, it ran forever.
      const { id } = await queue.enqueue(q, 'kills', 'repo:kills', { n: 1 }, { maxAttempts: 2 });
      let runs = 0;
      let worker: JobRunner | undefined;
      const handler: JobHandler = {
        kind: 'kills',
        async run({ signal }) {
          runs++;
          void worker?.stop(0);
          await untilAborted(signal);
        },
      };
      for (let round = 0; round < 4 && (await queue.failedCount(q)) === 0; round++) {
        worker = startWorker([handler]);
        await waitFor(
          'a run or the dead letter',
          async () => runs > round || (await queue.failedCount(q)) === 1,
          backend.lockTtlMs * 3 + 30_000,
        );
        await worker.stop(0);
      }
      expect(runs).toBe(2);
      expect(outcomes()).toEqual(['cancelled', 'cancelled', 'dead_lettered']);
      const failed = (await queue.listFailed(q)).items;
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ id, attempts: 2 });
      expect(failed[0]?.lastError).toMatch(/2 runs started and none finished/);
      expect(await queue.pendingCount(q, 3600)).toBe(0);
      expect(await queue.deleteFailed(q, id)).toBe(true);
    });

    it('dead-letters at once on a terminal error, an unparseable payload or an unknown kind', async () => {
      let terminalRuns = 0;
      let strictRuns = 0;
      await queue.enqueue(q, 'terminal', 'k:1', {});
      await queue.enqueue(q, 'strict', 'k:2', { digest: 42 });
      await queue.enqueue(q, 'nobody-handles-this', 'k:3', {});
      startWorker([
        {
          kind: 'terminal',
          async run() {
            terminalRuns++;
            throw new TerminalJobError('the peer answered 403');
          },
        },
        {
          kind: 'strict',
          parse(payload: unknown): string {
            const digest = (payload as { digest?: unknown }).digest;
            if (typeof digest !== 'string') throw new Error('digest must be a string');
            return digest;
          },
          async run() {
            strictRuns++;
          },
        },
      ]);
      await waitFor('three dead letters', () => outcomes().filter((o) => o === 'dead_lettered').length === 3);
      expect(await queue.failedCount(q)).toBe(3);
      const errors = (await queue.listFailed(q)).items.map((job) => [job.kind, job.attempts, job.lastError]);
      expect(errors).toEqual(
        expect.arrayContaining([
          ['terminal', 1, 'the peer answered 403'],
          ['strict', 0, 'unparseable payload: digest must be a string'],
          ['nobody-handles-this', 0, 'unknown job kind "nobody-handles-this"'],
        ]),
      );
      expect([terminalRuns, strictRuns]).toEqual([1, 0]);
      for (const job of (await queue.listFailed(q)).items) await queue.deleteFailed(q, job.id);
    });

    it('quarantines a corrupt record and runs the jobs behind it', async () => {
      // Ready before the good job, so that a poll meets them first.
      const garbage = pendingName(0, newJobId(0));
      const wrongVersion = pendingName(1, newJobId(1));
      await backend.store.put(paths.pending(q, garbage), '{"id": "trunc');
      const valid = JSON.parse(
        encodeEnvelope({
          id: 'x',
          queue: q,
          kind: 'k',
          lockKey: 'l',
          createdAt: new Date().toISOString(),
          attempts: 0,
          notBefore: new Date().toISOString(),
          payload: {},
        }),
      );
      await backend.store.put(paths.pending(q, wrongVersion), JSON.stringify({ ...valid, version: 99 }));
      let runs = 0;
      await queue.enqueue(q, 'good', 'good:1', {});
      startWorker([{ kind: 'good', run: async () => void runs++ }]);
      await waitFor('the good job', () => outcomes().includes('completed'));
      expect(runs).toBe(1);
      expect(await backend.store.list(paths.pendingDir(q))).toEqual([]);
      expect(await backend.store.list(paths.quarantineDir(q))).toEqual([garbage, wrongVersion].sort());
      expect((await backend.store.get(paths.quarantined(q, garbage))).toString()).toBe('{"id": "trunc');
      await backend.store.deletePrefix(paths.quarantineDir(q));
    });

    it('takes over the job of a worker that died holding it, once its lock lapses', async () => {
      const lockKey = 'repo:dead';
      const { id } = await queue.enqueue(q, 'work', lockKey, {});
      // What a worker SIGKILLed mid-run leaves: its claim, and its lock until the TTL runs out.
      await backend.store.put(
        paths.claim(q, id),
        encodeClaim({
          token: 'dead-token',
          lockKey,
          worker: 'dead-worker',
          claimedAt: new Date().toISOString(),
        }),
      );
      await backend.holdAsDeadWorker?.(lockKey);
      let runs = 0;
      startWorker([{ kind: 'work', run: async () => void runs++ }]);
      await waitFor('the takeover', () => finished.length === 1, backend.lockTtlMs * 3 + 30_000);
      expect(outcomes()).toEqual(['completed']);
      expect(runs).toBe(1);
    });

    it("leaves a dead worker's job alone while its lock lives", async (context) => {
      if (backend.holdAsDeadWorkerUntil === undefined) return context.skip();
      const lockKey = 'repo:dead-long';
      const { id } = await queue.enqueue(q, 'work', lockKey, {});
      await backend.store.put(
        paths.claim(q, id),
        encodeClaim({
          token: 'dead-token',
          lockKey,
          worker: 'dead-worker',
          claimedAt: new Date().toISOString(),
        }),
      );
      const lapse = await backend.holdAsDeadWorkerUntil(lockKey);
      let runs = 0;
      startWorker([{ kind: 'work', run: async () => void runs++ }]);
      await sleep(20 * POLL_MS); // many polls and takeover attempts, all refused by the lock
      expect(runs).toBe(0);
      expect(await queue.pendingCount(q, 0)).toBe(1);
      await lapse();
      await waitFor('the takeover', () => finished.length === 1);
      expect(outcomes()).toEqual(['completed']);
    });

    it('cancels a run whose lock is lost; the job runs again after, never at the same time', async (context) => {
      if (backend.loseLock === undefined) return context.skip();
      const lockKey = 'repo:lost';
      const reasons: unknown[] = [];
      let active = 0;
      let maxActive = 0;
      let runs = 0;
      let started = false;
      await queue.enqueue(q, 'long', lockKey, {});
      const handler: JobHandler = {
        kind: 'long',
        async run({ signal }) {
          runs++;
          active++;
          maxActive = Math.max(maxActive, active);
          try {
            if (runs > 1) return;
            started = true;
            await untilAborted(signal);
            reasons.push(signal.reason);
          } finally {
            active--;
          }
        },
      };
      startWorker([handler]);
      startWorker([handler]);
      await waitFor('the first run', () => started);
      await backend.loseLock(lockKey);
      await waitFor('the cancellation', () => reasons.length === 1);
      expect(reasons[0]).toBeInstanceOf(LockLostError);
      await waitFor('the second run', () => outcomes().includes('completed'), backend.lockTtlMs * 3 + 30_000);
      expect(outcomes()).toEqual(['cancelled', 'completed']);
      expect(runs).toBe(2);
      expect(maxActive).toBe(1);
    });

    it('stops claiming on stop, aborts what still runs after the grace, and another worker finishes it', async () => {
      let runs = 0;
      let aborted = false;
      await queue.enqueue(q, 'slow', 'repo:slow', {});
      const handler: JobHandler = {
        kind: 'slow',
        async run({ signal }) {
          runs++;
          if (runs > 1) return;
          await untilAborted(signal);
          aborted = true;
        },
      };
      const first = startWorker([handler]);
      await waitFor('the first run', () => runs === 1);
      await first.stop(100);
      expect(aborted).toBe(true);
      expect(first.inFlight).toBe(0);
      expect(await queue.pendingCount(q, 0)).toBe(1);
      startWorker([handler]);
      await waitFor('the second run', () => outcomes().includes('completed'), backend.lockTtlMs * 3 + 30_000);
      expect(outcomes()).toEqual(['cancelled', 'completed']);
    });

    it('does not retry or dead-letter a job deleted while it ran', async () => {
      await queue.enqueue(q, 'doomed', 'repo:doomed', {});
      startWorker([
        {
          kind: 'doomed',
          async run({ job }) {
            expect(await queue.deletePending(q, job.id)).toBe(true);
            throw new Error('failed after its deletion');
          },
        },
      ]);
      await waitFor('the run', () => finished.length === 1);
      expect(outcomes()).toEqual(['deleted']);
      expect(await queue.pendingCount(q, 3600)).toBe(0);
      expect(await queue.failedCount(q)).toBe(0);
    });

    it('lists pending jobs a page at a time, counts those ready within the horizon, deletes by id', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await queue.enqueue(q, 'k', `page:${i}`, { i })).id);
      const later = await queue.enqueue(
        q,
        'k',
        'page:later',
        {},
        { notBefore: new Date(Date.now() + 3600_000) },
      );

      const first = await queue.listPending(q, { n: 2 });
      expect(first.items.map((job) => job.id)).toEqual(ids.slice(0, 2));
      expect(first.items[0]).toMatchObject({
        queue: q,
        kind: 'k',
        lockKey: 'page:0',
        attempts: 0,
        claimed: false,
      });
      const second = await queue.listPending(q, { n: 2, last: first.last });
      expect(second.items.map((job) => job.id)).toEqual(ids.slice(2, 4));
      const rest = await queue.listPending(q, { n: 10, last: second.last });
      expect(rest.items.map((job) => job.id)).toEqual([ids[4], later.id]);
      expect(rest.last).toBeUndefined();

      expect(await queue.pendingCount(q, 600)).toBe(5);
      expect(await queue.pendingCount(q, 7200)).toBe(6);
      expect(await queue.queues()).toContain(q);

      // Deleting a pending job frees its lock key: the next enqueue is a new job.
      expect(await queue.deletePending(q, ids[0] as string)).toBe(true);
      expect(await queue.deletePending(q, ids[0] as string)).toBe(false);
      expect((await queue.enqueue(q, 'k', 'page:0', {})).deduplicated).toBe(false);
      expect((await queue.enqueue(q, 'k', 'page:1', {})).deduplicated).toBe(true);
      for (const job of (await queue.listPending(q, { n: 100 })).items) await queue.deletePending(q, job.id);
    });
  });
}
