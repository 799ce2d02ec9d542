import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLockManager } from '@angos/lock';
import { createMetadataStore, type ListPageOptions, type MetadataStore } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { type JobFinished, JobQueue, JobRunner } from '../src/index.js';
import { paths } from '../src/layout.js';

/**
 * `angos worker --poll-interval`: a queue holding only backed-off jobs is looked at again when the
 * soonest one is due (capped by maxIdleWaitMs), not every poll interval. Counted in first pages
 * of `pending/`, one per look; a loaded machine makes fewer looks, never more.
 */

const Q = 'idle';
const POLL_MS = 50;

/** The in-memory store, counting the looks at the head of the queue's `pending/`. */
function countingStore(): { store: MetadataStore; looks: () => number } {
  const inner = createMetadataStore({ kind: 'memory' });
  let looks = 0;
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'listPage') {
        return (prefix: string, options: ListPageOptions) => {
          // A look reads the head of `pending/`: its first page starts at the beginning.
          if (prefix === paths.pendingDir(Q) && options.after === undefined) looks++;
          return target.listPage(prefix, options);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, looks: () => looks };
}

let runner: JobRunner | undefined;
afterEach(async () => {
  await runner?.stop(0);
  runner = undefined;
});

function start(
  store: MetadataStore,
  finished: JobFinished[],
  maxIdleWaitMs?: number,
  pollIntervalMs = POLL_MS,
  backOffWhenEmpty = false,
): void {
  runner = new JobRunner({
    queue: new JobQueue({ store }),
    locks: new MemoryLockManager(),
    pools: [{ name: Q, concurrency: 1 }],
    handlers: [{ kind: 'noop', run: async () => {} }],
    pollIntervalMs,
    maxIdleWaitMs,
    backOffWhenEmpty,
    onJobFinished: (event) => finished.push(event),
  });
  runner.start();
}

describe('JobRunner idle wait', () => {
  it('waits for the soonest backed-off job instead of polling, and runs it when due', async () => {
    const { store, looks } = countingStore();
    const finished: JobFinished[] = [];
    await new JobQueue({ store }).enqueue(Q, 'noop', 'k', {}, { notBefore: new Date(Date.now() + 1500) });
    start(store, finished);
    await sleep(1000);
    // Polling every 50 ms would have looked ~20 times; waiting for the job, once (twice if slow).
    expect(looks()).toBeLessThanOrEqual(2);
    const deadline = Date.now() + 20_000;
    while (finished.length === 0 && Date.now() < deadline) await sleep(20);
    expect(finished.map((event) => event.outcome)).toEqual(['completed']);
  });

  it('looks again after maxIdleWaitMs however far the soonest job is', async () => {
    const { store, looks } = countingStore();
    await new JobQueue({ store }).enqueue(Q, 'noop', 'k', {}, { notBefore: new Date(Date.now() + 3600_000) });
    start(store, [], 200);
    const deadline = Date.now() + 20_000;
    while (looks() < 3 && Date.now() < deadline) await sleep(20);
    expect(looks()).toBeGreaterThanOrEqual(3);
  });

  it('polls an empty queue every poll interval (a new job is seen at once)', async () => {
    const { store, looks } = countingStore();
    const finished: JobFinished[] = [];
    start(store, finished);
    const deadline = Date.now() + 20_000;
    while (looks() < 4 && Date.now() < deadline) await sleep(10);
    expect(looks()).toBeGreaterThanOrEqual(4);
    await new JobQueue({ store }).enqueue(Q, 'noop', 'k', {});
    while (finished.length === 0 && Date.now() < deadline) await sleep(10);
    expect(finished).toHaveLength(1);
  });

  it('looks at once when poked (a job enqueued in this process), whatever the poll interval', async () => {
    const { store, looks } = countingStore();
    const finished: JobFinished[] = [];
    start(store, finished, undefined, 3600_000);
    const deadline = Date.now() + 20_000;
    // Poked at any point of the first look, or after it: both must lead to another look.
    while (looks() < 1 && Date.now() < deadline) await sleep(1);
    await new JobQueue({ store }).enqueue(Q, 'noop', 'k', {});
    runner?.poke(Q);
    while (finished.length === 0 && Date.now() < deadline) await sleep(10);
    expect(finished).toHaveLength(1);
  });

  it('with backOffWhenEmpty, looks at an empty queue less and less often; a poke looks at once and starts over', async () => {
    const { store, looks } = countingStore();
    const finished: JobFinished[] = [];
    start(store, finished, 5000, POLL_MS, true);
    await sleep(1600);
    // Looks at 0, 50, 150, 350, 750 and 1,550 ms, the next at 3,150 (at the poll interval: ~32).
    expect(looks()).toBeLessThanOrEqual(7);
    expect(looks()).toBeGreaterThanOrEqual(3);
    await new JobQueue({ store }).enqueue(Q, 'noop', 'k', {});
    const poked = Date.now();
    runner?.poke(Q);
    const deadline = Date.now() + 20_000;
    while (finished.length === 0 && Date.now() < deadline) await sleep(5);
    expect(finished).toHaveLength(1);
    expect(Date.now() - poked).toBeLessThan(1000); // the next look was 1,500 ms away
    // Empty again: the waits start over from the poll interval, not from the longest.
    const before = looks();
    await sleep(400);
    expect(looks() - before).toBeGreaterThanOrEqual(2);
  });

  it('with backOffWhenEmpty, still finds a job enqueued elsewhere (not poked) within maxIdleWaitMs', async () => {
    const { store } = countingStore();
    const finished: JobFinished[] = [];
    start(store, finished, 300, POLL_MS, true);
    await sleep(1000); // backed off to the longest wait
    const enqueued = Date.now();
    await new JobQueue({ store }).enqueue(Q, 'noop', 'k', {});
    const deadline = Date.now() + 20_000;
    while (finished.length === 0 && Date.now() < deadline) await sleep(5);
    expect(finished).toHaveLength(1);
    expect(Date.now() - enqueued).toBeLessThan(300 + 1000);
  });
});
