import type { RedisLockOptions } from '../redis/redis-lock.js';
import type { S3LockOptions } from '../s3/s3-lock.js';

/** How a child process builds the same kind of lock manager as the test (JSON-serialisable). */
export type HolderRecipe =
  | { readonly backend: 'redis'; readonly options: Omit<RedisLockOptions, 'logger'> }
  | { readonly backend: 's3'; readonly options: Omit<S3LockOptions, 'logger'> };
