import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisLockManager } from '@angos/lock/redis';
import { createMetadataStore } from '@angos/storage';
import { type RedisServer, skipWithout, startRedisServer } from '@angos/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { describeJobQueueContract } from './contract.js';

let server: RedisServer;
let admin: Redis;

const skip = skipWithout('the job queue tests with the Redis lock', 'redis-server');

beforeAll(async () => {
  if (skip) return;
  server = await startRedisServer();
  admin = new Redis(server.url);
}, 30_000);

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

/** Short, so that a dead worker's job is taken over within seconds. */
const TTL_SECS = 1;

describe.skipIf(skip)('Redis lock', () => {
  // Worker processes on one shared directory (NFS, EFS) coordinated by Redis.
  describeJobQueueContract('fs store, redis lock', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'angos-jobs-'));
    const keyPrefix = `jobs-${randomUUID()}`;
    return {
      store: createMetadataStore({ kind: 'fs', rootDir: dir, syncToDisk: false }),
      locks: () => new RedisLockManager({ url: server.url, ttlSecs: TTL_SECS, keyPrefix, retryDelayMs: 5 }),
      lockTtlMs: TTL_SECS * 1000,
      async holdAsDeadWorker(lockKey) {
        await admin.set(`${keyPrefix}:${lockKey}`, 'dead-worker', 'PX', TTL_SECS * 1000);
      },
      async holdAsDeadWorkerUntil(lockKey) {
        await admin.set(`${keyPrefix}:${lockKey}`, 'dead-worker', 'PX', 60_000);
        return async () => void (await admin.del(`${keyPrefix}:${lockKey}`));
      },
      async loseLock(lockKey) {
        // Another owner's token: the holder's next renewal finds it (ownership_lost).
        await admin.set(`${keyPrefix}:${lockKey}`, 'intruder', 'PX', TTL_SECS * 1000);
      },
      async cleanup() {
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
});
