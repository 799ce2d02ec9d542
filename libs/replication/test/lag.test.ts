import { parseConfig } from '@angos/config';
import { createMetrics } from '@angos/observability';
import { describe, expect, it } from 'vitest';
import { replicationLagGauge } from '../src/index.js';

/** `angos_replication_lag_seconds{downstream}`: a series per configured downstream, 0 when none is pending. */
describe('the replication lag gauge', () => {
  it('groups jobs by downstream, shows 0 for a configured downstream without jobs, and is withdrawn unpublished', async () => {
    const { config } = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[[repository."team".downstream]]
name = "eu"
url = "https://eu.example.com"
[[repository."team".downstream]]
name = "us"
url = "https://us.example.com"
`);
    const metrics = createMetrics({ defaultMetrics: false });
    const gauge = replicationLagGauge({ config: () => config, metrics });
    expect(gauge.queue).toBe('replication');
    expect(gauge.group({ namespace: 'team/app', downstream: 'eu' })).toBe('eu');
    expect(gauge.group({ namespace: 'team/app' })).toBeUndefined();

    // `old` was removed from the configuration but still has jobs: shown until they are gone.
    gauge.publish(
      new Map([
        ['eu', 42.5],
        ['old', 7],
      ]),
    );
    const body = (await metrics.render()).body;
    expect(body).toContain('angos_replication_lag_seconds{downstream="eu"} 42.5');
    expect(body).toContain('angos_replication_lag_seconds{downstream="us"} 0');
    expect(body).toContain('angos_replication_lag_seconds{downstream="old"} 7');

    gauge.publish(undefined);
    expect((await metrics.render()).body).not.toContain('angos_replication_lag_seconds{');
  });
});
