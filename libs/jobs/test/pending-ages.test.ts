import { setTimeout as sleep } from 'node:timers/promises';
import { createMetrics } from '@angos/observability';
import { createMetadataStore, type MetadataStore } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import {
  AGE_READS_PER_REFRESH,
  GAUGE_COUNT_CAP,
  JobQueue,
  type PendingAgeGauge,
  PendingAgeTracker,
  startQueueGauges,
} from '../src/index.js';

/**
 * The age of the oldest pending job per group (the replication lag per downstream): from the
 * gauges' bounded listing, each job's record read once while it is pending, the oldest first.
 */

const Q = 'replication';

/** The in-memory store, counting the records read (`get`). */
function countingStore(): { store: MetadataStore; reads: { count: number } } {
  const inner = createMetadataStore({ kind: 'memory' });
  const reads = { count: 0 };
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'get') {
        return (key: string) => {
          reads.count++;
          return target.get(key);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, reads };
}

const byDownstream: Omit<PendingAgeGauge, 'publish'> = {
  queue: Q,
  group: (payload) => (payload as { downstream?: string }).downstream,
};

describe('pending job ages', () => {
  it('is the age of the oldest pending job per group, each record read once', async () => {
    const { store, reads } = countingStore();
    let now = 1_000_000_000_000;
    const queue = new JobQueue({ store, now: () => now });
    await queue.enqueue(Q, 'k', 'a1', { downstream: 'a' });
    now += 10_000;
    const b1 = await queue.enqueue(Q, 'k', 'b1', { downstream: 'b' });
    // A backed-off job sorts late in the listing: still pending, and older than a2.
    now += 10_000;
    await queue.enqueue(Q, 'k', 'a2', { downstream: 'a' }, { notBefore: new Date(now + 3600_000) });
    await queue.enqueue(Q, 'k', 'none', {});
    now += 30_000;

    const tracker = new PendingAgeTracker({ ...byDownstream, publish: () => {} });
    const listing = () => queue.pendingNames(Q, GAUGE_COUNT_CAP);
    reads.count = 0;
    expect(Object.fromEntries(await tracker.refresh(queue, await listing()))).toEqual({ a: 50, b: 40 });
    expect(reads.count).toBe(4);

    // Known jobs are not read again; a finished one leaves its group.
    reads.count = 0;
    now += 5000;
    expect(await queue.deletePending(Q, b1.id)).toBe(true);
    reads.count = 0;
    expect(Object.fromEntries(await tracker.refresh(queue, await listing()))).toEqual({ a: 55 });
    expect(reads.count).toBe(0);
  });

  it(`reads at most ${AGE_READS_PER_REFRESH} records per refresh, the oldest first`, async () => {
    const { store, reads } = countingStore();
    let now = 2_000_000_000_000;
    const queue = new JobQueue({ store, now: () => now });
    const total = AGE_READS_PER_REFRESH + 20;
    for (let i = 0; i < total; i++) {
      await queue.enqueue(Q, 'k', `job-${i}`, { downstream: i === 0 ? 'old' : 'new' });
      now += 1000;
    }
    const tracker = new PendingAgeTracker({ ...byDownstream, publish: () => {} });
    reads.count = 0;
    const first = await tracker.refresh(queue, await queue.pendingNames(Q, GAUGE_COUNT_CAP));
    expect(reads.count).toBe(AGE_READS_PER_REFRESH);
    expect(first.get('old')).toBe(total);
    reads.count = 0;
    await tracker.refresh(queue, await queue.pendingNames(Q, GAUGE_COUNT_CAP));
    expect(reads.count).toBe(20);
  });

  it('is published with the queue gauges, and withdrawn while they are not', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const queue = new JobQueue({ store: createMetadataStore({ kind: 'memory' }) });
    await queue.enqueue(Q, 'k', 'x', { downstream: 'eu' });
    await queue.enqueue(Q, 'k', 'y', { downstream: 'us' }, { notBefore: new Date(Date.now() + 3600_000) });
    const published: Array<ReadonlyMap<string, number> | undefined> = [];
    let settings: { refreshIntervalSecs: number; readyHorizonSecs: number } | undefined = {
      refreshIntervalSecs: 5,
      readyHorizonSecs: 600,
    };
    const gauges = startQueueGauges({
      queue: () => queue,
      queues: [Q, 'cache'],
      settings: () => settings,
      metrics,
      pendingAges: [{ ...byDownstream, publish: (ages) => published.push(ages) }],
    });
    const deadline = Date.now() + 20_000;
    while (published.length === 0 && Date.now() < deadline) await sleep(20);
    await gauges.stop();
    expect([...(published[0]?.keys() ?? [])].sort()).toEqual(['eu', 'us']);
    // The count comes from the same listing: the backed-off job is beyond the horizon.
    expect((await metrics.render()).body).toContain(`angos_job_queue_pending{queue="${Q}"} 1`);

    settings = undefined;
    published.length = 0;
    const unpublished = startQueueGauges({
      queue: () => queue,
      queues: [Q],
      settings: () => settings,
      metrics,
      pendingAges: [{ ...byDownstream, publish: (ages) => published.push(ages) }],
    });
    await unpublished.stop();
    expect(published).toEqual([undefined]);
  });
});
