import { randomUUID } from 'node:crypto';
import { RedisLockManager } from '@angos/lock/redis';
import { S3LockManager } from '@angos/lock/s3';
import { type MetadataStore, openMetadataStore } from '@angos/storage';
import { type RedisServer, skipWithout, startRedisServer } from '@angos/test-support';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { describeJobQueueContract } from './contract.js';

/** The Ceph RGW of this run (s3-global-setup.ts); null when it could not start outside CI. */
const s3 = inject('s3');
const noRedis = skipWithout('the job queue tests on S3 with the Redis lock', 'redis-server');

let admin: S3Client;
let redis: RedisServer | undefined;
let redisAdmin: Redis | undefined;

beforeAll(async () => {
  if (!s3) return;
  admin = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  if (!noRedis) {
    redis = await startRedisServer();
    redisAdmin = new Redis(redis.url);
  }
}, 60_000);

afterAll(async () => {
  admin?.destroy();
  await redisAdmin?.quit();
  await redis?.stop();
});

/** Below the configuration's minimum of 9, so that a dead worker's job is taken over within seconds. */
const S3_TTL_SECS = 3;
const REDIS_TTL_SECS = 1;

function connection(keyPrefix: string) {
  if (!s3) throw new Error('no S3 server');
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    keyPrefix,
    maxAttempts: 3,
    operationTimeoutSecs: 30,
    operationAttemptTimeoutSecs: 10,
  };
}

async function openStore(keyPrefix: string): Promise<MetadataStore> {
  return openMetadataStore({
    kind: 's3',
    ...connection(keyPrefix),
    linkCacheTtlSecs: 30,
    accessTimeDebounceSecs: 0,
  });
}

describe.skipIf(!s3)('S3 metadata store', () => {
  describeJobQueueContract('s3 store, s3 lock', async () => {
    const keyPrefix = `jobs-test/${randomUUID()}`;
    const store = await openStore(keyPrefix);
    const lockObject = (lockKey: string) => `${keyPrefix}/_locks/${encodeURIComponent(lockKey)}`;
    return {
      store,
      locks: () =>
        new S3LockManager({
          ...connection(keyPrefix),
          ttlSecs: S3_TTL_SECS,
          maxRetries: 100,
          retryDelayMs: 50,
          maxHoldSecs: 120,
        }),
      lockTtlMs: S3_TTL_SECS * 1000,
      async holdAsDeadWorker(lockKey) {
        const body = JSON.stringify({ token: 'dead-worker', owner: 'dead:1', renewal: 0 });
        await admin.send(new PutObjectCommand({ Bucket: s3?.bucket, Key: lockObject(lockKey), Body: body }));
      },
      async loseLock(lockKey) {
        // Another owner's lock object: the holder's next renewal finds it (ownership_lost). Deleting
        // the object instead would let a second worker take the lock before the holder's next
        // renewal learns it lost it: S3 locks cannot bound that overlap.
        const body = JSON.stringify({ token: 'intruder', owner: 'intruder:1', renewal: 0 });
        await admin.send(new PutObjectCommand({ Bucket: s3?.bucket, Key: lockObject(lockKey), Body: body }));
      },
      async cleanup() {
        await store.deletePrefix('_jobs').catch(() => {});
        await store.close?.();
      },
    };
  });

  describe.skipIf(noRedis)('with the Redis lock', () => {
    describeJobQueueContract('s3 store, redis lock', async () => {
      const keyPrefix = `jobs-test/${randomUUID()}`;
      const store = await openStore(keyPrefix);
      return {
        store,
        locks: () =>
          new RedisLockManager({
            url: redis?.url ?? '',
            ttlSecs: REDIS_TTL_SECS,
            keyPrefix,
            retryDelayMs: 5,
          }),
        lockTtlMs: REDIS_TTL_SECS * 1000,
        async holdAsDeadWorker(lockKey) {
          await redisAdmin?.set(`${keyPrefix}:${lockKey}`, 'dead-worker', 'PX', REDIS_TTL_SECS * 1000);
        },
        async holdAsDeadWorkerUntil(lockKey) {
          await redisAdmin?.set(`${keyPrefix}:${lockKey}`, 'dead-worker', 'PX', 60_000);
          return async () => void (await redisAdmin?.del(`${keyPrefix}:${lockKey}`));
        },
        async loseLock(lockKey) {
          await redisAdmin?.set(`${keyPrefix}:${lockKey}`, 'intruder', 'PX', REDIS_TTL_SECS * 1000);
        },
        async cleanup() {
          await store.deletePrefix('_jobs').catch(() => {});
          await store.close?.();
        },
      };
    });
  });
});
