import type { AuthCache } from './types.js';

export const DEFAULT_MEMORY_CACHE_ENTRIES = 10_000;

interface Entry {
  readonly value: string;
  readonly expiresAt: number;
}

/**
 * A per-process cache with expiry. Bounded: past `maxEntries` the oldest insertion goes first, so
 * clients sending ever-new webhook contexts cannot grow it without limit.
 */
export class MemoryCache implements AuthCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = DEFAULT_MEMORY_CACHE_ENTRIES,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string): Promise<string | undefined> {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
