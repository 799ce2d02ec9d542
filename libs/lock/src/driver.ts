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
  /** One try at taking `key` for `token`: the held key, or undefined while another owner holds it. */
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
