import { describe, expect, inject, it } from 'vitest';
import { crashLoop, s3StorageToml } from '../src/index.js';

const s3 = inject('s3');

describe.skipIf(s3 === null)('crash loop on S3 (short form)', () => {
  it('loses no acknowledged image and exposes no partial blob across SIGKILLs on Ceph RGW', async () => {
    const report = await crashLoop({
      kills: 5,
      seed: 20261124,
      storageToml: s3StorageToml(s3!, 'crashloop'),
    });
    expect(report.kills).toBe(5);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.partialReadable).toEqual([]);
    expect(report.hung).toEqual([]);
  }, 120_000);
});
