import type { InvalidationReason, LockBackend } from './types.js';

/** Every key stayed contended through all retries (`lock_acquisitions_total{result="timeout"}`). */
export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
  /** The HTTP edge answers 503 (retry later) rather than 500 (a bug). */
  readonly transient = true;
  constructor(
    readonly backend: LockBackend,
    readonly key: string,
    readonly attempts: number,
  ) {
    super(`lock ${key} still held by another owner after ${attempts} attempts`);
  }
}

/** The locks stopped protecting the work while it ran; the work's signal aborts with this. */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
  /** The HTTP edge answers 503 (retry later) rather than 500 (a bug). */
  readonly transient = true;
  constructor(
    readonly backend: LockBackend,
    readonly reason: InvalidationReason,
    readonly key: string,
  ) {
    super(`lock ${key} lost: ${reason}`);
  }
}

/** The S3 provider lacks a conditional write the S3 lock cannot work without. */
export class LockUnsupportedError extends Error {
  override readonly name = 'LockUnsupportedError';
  constructor(readonly capability: 'put_if_none_match' | 'put_if_match') {
    super(`the S3 provider does not support ${capability}, which the S3 lock strategy requires`);
  }
}
