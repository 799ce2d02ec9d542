import { describe, expect, it } from 'vitest';
import { fuzzAuth } from '../src/index.js';

describe('authentication fuzz (short form)', () => {
  it('refuses malformed, oversized and forged Basic, Bearer and client-certificate credentials with 401 or 403, never a 5xx or a hang', async () => {
    const report = await fuzzAuth({ mutations: 150, seed: 20261204 });
    expect(report.failures).toEqual([]);
    // Both refusals were exercised: unauthenticated (401) and authenticated but not granted (403).
    for (const status of ['401', '403']) expect(report.statuses[status]).toBeGreaterThan(0);
  }, 120_000);
});
