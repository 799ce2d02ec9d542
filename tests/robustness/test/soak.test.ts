import { describe, expect, it } from 'vitest';
import { soak } from '../src/index.js';

describe('soak (short form)', () => {
  it('keeps fds, RSS and upload session dirs bounded under 20 s of mixed load with abandoned sessions', async () => {
    const report = await soak({ seconds: 20, seed: 20261124, warmupSeconds: 6, sampleEveryMs: 1000 });
    expect(report.errors).toEqual([]);
    expect(report.violations).toEqual([]);
    // The load really mixed everything, abandoned sessions included.
    for (const operation of ['push', 'pull', 'head', 'tags', 'delete', 'cancel', 'abandon'])
      expect(report.operations[operation]).toBeGreaterThan(0);
    expect(report.abandoned).toBeGreaterThan(0);
    expect(report.samples.at(-1)?.sessions).toBe(report.abandoned);
  }, 60_000);
});

describe('soak of a server of two serving threads (short form)', () => {
  it('keeps fds, RSS and upload session dirs bounded with the load spread over both threads', async () => {
    const report = await soak({
      seconds: 12,
      seed: 20261205,
      warmupSeconds: 5,
      sampleEveryMs: 1000,
      serverWorkers: 2,
    });
    expect(report.errors).toEqual([]);
    expect(report.violations).toEqual([]);
    for (const operation of ['push', 'pull', 'head', 'tags', 'delete', 'cancel', 'abandon'])
      expect(report.operations[operation]).toBeGreaterThan(0);
    expect(report.samples.at(-1)?.sessions).toBe(report.abandoned);
  }, 60_000);
});
