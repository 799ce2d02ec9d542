import { type Logger, silentLogger } from '@angos/observability';
import { jitteredDelay, whenAborted } from '../delays.js';
import { DistributedLockManager } from '../distributed.js';
import type { AcquireContext, KeyLockDriver, RenewOutcome } from '../driver.js';
import { LockBucket, type LockBucketOptions } from './lock-bucket.js';
import { isStale, lockObjectBody, tokenOf } from './lock-object.js';
import { type LockSupport, probeLockSupport } from './probe.js';

/** `[metadata_store.s3.lock_strategy.s3]` with the metadata store's connection, in the reference's units. */
export interface S3LockOptions extends LockBucketOptions {
  /** `ttl_secs` (at least 9 in the configuration): renewed every ttl_secs / 3. */
  readonly ttlSecs: number;
  /** `max_retries` (default 100). */
  readonly maxRetries: number;
  /** `retry_delay_ms` (default 50), jittered. */
  readonly retryDelayMs: number;
  /** `max_hold_secs` (default 300): a lock held longer is invalidated. */
  readonly maxHoldSecs: number;
  /** `[metadata_store.s3.capabilities] delete_if_match`; probed when undefined. */
  readonly deleteIfMatch?: boolean | undefined;
  readonly logger?: Logger | undefined;
}

interface S3Held {
  readonly key: string;
  readonly objectKey: string;
  readonly token: string;
  /** The ETag of our last write: every renewal and release is conditional on it. */
  etag: string;
  renewals: number;
}

class S3KeyDriver implements KeyLockDriver<S3Held> {
  readonly backend = 's3';
  readonly #bucket: LockBucket;
  readonly #ttlMs: number;
  readonly #declaredDeleteIfMatch: boolean | undefined;
  #support: Promise<LockSupport> | undefined;

  constructor(options: S3LockOptions) {
    this.#bucket = new LockBucket(options);
    this.#ttlMs = options.ttlSecs * 1000;
    this.#declaredDeleteIfMatch = options.deleteIfMatch;
  }

