export { LockLostError, LockTimeoutError, LockUnsupportedError } from './errors.js';
export { instrumentLocks, LOCK_ACQUISITION_BUCKETS } from './instrument.js';
export {
  type IpcEndpoint,
  IpcLockManager,
  ipcChannel,
  type LockChannel,
  messagePortChannel,
  serveLocks,
} from './ipc.js';
export { MemoryLockManager } from './memory.js';
// The distributed strategies live behind `@angos/lock/redis` and `@angos/lock/s3`: ioredis and the
// AWS SDK cost ~20 MiB of memory each, so they load only when configured.
export type { RedisLockManager, RedisLockOptions } from './redis/redis-lock.js';
export type { EtagForm } from './s3/lock-bucket.js';
export type { LockSupport } from './s3/probe.js';
export type { S3LockManager, S3LockOptions } from './s3/s3-lock.js';
export type {
  InvalidationReason,
  LockBackend,
  LockManager,
  LockObserver,
  LockOptions,
  LockWork,
  RecoveryResult,
} from './types.js';
