export { LockLostError, LockTimeoutError, LockUnsupportedError } from './errors.js';
export { instrumentLocks, LOCK_ACQUISITION_BUCKETS } from './instrument.js';
export { MemoryLockManager } from './memory.js';
export { RedisLockManager, type RedisLockOptions } from './redis/redis-lock.js';
export type { EtagForm } from './s3/lock-bucket.js';
export type { LockSupport } from './s3/probe.js';
export { S3LockManager, type S3LockOptions } from './s3/s3-lock.js';
export type {
  InvalidationReason,
  LockBackend,
  LockManager,
  LockObserver,
  LockOptions,
  LockWork,
  RecoveryResult,
} from './types.js';
