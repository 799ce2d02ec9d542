import type { StorageLogger } from './s3/options.js';
import type { ConditionalWrites, ListPageOptions, MetadataStore } from './types.js';

/** Writes of one flush in flight at once. */
const FLUSH_CONCURRENCY = 16;

/**
 * Gives a metadata store `putDeferred`: values are kept in memory, the last
 * one per key, and written every `intervalSecs` (S3 `access_time_debounce_secs`),
 * turning a write per manifest pull into one write per interval and key.
 * `close()` writes what is pending. With an interval of 0 the store is
 * returned as is and callers write at once.
 */
export function withDeferredWrites(
  store: MetadataStore,
  intervalSecs: number,
  logger?: StorageLogger,
): MetadataStore {
  return intervalSecs > 0 ? new DeferredWritesMetadataStore(store, intervalSecs * 1000, logger) : store;
}

class DeferredWritesMetadataStore implements MetadataStore {
  readonly backend: string;
  readonly conditional: ConditionalWrites | undefined;
  readonly check?: () => Promise<void>;
  #pending = new Map<string, string>();
  /** The keys the running flush is writing, and its completion. */
  #inFlight = new Set<string>();
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly inner: MetadataStore,
    private readonly intervalMs: number,
    private readonly logger: StorageLogger | undefined,
  ) {
    this.backend = inner.backend;
    const { check } = inner;
    if (check) this.check = () => check.call(inner);
    const conditional = inner.conditional;
    if (conditional) {
      const wrapped: ConditionalWrites = {
        getVersioned: (path) => conditional.getVersioned(path),
        putIfVersion: async (path, data, version) => {
          await this.#settle(path);
          return conditional.putIfVersion(path, data, version);
        },
      };
      const { deleteIfVersion } = conditional;
      if (deleteIfVersion) {
        wrapped.deleteIfVersion = async (path, version) => {
          await this.#settle(path);
          return deleteIfVersion.call(conditional, path, version);
        };
      }
      this.conditional = wrapped;
    }
  }

  putDeferred(path: string, data: string): void {
    if (this.#closed) {
      // After shutdown began there is no later flush to wait for.
      void this.inner.put(path, data).catch((error: unknown) => this.#warn(path, error));
      return;
    }
    this.#pending.set(path, data);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, this.intervalMs).unref();
  }

  async get(path: string): Promise<Buffer> {
    const pending = this.#pending.get(path);
    return pending === undefined ? this.inner.get(path) : Buffer.from(pending, 'utf8');
  }

  async put(path: string, data: Uint8Array | string): Promise<void> {
    await this.#settle(path);
    await this.inner.put(path, data);
  }

  async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    if (this.#pending.has(path)) return false;
    await this.#settle(path);
    return this.inner.putIfAbsent(path, data);
  }

  async delete(path: string): Promise<boolean> {
    const wasPending = await this.#settle(path);
    const existed = await this.inner.delete(path);
    return wasPending || existed;
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  /** Like `list`, sees a deferred key only once written. */
  listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    return this.inner.listPage(prefix, options);
  }

  async deletePrefix(prefix: string): Promise<void> {
    const below = `${prefix}/`;
    const within = (path: string) => path === prefix || path.startsWith(below);
    for (const path of [...this.#pending.keys()]) if (within(path)) this.#pending.delete(path);
    // A flush writing below the prefix must land before the delete, not after it.
    if ([...this.#inFlight].some(within)) await this.#flushing;
    await this.inner.deletePrefix(prefix);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#flush();
    await this.inner.close?.();
  }

  /**
   * Before a direct write or delete of `path`: drops its pending value (true
   * if there was one) and waits for a flush that is writing it, so that the
   * flush's older value cannot land after the newer change.
   */
  async #settle(path: string): Promise<boolean> {
    const wasPending = this.#pending.delete(path);
    if (this.#inFlight.has(path)) await this.#flushing;
    return wasPending;
  }

  async #flush(): Promise<void> {
    // One flush at a time; values arriving meanwhile wait for the next one.
    while (this.#flushing) await this.#flushing;
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending = new Map();
    this.#inFlight = new Set(batch.map(([path]) => path));
    this.#flushing = this.#write(batch);
    try {
      await this.#flushing;
    } finally {
      this.#flushing = undefined;
      this.#inFlight = new Set();
    }
  }

  async #write(batch: Array<[string, string]>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < batch.length) {
        const [path, data] = batch[next++]!;
        await this.inner.put(path, data).catch((error: unknown) => this.#warn(path, error));
      }
    };
    await Promise.all(Array.from({ length: Math.min(FLUSH_CONCURRENCY, batch.length) }, worker));
  }

  #warn(path: string, error: unknown): void {
    this.logger?.warn('deferred metadata write failed', { key: path, error: String(error) });
  }
}
