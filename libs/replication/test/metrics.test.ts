import { createMetrics } from '@angos/observability';
import { describe, expect, it } from 'vitest';
import { outcomeRecorder } from '../src/index.js';

const series = async (metrics: ReturnType<typeof createMetrics>, name: string) =>
  (await metrics.render()).body.split('\n').filter((line) => line.startsWith(`${name}{`));

describe('outcomeRecorder', () => {
  it('registers both metrics before the first job, so /metrics lists them at once', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    outcomeRecorder(metrics);
    const { body } = await metrics.render();
    expect(body).toContain('# TYPE angos_replication_push_total counter');
    expect(body).toContain('# TYPE angos_replication_last_success_timestamp_seconds gauge');
  });

  it.each(['pushed', 'converged', 'superseded'] as const)(
    '%s counts and moves the last success',
    async (outcome) => {
      const metrics = createMetrics({ defaultMetrics: false });
      const before = Date.now() / 1000;
      outcomeRecorder(metrics)('mirror', outcome);
      expect(await series(metrics, 'angos_replication_push_total')).toEqual([
        `angos_replication_push_total{downstream="mirror",outcome="${outcome}"} 1`,
      ]);
      const [last] = await series(metrics, 'angos_replication_last_success_timestamp_seconds');
      expect(Number(last?.split(' ')[1])).toBeGreaterThanOrEqual(Math.floor(before));
    },
  );

  it.each(['unsupported', 'failed'] as const)(
    '%s counts but leaves the last success alone',
    async (outcome) => {
      const metrics = createMetrics({ defaultMetrics: false });
      outcomeRecorder(metrics)('mirror', outcome);
      expect(await series(metrics, 'angos_replication_push_total')).toEqual([
        `angos_replication_push_total{downstream="mirror",outcome="${outcome}"} 1`,
      ]);
      expect(await series(metrics, 'angos_replication_last_success_timestamp_seconds')).toEqual([]);
    },
  );
});
