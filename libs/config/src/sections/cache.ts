import { redisUrl, string } from '../scalars.js';
import { optional, required, table } from '../schema.js';
import type { CacheConfig, RedisCacheConfig } from '../types.js';

export const redisCacheSchema = table<RedisCacheConfig>({
  url: required(redisUrl()),
  key_prefix: optional(string()),
});

/** `[cache]`: token and key cache; in memory unless `[cache.redis]` is set. */
export const cacheSchema = table<CacheConfig>({
  redis: optional(redisCacheSchema),
});
