import { randomUUID } from 'node:crypto';
import type { Logger } from '@angos/observability';
import { acquisitionOrder, runCancellable } from './cancellable.js';
import { sleep, untilAborted } from './delays.js';
import type { AcquireContext, KeyLockDriver } from './driver.js';
import { LockTimeoutError } from './errors.js';
import { Lease, type LeaseTiming } from './lease.js';
import type { LockManager, LockObserver, LockOptions, LockWork } from './types.js';

export interface AcquisitionPolicy {
  /** Retries after the first attempt before giving up with `LockTimeoutError`. */
  readonly maxRetries: number;
  /** Delay before retry number `retry` (0-based), jitter included. */
  readonly retryDelayMs: (retry: number) => number;
  /**
   * Try every key at once first (S3: one round trip instead of one per key). On any
   * contention the keys taken are given back and all retries go key by key in sorted order,
   * which rules out circular waits.
   */
  readonly parallelFirstAttempt: boolean;
}

/** Background releases still running at `close()` are waited for at most this long. */
const CLOSE_GRACE_MS = 5000;

/**
 * `withLocks` over a distributed backend: acquisition with retries, a heartbeat while the
 * work runs, cancellation of the work when the locks are lost, and release, in the background
 * when the caller has gone. The backend itself is a `KeyLockDriver`.
 */
export class DistributedLockManager<Held extends { readonly key: string }> implements LockManager {
  readonly backend: 'redis' | 's3';
  readonly #observers: LockObserver[] = [];
  /** Tells every observer; the driver and the retry loop see only this one. */
  readonly #observer: LockObserver = {
    retried: () => {
      for (const observer of this.#observers) observer.retried();
    },
    recovered: (result) => {
      for (const observer of this.#observers) observer.recovered(result);
    },
  };
  readonly #background = new Set<Promise<void>>();

  constructor(
    private readonly driver: KeyLockDriver<Held>,
    private readonly timing: LeaseTiming,
    private readonly policy: AcquisitionPolicy,
    private readonly logger: Logger,
  ) {
    this.backend = driver.backend;
  }

  observe(observer: LockObserver): void {
    this.#observers.push(observer);
  }

  async withLocks<T>(keys: readonly string[], work: LockWork<T>, options: LockOptions = {}): Promise<T> {
    const cancel = options.signal;
    cancel?.throwIfAborted();
    const lease = new Lease(this.driver, this.timing, this.logger);
    const signal = cancel ? AbortSignal.any([cancel, lease.signal]) : lease.signal;
    try {
      await this.#acquire(acquisitionOrder(keys), lease, signal);
    } catch (error) {
      this.#releaseLater(lease, Promise.resolve());
      // A request cut short by the signal fails with the client's own abort error: say why instead.
      throw signal.aborted ? signal.reason : error;
    }
    const outcome = await runCancellable(work, signal);
    if (outcome.kind === 'aborted') {
      // Cancelled or lost: the caller hears it now; the keys go back once the work has stopped.
      this.#releaseLater(lease, outcome.running);
      throw outcome.reason;
    }
    await this.#release(lease);
    if (outcome.result.status === 'rejected') throw outcome.result.reason;
    return outcome.result.value;
  }

  async close(): Promise<void> {
    const pending = Promise.allSettled([...this.#background]);
    await Promise.race([pending, sleep(CLOSE_GRACE_MS, undefined)]);
    await this.driver.close();
  }

  async #acquire(keys: readonly string[], lease: Lease<Held>, signal: AbortSignal): Promise<void> {
    const token = randomUUID();
    const context = { signal, observer: this.#observer };
    let retries = 0;
    const retryAfterContention = async (key: string) => {
      if (retries >= this.policy.maxRetries) throw new LockTimeoutError(this.backend, key, retries + 1);
      this.#observer.retried();
      await sleep(this.policy.retryDelayMs(retries), signal);
      retries++;
    };

    if (this.policy.parallelFirstAttempt && keys.length > 1) {
      const sentAt = Date.now();
      const tries = await Promise.allSettled(keys.map((key) => this.#tryAcquire(key, token, context)));
      const taken = tries.flatMap((attempt) =>
        attempt.status === 'fulfilled' && attempt.value ? [attempt.value] : [],
      );
      if (taken.length === keys.length) {
        for (const held of taken) lease.add(held, sentAt);
        return;
      }
      // Holding some keys while waiting for others in no particular order could deadlock.
      await this.#releaseQuietly(taken);
      const failure = tries.find((attempt) => attempt.status === 'rejected');
      if (failure) throw failure.reason;
      const contended = keys.find((_, i) => {
        const attempt = tries[i];
        return attempt?.status === 'fulfilled' && attempt.value === undefined;
      });
      await retryAfterContention(contended ?? keys[0]!);
    }

    for (const key of keys) {
      for (;;) {
        signal.throwIfAborted();
        const sentAt = Date.now();
        const held = await this.#tryAcquire(key, token, context);
        if (held) {
          lease.add(held, sentAt);
          break;
        }
        await retryAfterContention(key);
      }
    }
  }

  /**
   * One try at `key`, which the caller stops waiting for as soon as its signal aborts. The try
   * itself runs on: a write already sent may land whatever the caller does, and only its answer
   * says whether it did. A key it takes after the caller left is given back at once, in the
   * background, instead of staying held by nobody until its TTL runs out.
   */
  async #tryAcquire(key: string, token: string, context: AcquireContext): Promise<Held | undefined> {
    const trying = this.driver.tryAcquire(key, token, context);
    try {
      return await untilAborted(trying, context.signal);
    } catch (error) {
      if (context.signal.aborted) {
        this.#inBackground(
          trying.then(
            (held) => (held ? this.#releaseQuietly([held]) : undefined),
            () => {}, // nothing taken; a driver cleans up after its own failed writes
          ),
        );
      }
      throw error;
    }
  }

  async #release(lease: Lease<Held>): Promise<void> {
    await lease.stop();
    await this.#releaseQuietly(lease.held);
  }

  /** A failed release is not the work's failure: the keys lapse after their TTL. */
  async #releaseQuietly(held: readonly Held[]): Promise<void> {
    if (held.length === 0) return;
    try {
      await this.driver.release(held);
    } catch (error) {
      this.logger.warn('lock release failed; the lock expires after its TTL', {
        keys: held.map((h) => h.key),
        error: String(error),
      });
    }
  }

  #releaseLater(lease: Lease<Held>, workStopped: Promise<void>): void {
    this.#inBackground(workStopped.then(() => this.#release(lease)));
  }

  /** Runs `task` past the caller's return; `close()` waits for it (bounded). */
  #inBackground(task: Promise<void>): void {
    this.#background.add(task);
    void task.finally(() => this.#background.delete(task));
  }
}
