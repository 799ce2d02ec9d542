import { createHash } from 'node:crypto';
import type { CacheConfig } from '@angos/config';
import type { Logger } from '@angos/observability';
import { AuthenticatedCache } from './authenticated.js';
import { MemoryCache } from './memory.js';
import { RedisCache } from './redis.js';
import type { AuthCache } from './types.js';

/**
 * The backend `[cache]` names. Everything this cache holds (signing keys, discovery documents,
 * webhook decisions) decides who gets in, so Redis, which others may be able to write to, is used
 * only with `hmac_key`, every entry authenticated. Without it each process keeps its own cache in
 * memory: replicas no longer share, which the configuration loader warns about.
 */
export function createCache(config: CacheConfig, logger: Logger): AuthCache {
  const redis = config.redis;
  if (redis?.hmac_key === undefined) return new MemoryCache();
  return new AuthenticatedCache(new RedisCache(redis, logger), redis.hmac_key, logger);
}

/** Identifies a cache configuration, to tell whether a reload changed it. */
export function cacheSettingsKey(config: CacheConfig): string {
  const redis = config.redis;
  if (redis?.hmac_key === undefined) return 'memory';
  // A fingerprint, so the secret itself is not kept in one more string.
  const key = createHash('sha256').update(redis.hmac_key).digest('hex');
  return JSON.stringify([redis.url, redis.key_prefix ?? '', key]);
}
