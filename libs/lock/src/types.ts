/** The lock backends, by the names the configuration and the `backend` metric label use. */
export type LockBackend = 'memory' | 'redis' | 's3';

/**
 * Why a held lock stopped protecting its work (`lock_invalidations_total{reason}`):
 * - `ownership_lost`: another holder overwrote the lock (it expired under us, or was stolen);
 * - `max_hold_exceeded`: held longer than `max_hold_secs` (S3);
 * - `heartbeat_failure`: renewals kept failing (network, timeouts) until the lock could lapse;
 * - `etag_unavailable`: S3 answered a renewal without an ETag, so it cannot be renewed again;
 * - `file_disappeared`: the S3 lock object is gone.
 */
export type InvalidationReason =
  | 'ownership_lost'
  | 'max_hold_exceeded'
  | 'heartbeat_failure'
  | 'etag_unavailable'
  | 'file_disappeared';

/** Outcome of one attempt to take over a lock whose holder stopped renewing it (S3). */
export type RecoveryResult = 'acquired' | 'not_stale' | 'failed' | 'error';

/**
 * The work done under locks. `signal` aborts when the work must stop: the caller cancelled
 * (`options.signal`), or the locks stopped protecting it (a `LockLostError` as the reason).
 * Work that writes should check it between steps.
 */
export type LockWork<T> = (signal: AbortSignal) => Promise<T>;

export interface LockOptions {
  /** Cancels the acquisition or the work; the locks are then released in the background. */
  readonly signal?: AbortSignal | undefined;
}

/** What a backend reports from inside an acquisition, for metrics (see `instrumentLocks`). */
export interface LockObserver {
  /** A key was contended and the acquisition will try again. */
  retried(): void;
  /** A contended S3 lock was checked for staleness and, if stale, taken over. */
  recovered(result: RecoveryResult): void;
}

/**
 * Mutual exclusion over named keys. A caller names every key it needs up front; `withLocks`
 * acquires them all (never in an order that lets two callers wait on each other in a cycle),
 * runs the work, and releases them, also when the work throws.
 *
 * Rejections: `LockTimeoutError` when the keys stayed contended through every retry,
 * `LockLostError` when the locks stopped protecting the work while it ran, the abort reason of
 * `options.signal` when the caller cancelled, and the backend's own errors (connection, S3).
 */
export interface LockManager {
  readonly backend: LockBackend;
  withLocks<T>(keys: readonly string[], work: LockWork<T>, options?: LockOptions): Promise<T>;
  /** Adds an observer of retries and recoveries (backends that have none ignore it). */
  observe(observer: LockObserver): void;
  /** Waits for background releases (bounded), then closes connections. */
  close(): Promise<void>;
}
