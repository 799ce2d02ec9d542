import { describe, expect, it } from 'vitest';
import { crashLoop } from '../src/index.js';

describe('crash loop (short form)', () => {
  it('loses no acknowledged image and exposes no partial blob across SIGKILLs on fs with sync_to_disk', async () => {
    const report = await crashLoop({ kills: 6, seed: 20261124, keepOnFailure: false });
    expect(report.kills).toBe(6);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.partialReadable).toEqual([]);
    expect(report.hung).toEqual([]);
  }, 120_000);
});
