import { describe, expect, it } from 'vitest';
import { fuzz } from '../src/index.js';

describe('HTTP fuzz (short form)', () => {
  it('answers 1500 seeded malformed requests on raw sockets with 4xx and OCI bodies, never a 5xx, hang or reset', async () => {
    const report = await fuzz({ requests: 1500, seed: 20261124 });
    expect(report.failures).toEqual([]);
    expect(report.requests).toBe(1500);
    // The run exercised refusals of every kind, not just one path.
    for (const status of ['400', '404', '405', '431']) expect(report.statuses[status]).toBeGreaterThan(0);
  }, 120_000);
});
