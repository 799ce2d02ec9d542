import { describe, expect, inject, it } from 'vitest';
import { fuzz, s3StorageToml } from '../src/index.js';

const s3 = inject('s3');

describe.skipIf(s3 === null)('HTTP fuzz on S3 (short form)', () => {
  it('answers 600 seeded malformed requests with 4xx and OCI bodies on Ceph RGW, never a 5xx, hang or reset', async () => {
    const report = await fuzz({ requests: 600, seed: 20261125, storageToml: s3StorageToml(s3!, 'fuzz') });
    expect(report.failures).toEqual([]);
    expect(report.requests).toBe(600);
    for (const status of ['400', '404']) expect(report.statuses[status]).toBeGreaterThan(0);
  }, 120_000);
});
