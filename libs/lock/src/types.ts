/**
 * Mutual exclusion over named keys. A caller names every key it needs up
 * front; `withLocks` acquires them all (in sorted order, so two callers can
 * never wait on each other in a cycle), runs the work, and releases them even
 * when the work throws.
 */
export interface LockManager {
  readonly backend: string;
  withLocks<T>(keys: readonly string[], work: () => Promise<T>): Promise<T>;
}
