import type { CacheConfig } from '@angos/config';
import type { Logger } from '@angos/observability';
import { MemoryCache } from './memory.js';
import { RedisCache } from './redis.js';
import type { AuthCache } from './types.js';

/** The backend `[cache]` names: Redis when `[cache.redis]` is set, memory otherwise. */
export function createCache(config: CacheConfig, logger: Logger): AuthCache {
  return config.redis === undefined ? new MemoryCache() : new RedisCache(config.redis, logger);
}

/** Identifies a cache configuration, to tell whether a reload changed it. */
export function cacheSettingsKey(config: CacheConfig): string {
  return config.redis === undefined
    ? 'memory'
    : JSON.stringify([config.redis.url, config.redis.key_prefix ?? '']);
}
