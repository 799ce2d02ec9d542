import type { LockManager } from './types.js';

/**
 * In-process locks: one FIFO queue per key. Correct for a single instance
 * only; several instances on shared storage need the Redis or S3 strategy.
 */
export class MemoryLockManager implements LockManager {
  readonly backend = 'memory';
  // Tail of each key's queue: resolves when the last waiter releases.
  readonly #tails = new Map<string, Promise<void>>();

  async withLocks<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const ordered = [...new Set(keys)].sort();
    const releases: Array<() => void> = [];
    try {
      for (const key of ordered) releases.push(await this.#acquire(key));
      return await work();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** Number of keys currently held or awaited (for tests and leak checks). */
  get size(): number {
    return this.#tails.size;
  }

  async #acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    await previous;
    return () => {
      release();
      // Forget the key once nobody queued behind us, so the map stays bounded.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }
}
