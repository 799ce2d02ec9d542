/**
 * A least-recently-used map of immutable byte values, bounded by their total size. Values larger
 * than a sixteenth of the budget are not kept, so one big value cannot evict everything else.
 */
export class ByteCache {
  readonly #entries = new Map<string, Buffer>();
  #bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Buffer | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      // Re-insert: a Map iterates in insertion order, so the oldest entry comes first.
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Buffer): void {
    if (value.length > this.maxBytes / 16 || this.#entries.has(key)) return;
    this.#entries.set(key, value);
    this.#bytes += value.length;
    for (const [oldest, evicted] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= evicted.length;
    }
  }

  get size(): number {
    return this.#bytes;
  }
}
