/**
 * A set that holds at most `capacity` values, forgetting the oldest added first: a cache of facts
 * seen during a walk of the whole store (garbage collection's "this revision exists"), so that a
 * walk of a store of any size holds a bounded amount of memory. Forgetting only costs a re-read.
 */
export class BoundedSet<T> {
  readonly #values = new Set<T>();

  constructor(private readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be at least 1, not ${capacity}`);
  }

  get size(): number {
    return this.#values.size;
  }

  has(value: T): boolean {
    return this.#values.has(value);
  }

  add(value: T): void {
    if (this.#values.has(value)) return;
    if (this.#values.size >= this.capacity) {
      // A Set iterates in insertion order: the first value is the oldest.
      const oldest = this.#values.values().next();
      if (!oldest.done) this.#values.delete(oldest.value);
    }
    this.#values.add(value);
  }
}
