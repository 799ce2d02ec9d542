import { silentLogger } from '@angos/observability';
import { skipWithout } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../src/cache/memory.js';
import { RedisCache } from '../src/cache/redis.js';
import { type RedisServer, startRedis } from './redis-server.js';

describe('MemoryCache', () => {
  it('stores values until they expire', async () => {
    let now = 1000;
    const cache = new MemoryCache(10, () => now);
    await cache.set('a', '1', 10);
    expect(await cache.get('a')).toBe('1');
    now += 10_000;
    expect(await cache.get('a')).toBeUndefined();
    await cache.set('b', '2', 0);
    expect(await cache.get('b')).toBeUndefined();
  });

  it('drops the oldest entries beyond its bound', async () => {
    const cache = new MemoryCache(3);
    for (const key of ['a', 'b', 'c', 'd']) await cache.set(key, key, 60);
    expect(cache.size).toBe(3);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.get('d')).toBe('d');
  });
});

describe.skipIf(skipWithout('the Redis cache tests', 'redis-server'))('RedisCache (redis-server)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  }, 15_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('stores values under key_prefix with a TTL, shared between clients', async () => {
    const a = new RedisCache({ url: redis.url, key_prefix: 'angos-test:' }, silentLogger);
    const b = new RedisCache({ url: redis.url, key_prefix: 'angos-test:' }, silentLogger);
    await a.set('auth:x', 'value', 30);
    expect(await b.get('auth:x')).toBe('value');
    expect(await redis.client.get('angos-test:auth:x')).toBe('value');
    const ttl = await redis.client.ttl('angos-test:auth:x');
    expect(ttl).toBeGreaterThan(25);
    expect(ttl).toBeLessThanOrEqual(30);
    expect(await b.get('missing')).toBeUndefined();
    await a.close();
    await b.close();
  });

  it('answers a miss, quickly, when Redis is unreachable', async () => {
    const cache = new RedisCache({ url: 'redis://127.0.0.1:1' }, silentLogger);
    const started = Date.now();
    expect(await cache.get('x')).toBeUndefined();
    await cache.set('x', 'y', 10);
    expect(Date.now() - started).toBeLessThan(3000);
    await cache.close();
  });
});
