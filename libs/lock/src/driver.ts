import type { InvalidationReason, LockObserver } from './types.js';

/** What a renewal found: every key still ours, or the first one that is not and why. */
export type RenewOutcome =
  | { readonly kind: 'renewed' }
  | { readonly kind: 'lost'; readonly reason: InvalidationReason; readonly key: string };

export interface AcquireContext {
  readonly signal: AbortSignal;
  readonly observer: LockObserver;
}

/**
 * One distributed backend's operations on single keys. `DistributedLockManager` decides the
 * order, the retries, the heartbeat and the cancellation; a driver only talks to its service.
 * `Held` is the driver's record of one key it holds (what renewing and releasing it needs).
 */
export interface KeyLockDriver<Held extends { readonly key: string }> {
  readonly backend: 'redis' | 's3';
  /**
   * One try at taking `key` for `token`: the held key, or undefined while another owner holds it.
   * `context.signal` says the caller gave up; the manager then stops waiting at once and gives
   * back whatever the try still takes, so a driver must not abandon a write on that signal with
   * its outcome unknown. A write that fails with its outcome unknown (timeout, dropped
   * connection) may have landed: the driver removes what it may have written under `token`
   * before rejecting, and when it finds `token` already in place it holds the key.
   */
  tryAcquire(key: string, token: string, context: AcquireContext): Promise<Held | undefined>;
  /**
   * Extends every held key by a TTL. Throws on a transient failure (network, timeout); reports
   * a key that is no longer ours as lost.
   */
  renew(held: readonly Held[], signal: AbortSignal): Promise<RenewOutcome>;
  /** Gives back the keys that are still ours (never someone else's). */
  release(held: readonly Held[]): Promise<void>;
  close(): Promise<void>;
}
