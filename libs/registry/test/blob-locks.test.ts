import { MemoryLockManager } from '@angos/lock';
import { RedisLockManager } from '@angos/lock/redis';
import { S3LockManager } from '@angos/lock/s3';
import { parseDigest } from '@angos/oci';
import { FsMetadataStore, MemoryMetadataStore } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { BlobLocks } from '../src/blob-locks.js';

const DIGEST = parseDigest(`sha256:${'b'.repeat(64)}`);

/** Built, never connected: the choice depends on the strategy and the store, not on traffic. */
function s3Lock(): S3LockManager {
  return new S3LockManager({
    endpoint: 'http://127.0.0.1:1',
    region: 'us-east-1',
    bucket: 'unused',
    accessKeyId: 'a',
    secretAccessKey: 'b',
    ttlSecs: 30,
    maxRetries: 1,
    retryDelayMs: 50,
    maxHoldSecs: 300,
    operationTimeoutSecs: 1,
    operationAttemptTimeoutSecs: 1,
    maxAttempts: 1,
  });
}

describe('BlobLocks', () => {
  it('locks a digest across namespaces with the memory and Redis strategies', async () => {
    const redis = new RedisLockManager({ url: 'redis://127.0.0.1:1', ttlSecs: 10 });
    try {
      for (const locks of [new MemoryLockManager(), redis]) {
        const blobLocks = new BlobLocks(locks, new MemoryMetadataStore());
        expect(blobLocks.global).toBe(true);
        expect(blobLocks.keys('team/app', [DIGEST])).toEqual([`blob:sha256:${DIGEST.hex}`]);
      }
    } finally {
      await redis.close();
    }
  });

  it('leaves digests out of cross-namespace locking with the S3 lock over compare-and-swap', async () => {
    const locks = s3Lock();
    try {
      const blobLocks = new BlobLocks(locks, new MemoryMetadataStore());
      expect(blobLocks.global).toBe(false);
      expect(blobLocks.keys('team/app', [DIGEST])).toEqual([`blob:team/app:sha256:${DIGEST.hex}`]);
      // Without compare-and-swap the index needs the global lock, whatever the strategy.
      expect(
        new BlobLocks(locks, new FsMetadataStore('/nonexistent-angos-root', { syncToDisk: false })).global,
      ).toBe(true);
    } finally {
      await locks.close();
    }
  });
});
