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

describe('crash loop with retention-style deletes (short form)', () => {
  it('never breaks an acknowledged image while old images sharing its layers are deleted and collected', async () => {
    const report = await crashLoop({ kills: 4, seed: 20261204, deletes: true, keepOnFailure: false });
    expect(report.kills).toBe(4);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.deleted).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.partialReadable).toEqual([]);
    expect(report.hung).toEqual([]);
  }, 120_000);
});

describe('crash loop of a server of two serving threads (short form)', () => {
  it('loses no acknowledged image when the process of every thread is killed mid-push', async () => {
    const report = await crashLoop({ kills: 4, seed: 20261205, serverWorkers: 2, keepOnFailure: false });
    expect(report.kills).toBe(4);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.partialReadable).toEqual([]);
    expect(report.hung).toEqual([]);
  }, 120_000);
});
