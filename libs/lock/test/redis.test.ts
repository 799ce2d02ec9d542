import { randomUUID } from 'node:crypto';
import { type RedisServer, skipWithout, startRedisServer } from '@angos/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockLostError } from '../src/index.js';
import { RedisLockManager } from '../src/redis/redis-lock.js';
import { describeLockContract } from '../src/testing/contract.js';

let server: RedisServer;
let admin: Redis;

const skip = skipWithout('the Redis lock tests', 'redis-server');

beforeAll(async () => {
  if (skip) return;
  server = await startRedisServer();
  admin = new Redis(server.url);
}, 30_000);

afterAll(async () => {
  await admin?.quit();
  await server?.stop();
});

const TTL_SECS = 1;

/** Resolves once a paused server takes writes again (a write of its own waits for that). */
async function waitForWritesToResume(): Promise<void> {
  await admin.set(`resume-${randomUUID()}`, '1', 'PX', 1000);
}

describe.skipIf(skip)('Redis locks', () => {
  describeLockContract(
    'redis',
    async () => {
      const keyPrefix = `test-${randomUUID()}`;
      const options = { url: server.url, ttlSecs: TTL_SECS, keyPrefix, retryDelayMs: 5 };
      return {
        backend: 'redis',
        manager: ({ maxRetries } = {}) => new RedisLockManager({ ...options, maxRetries: maxRetries ?? 100 }),
        distributed: {
          ttlMs: TTL_SECS * 1000,
          holder: { backend: 'redis', options },
          steal: async (key) => {
            await admin.set(`${keyPrefix}:${key}`, 'intruder', 'PX', 60_000);
          },
          remove: async (key) => {
            await admin.del(`${keyPrefix}:${key}`);
          },
          removedReason: 'ownership_lost',
          leftovers: () => admin.keys(`${keyPrefix}:*`),
        },
        async cleanup() {},
      };
    },
    { distributed: true },
  );

  describe('RedisLockManager', () => {
    it('stores each lock as <key_prefix>:<key> with the TTL as PX', async () => {
      const locks = new RedisLockManager({ url: server.url, ttlSecs: 7, keyPrefix: 'angos-locks' });
      try {
        await locks.withLocks(['tag:team/app:latest'], async () => {
          const ttl = await admin.pttl('angos-locks:tag:team/app:latest');
          expect(ttl).toBeGreaterThan(6000);
          expect(ttl).toBeLessThanOrEqual(7000);
        });
        expect(await admin.exists('angos-locks:tag:team/app:latest')).toBe(0);
      } finally {
        await locks.close();
      }
    });

    it('gives the lock up with heartbeat_failure when Redis stops answering renewals', async () => {
      const locks = new RedisLockManager({ url: server.url, ttlSecs: 1, keyPrefix: `pause-${randomUUID()}` });
      try {
        const error = await locks
          .withLocks(['k'], async (signal) => {
            // Writes (the renewal script) block on the server for longer than the TTL.
            await admin.call('CLIENT', 'PAUSE', '2500', 'WRITE');
            await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(LockLostError);
        expect((error as LockLostError).reason).toBe('heartbeat_failure');
        expect((error as LockLostError).transient).toBe(true); // 503 at the HTTP edge
      } finally {
        await admin.call('CLIENT', 'UNPAUSE');
        await locks.close();
      }
    });

    it('leaves no lock key behind when a SET NX times out on our side and runs later', async () => {
      const keyPrefix = `late-set-${randomUUID()}`;
      // ttl 5 s: commands time out after ttl / 3 (1.7 s), well before the key would lapse.
      const options = { url: server.url, ttlSecs: 5, keyPrefix, maxRetries: 0 };
      const locks = new RedisLockManager(options);
      try {
        // Writes block on the server past the command timeout; the SET runs when they resume.
        await admin.call('CLIENT', 'PAUSE', '2500', 'WRITE');
        const error = await locks.withLocks(['k'], async () => 'entered').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        expect(String(error)).toMatch(/timed out/i);
        await waitForWritesToResume();
        await new Promise((resolve) => setTimeout(resolve, 500)); // the paused SET has run by now
        expect(await admin.exists(`${keyPrefix}:k`)).toBe(0);
        const next = new RedisLockManager(options);
        try {
          expect(await next.withLocks(['k'], async () => 'taken')).toBe('taken');
        } finally {
          await next.close();
        }
      } finally {
        await admin.call('CLIENT', 'UNPAUSE');
        await locks.close();
      }
    });

    it('reports a connection error as an acquisition failure, not a timeout', async () => {
      const locks = new RedisLockManager({ url: 'redis://127.0.0.1:1', ttlSecs: 1 });
      try {
        const error = await locks.withLocks(['k'], async () => {}).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).name).not.toBe('LockTimeoutError');
      } finally {
        await locks.close();
      }
    });
  });
});
