import { createMetrics, type Metrics } from '@angos/observability';
import { describe, expect, it } from 'vitest';
import { instrumentLocks, MemoryLockManager } from '../src/index.js';

async function series(metrics: Metrics, name: string): Promise<Array<{ labels: object; value: number }>> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values.map(({ labels, value }) => ({ labels, value }));
}

describe('instrumentLocks', () => {
  it('registers the reference lock metrics with their types and label names', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    instrumentLocks(new MemoryLockManager(), metrics);
    const metric = (name: string) =>
      metrics.registry.getSingleMetric(name) as unknown as {
        labelNames: string[];
      };
    const text = (await metrics.render()).body;
    expect(text).toContain('# TYPE lock_acquisition_duration_ms histogram');
    for (const name of [
      'lock_acquisitions_total',
      'lock_retries_total',
      'lock_invalidations_total',
      'lock_recoveries_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} counter`);
    }
    expect(metric('lock_acquisition_duration_ms').labelNames).toEqual(['backend']);
    expect(metric('lock_acquisitions_total').labelNames).toEqual(['backend', 'result']);
    expect(metric('lock_retries_total').labelNames).toEqual(['backend']);
    expect(metric('lock_invalidations_total').labelNames).toEqual(['backend', 'reason']);
    expect(metric('lock_recoveries_total').labelNames).toEqual(['backend', 'result']);
  });

  it('counts a success per acquisition and times it, whether the work succeeds or throws', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const locks = instrumentLocks(new MemoryLockManager(), metrics);
    expect(locks.backend).toBe('memory');
    await locks.withLocks(['a'], async () => {});
    await expect(
      locks.withLocks(['a', 'b'], async () => {
        throw new Error('work failed, not the lock');
      }),
    ).rejects.toThrow('work failed');
    expect(await series(metrics, 'lock_acquisitions_total')).toEqual([
      { labels: { backend: 'memory', result: 'success' }, value: 2 },
    ]);
    const durations = await series(metrics, 'lock_acquisition_duration_ms');
    expect(durations).toContainEqual({ labels: { backend: 'memory' }, value: 2 }); // the _count series
  });

  it('does not count an acquisition the caller cancelled', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const locks = instrumentLocks(new MemoryLockManager(), metrics);
    let release!: () => void;
    const held = locks.withLocks(['k'], () => new Promise<void>((resolve) => (release = resolve)));
    const cancel = new AbortController();
    const waiting = locks.withLocks(['k'], async () => {}, { signal: cancel.signal });
    cancel.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    release();
    await held;
    expect(await series(metrics, 'lock_acquisitions_total')).toEqual([
      { labels: { backend: 'memory', result: 'success' }, value: 1 },
    ]);
  });

  it('shares the series when two managers are instrumented on one registry', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const one = instrumentLocks(new MemoryLockManager(), metrics);
    const two = instrumentLocks(new MemoryLockManager(), metrics);
    await one.withLocks(['k'], async () => {});
    await two.withLocks(['k'], async () => {});
    expect(await series(metrics, 'lock_acquisitions_total')).toEqual([
      { labels: { backend: 'memory', result: 'success' }, value: 2 },
    ]);
  });
});
