import { nonEmptyString, redisUrl, string } from '../scalars.js';
import { optional, required, table } from '../schema.js';
import type { CacheConfig, RedisCacheConfig } from '../types.js';

/** Shorter keys are guessable enough to be worth a warning (the same bar as `internal_token`). */
const MIN_RECOMMENDED_KEY_LENGTH = 16;

export const redisCacheSchema = table<RedisCacheConfig>(
  {
    url: required(redisUrl()),
    key_prefix: optional(string()),
    // Project-specific (not in the configuration reference): anyone who can write to Redis could
    // otherwise plant signing keys or `allow` decisions. Without it nothing security-relevant is
    // stored in Redis (see the check in root.ts).
    hmac_key: optional(nonEmptyString()),
  },
  {
    check(redis, at) {
      if (redis.hmac_key !== undefined && redis.hmac_key.length < MIN_RECOMMENDED_KEY_LENGTH) {
        at.warn(
          'hmac_key',
          `shorter than ${MIN_RECOMMENDED_KEY_LENGTH} characters; use a long random secret`,
        );
      }
    },
  },
);

/** `[cache]`: token and key cache; in memory unless `[cache.redis]` is set. */
export const cacheSchema = table<CacheConfig>({
  redis: optional(redisCacheSchema),
});
