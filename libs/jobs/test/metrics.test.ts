import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLockManager } from '@angos/lock';
import { createMetrics } from '@angos/observability';
import { createMetadataStore } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import {
  instrumentedEnqueue,
  type JobFinished,
  JobQueue,
  JobRunner,
  recordJobFinished,
  startQueueGauges,
} from '../src/index.js';

/** The metric names of the configuration reference, as /metrics shows them. */

async function until(text: () => Promise<string>, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const body = await text();
    if (pattern.test(body) || Date.now() > deadline) return body;
    await sleep(20);
  }
}

describe('job queue metrics', () => {
  it('counts enqueues with dedup, and failed enqueues', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const enqueue = instrumentedEnqueue(
      new JobQueue({ store: createMetadataStore({ kind: 'memory' }) }),
      metrics,
    );
    await enqueue('cache', 'k', 'a', {});
    await enqueue('cache', 'k', 'a', {});
    await enqueue('cache', 'k', 'b', {});
    await expect(enqueue('cache', 'k', 'c', { big: 1n })).rejects.toThrow();
    const { body } = await metrics.render();
    expect(body).toContain('angos_job_queue_enqueued_total{queue="cache",dedup="miss"} 2');
    expect(body).toContain('angos_job_queue_enqueued_total{queue="cache",dedup="hit"} 1');
    expect(body).toContain('angos_job_queue_enqueue_failures_total{queue="cache"} 1');
  });

  it('publishes the pending (within the horizon) and failed gauges, only while configured', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const store = createMetadataStore({ kind: 'memory' });
    const queue = new JobQueue({ store });
    await queue.enqueue('replication', 'k', 'now', {});
    await queue.enqueue('replication', 'k', 'soon', {}, { notBefore: new Date(Date.now() + 60_000) });
    await queue.enqueue('replication', 'k', 'later', {}, { notBefore: new Date(Date.now() + 3600_000) });
    let settings: { refreshIntervalSecs: number; readyHorizonSecs: number } | undefined = {
      refreshIntervalSecs: 5,
      readyHorizonSecs: 600,
    };
    const gauges = startQueueGauges({
      queue: () => queue,
      queues: ['replication', 'cache'],
      settings: () => settings,
      metrics,
    });
    const render = async () => (await metrics.render()).body;
    const body = await until(render, /angos_job_queue_failed\{queue="cache"\} 0/);
    expect(body).toContain('angos_job_queue_pending{queue="replication"} 2');
    expect(body).toContain('angos_job_queue_pending{queue="cache"} 0');
    expect(body).toContain('angos_job_queue_failed{queue="replication"} 0');
    await gauges.stop();

    settings = undefined;
    const unpublished = startQueueGauges({
      queue: () => queue,
      queues: ['replication'],
      settings: () => settings,
      metrics,
    });
    expect(await render()).not.toContain('angos_job_queue_pending{');
    await unpublished.stop();
  });

  it('records the duration and outcome of each run', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const store = createMetadataStore({ kind: 'memory' });
    const queue = new JobQueue({ store });
    await queue.enqueue('cache', 'mystery', 'x', {});
    const finished: JobFinished[] = [];
    const record = recordJobFinished(metrics);
    const runner = new JobRunner({
      queue,
      locks: new MemoryLockManager(),
      pools: [{ name: 'cache', concurrency: 1 }],
      handlers: [],
      pollIntervalMs: 20,
      onJobFinished: (event) => {
        record(event);
        finished.push(event);
      },
    });
    runner.start();
    const deadline = Date.now() + 20_000;
    while (finished.length === 0 && Date.now() < deadline) await sleep(20);
    await runner.stop(0);
    const { body } = await metrics.render();
    expect(body).toContain(
      'angos_jobs_finished_total{queue="cache",kind="mystery",outcome="dead_lettered"} 1',
    );
    expect(body).toContain('angos_job_duration_seconds_count{queue="cache",kind="mystery"} 1');
  });
});