  /** Probes the provider once; a failed probe is tried again on the next call. */
  support(signal: AbortSignal): Promise<LockSupport> {
    if (this.#support === undefined) {
      // The probe is shared by every caller, so it runs on its own bounded signal: one caller
      // giving up must neither fail it for the others nor cut its cleanup short.
      const probing = probeLockSupport(
        this.#bucket,
        this.#declaredDeleteIfMatch,
        AbortSignal.timeout(this.#ttlMs),
      );
      this.#support = probing;
      probing.then(
        (support) => {
          this.#bucket.etagForm = support.etagForm;
        },
        () => {
          this.#support = undefined;
        },
      );
    }
    return untilAborted(this.#support, signal);
  }

  async tryAcquire(
    key: string,
    token: string,
    { signal, observer }: AcquireContext,
  ): Promise<S3Held | undefined> {
    await this.support(signal);
    const objectKey = this.#bucket.objectKey(key);
    const body = lockObjectBody(token, 0);
    const created = await this.#bucket.create(objectKey, body, signal);
    if (created.kind === 'written') return this.#held(key, objectKey, token, created.etag);

    // Held by someone: take it over only if its holder stopped renewing it a TTL ago.
    const current = await this.#bucket.get(objectKey, signal);
    if (current === undefined) return undefined; // released meanwhile: the next try creates it
    if (!isStale(current.lastModified, current.serverNow, this.#ttlMs)) {
      observer.recovered('not_stale');
      return undefined;
    }
    try {
      const replaced = await this.#bucket.replace(objectKey, body, current.etag, signal);
      if (replaced.kind === 'unmet') {
        observer.recovered('failed'); // renewed, released or recovered by another contender first
        return undefined;
      }
      observer.recovered('acquired');
      return this.#held(key, objectKey, token, replaced.etag);
    } catch (error) {
      observer.recovered('error');
      throw error;
    }
  }

  async renew(held: readonly S3Held[], signal: AbortSignal): Promise<RenewOutcome> {
    const outcomes = await Promise.all(held.map((h) => this.#renewOne(h, signal)));
    return outcomes.find((outcome) => outcome.kind === 'lost') ?? { kind: 'renewed' };
  }

  async release(held: readonly S3Held[]): Promise<void> {
    const { deleteIfMatch } = await this.support(AbortSignal.timeout(this.#ttlMs));
    await Promise.all(held.map((h) => this.#releaseOne(h, deleteIfMatch)));
  }

  async close(): Promise<void> {
    this.#bucket.close();
  }

  async #renewOne(held: S3Held, signal: AbortSignal, adopted = false): Promise<RenewOutcome> {
    const body = lockObjectBody(held.token, held.renewals + 1);
    const replaced = await this.#bucket.replace(held.objectKey, body, held.etag, signal);
    if (replaced.kind === 'written') {
      if (replaced.etag === undefined) return { kind: 'lost', reason: 'etag_unavailable', key: held.key };
      held.etag = replaced.etag;
      held.renewals++;
      return { kind: 'renewed' };
    }
    // Unmet: the object changed or is gone (RGW answers 412 for both). Look before concluding:
    // a renewal that timed out on our side may have landed, leaving our token under a new ETag.
    const current = await this.#bucket.get(held.objectKey, signal);
    if (current === undefined) return { kind: 'lost', reason: 'file_disappeared', key: held.key };
    if (tokenOf(current.body) !== held.token)
      return { kind: 'lost', reason: 'ownership_lost', key: held.key };
    if (adopted) throw new Error(`lock object ${held.key} changed twice during one renewal`);
    held.etag = current.etag;
    held.renewals++;
    return this.#renewOne(held, signal, true);
  }

  async #releaseOne(held: S3Held, deleteIfMatch: boolean): Promise<void> {
    const signal = AbortSignal.timeout(this.#ttlMs);
    if (deleteIfMatch) {
      await this.#bucket.delete(held.objectKey, held.etag, signal);
      return;
    }
    // Without conditional deletes, look first so a lock that went to someone else stays theirs.
    // Another holder could still slip in between the two calls (documented as race-prone).
    const current = await this.#bucket.get(held.objectKey, signal);
    if (current !== undefined && current.etag === held.etag) {
      await this.#bucket.delete(held.objectKey, undefined, signal);
    }
  }

  #held(key: string, objectKey: string, token: string, etag: string | undefined): S3Held {
    if (etag === undefined) {
      // Cannot happen with a conforming provider; without an ETag the lock cannot be renewed.
      throw new Error(`S3 answered the lock write of ${key} without an ETag`);
    }
    return { key, objectKey, token, etag, renewals: 0 };
  }
}

/**
 * Locks as S3 objects under `_locks/` of the metadata store, with no service besides S3:
 * created with `If-None-Match: *`, renewed every ttl_secs / 3 and taken over when stale with
 * `If-Match: <etag>`, released with a conditional delete when the provider has one. Staleness
 * is judged by S3's timestamps only, so instance clocks do not matter.
 */
export class S3LockManager extends DistributedLockManager<S3Held> {
  readonly #driver: S3KeyDriver;

  constructor(options: S3LockOptions) {
    const logger = options.logger ?? silentLogger;
    const driver = new S3KeyDriver(options);
    const ttlMs = options.ttlSecs * 1000;
    super(
      driver,
      { ttlMs, heartbeatMs: ttlMs / 3, maxHoldMs: options.maxHoldSecs * 1000 },
      {
        maxRetries: options.maxRetries,
        retryDelayMs: jitteredDelay(options.retryDelayMs),
        parallelFirstAttempt: true,
      },
      logger,
    );
    this.#driver = driver;
  }

  /**
   * Probes the provider's conditional writes (startup): rejects with `LockUnsupportedError` when
   * `put_if_none_match` or `put_if_match` is missing. Acquisitions probe on first use otherwise.
   */
  async ready(): Promise<LockSupport> {
    return this.#driver.support(AbortSignal.timeout(60_000));
  }
}

/** `promise`, unless `signal` aborts first: then rejects with the abort reason (the promise runs on). */
async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  const abort = whenAborted(signal);
  try {
    return await Promise.race([
      promise,
      abort.promise.then(() => {
        throw signal.reason;
      }),
    ]);
  } finally {
    abort.dispose();
  }
}
