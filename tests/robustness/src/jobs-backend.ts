/**
 * The store and lock a job chaos run shares between its processes, as plain data (it travels to
 * each worker process as JSON), and how a process opens them.
 */
import type { LockManager } from '@angos/lock';
import { RedisLockManager } from '@angos/lock/redis';
import { S3LockManager } from '@angos/lock/s3';
import { createMetadataStore, type MetadataStore, openMetadataStore } from '@angos/storage';
import { type S3Endpoint, s3Connection } from '@angos/test-support';

export type JobStoreSpec =
  | { readonly kind: 'fs'; readonly rootDir: string }
  | { readonly kind: 's3'; readonly s3: S3Endpoint; readonly keyPrefix: string };

export type JobLockSpec =
  | { readonly kind: 'redis'; readonly url: string; readonly keyPrefix: string; readonly ttlSecs: number }
  | { readonly kind: 's3'; readonly s3: S3Endpoint; readonly keyPrefix: string; readonly ttlSecs: number };

function connection(s3: S3Endpoint, keyPrefix: string) {
  // More attempts, each shorter: RGW on a loaded two-core machine, possibly restarting.
  return { ...s3Connection(s3, keyPrefix), maxAttempts: 5, operationAttemptTimeoutSecs: 15 };
}

export function openJobStore(spec: JobStoreSpec): Promise<MetadataStore> {
  if (spec.kind === 'fs')
    return Promise.resolve(createMetadataStore({ kind: 'fs', rootDir: spec.rootDir, syncToDisk: false }));
  return openMetadataStore({
    kind: 's3',
    ...connection(spec.s3, spec.keyPrefix),
    linkCacheTtlSecs: 30,
    accessTimeDebounceSecs: 0,
  });
}

export function openJobLocks(spec: JobLockSpec): LockManager {
  if (spec.kind === 'redis')
    return new RedisLockManager({
      url: spec.url,
      ttlSecs: spec.ttlSecs,
      keyPrefix: spec.keyPrefix,
      retryDelayMs: 10,
    });
  return new S3LockManager({
    ...connection(spec.s3, spec.keyPrefix),
    ttlSecs: spec.ttlSecs,
    maxRetries: 100,
    retryDelayMs: 50,
    maxHoldSecs: 120,
  });
}

export function describeBackend(store: JobStoreSpec, lock: JobLockSpec): string {
  return `${store.kind} store, ${lock.kind} lock`;
}
