import { acquisitionOrder, runCancellable } from './cancellable.js';
import { whenAborted } from './delays.js';
import type { LockManager, LockOptions, LockWork } from './types.js';

/**
 * In-process locks: one FIFO queue per key. Correct for a single instance
 * only; several instances on shared storage need the Redis or S3 strategy.
 */
export class MemoryLockManager implements LockManager {
  readonly backend = 'memory';
  // Tail of each key's queue: resolves when the last waiter releases.
  readonly #tails = new Map<string, Promise<void>>();

  async withLocks<T>(keys: readonly string[], work: LockWork<T>, options: LockOptions = {}): Promise<T> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const releases: Array<() => void> = [];
    const releaseAll = () => {
      for (const release of releases.reverse()) release();
    };
    try {
      for (const key of acquisitionOrder(keys)) releases.push(await this.#acquire(key, signal));
    } catch (error) {
      releaseAll();
      throw error;
    }
    // Without a caller's signal the work gets one of its own, which nothing aborts.
    const outcome = await runCancellable(work, signal ?? new AbortController().signal);
    if (outcome.kind === 'aborted') {
      // The caller has gone; the keys follow once the work stops.
      void outcome.running.then(releaseAll);
      throw outcome.reason;
    }
    releaseAll();
    if (outcome.result.status === 'rejected') throw outcome.result.reason;
    return outcome.result.value;
  }

  observe(): void {
    // Nothing to report: in-process locks are never retried or recovered.
  }

  async close(): Promise<void> {}

  /** Number of keys currently held or awaited (for tests and leak checks). */
  get size(): number {
    return this.#tails.size;
  }

  async #acquire(key: string, signal: AbortSignal | undefined): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    const done = () => {
      release();
      // Forget the key once nobody queued behind us, so the map stays bounded.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    if (signal === undefined) {
      await previous;
      return done;
    }
    const abort = whenAborted(signal);
    try {
      await Promise.race([previous, abort.promise]);
    } finally {
      abort.dispose();
    }
    if (signal.aborted) {
      // Give up our place: whoever queued behind us waits only for those ahead.
      done();
      throw signal.reason;
    }
    return done;
  }
}
