import { type Logger, silentLogger } from '@angos/observability';
import { jitteredDelay, untilAborted } from '../delays.js';
import { DistributedLockManager } from '../distributed.js';
import type { AcquireContext, KeyLockDriver, RenewOutcome } from '../driver.js';
import { LockBucket, type LockBucketOptions, type WriteResult } from './lock-bucket.js';
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

/** Where a lock object of ours goes and the token that says it is ours. */
interface OurObject {
  readonly key: string;
  readonly objectKey: string;
  readonly token: string;
}

interface S3Held extends OurObject {
  /** The ETag of our last write: every renewal and release is conditional on it. */
  etag: string;
  renewals: number;
}

class S3KeyDriver implements KeyLockDriver<S3Held> {
  readonly backend = 's3';
  readonly #bucket: LockBucket;
  readonly #ttlMs: number;
  readonly #declaredDeleteIfMatch: boolean | undefined;
  readonly #logger: Logger;
  #support: Promise<LockSupport> | undefined;

  constructor(options: S3LockOptions) {
    this.#bucket = new LockBucket(options);
    this.#ttlMs = options.ttlSecs * 1000;
    this.#declaredDeleteIfMatch = options.deleteIfMatch;
    this.#logger = options.logger ?? silentLogger;
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
    const mine = { key, objectKey, token };
    const body = lockObjectBody(token, 0);
    // From here on not on `signal`: a write abandoned on the wire may land all the same, and
    // only its answer tells (see KeyLockDriver). The operation timeout bounds every call.
    const created = await this.#write(mine, () => this.#bucket.create(objectKey, body));
    if (created.kind === 'written') return this.#held(key, objectKey, token, created.etag);

    // Held by someone: take it over only if its holder stopped renewing it a TTL ago.
    const current = await this.#bucket.get(objectKey);
    if (current === undefined) return undefined; // released meanwhile: the next try creates it
    if (tokenOf(current.body) === token) return this.#adopt(mine, current.etag);
    if (!isStale(current.lastModified, current.serverNow, this.#ttlMs)) {
      observer.recovered('not_stale');
      return undefined;
    }
    try {
      const replaced = await this.#write(mine, () => this.#bucket.replace(objectKey, body, current.etag));
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

  /**
   * The object already holds our token: an earlier attempt of ours landed although its answer
   * was lost (the SDK retried the create and got 412), or a release of ours failed. It is ours,
   * but written who knows when: rewriting it restarts its TTL from now, as the lease assumes.
   */
  async #adopt(mine: OurObject, etag: string): Promise<S3Held | undefined> {
    const body = lockObjectBody(mine.token, 1);
    const rewritten = await this.#write(mine, () => this.#bucket.replace(mine.objectKey, body, etag));
    if (rewritten.kind === 'unmet') return undefined; // taken over as stale meanwhile
    const held = this.#held(mine.key, mine.objectKey, mine.token, rewritten.etag);
    held.renewals = 1;
    return held;
  }

  /** A write under our token; when it fails with its outcome unknown, it must not leave an object. */
  async #write(mine: OurObject, write: () => Promise<WriteResult>): Promise<WriteResult> {
    try {
      return await write();
    } catch (error) {
      await this.#discardIfOurs(mine);
      throw error;
    }
  }

  /**
   * Removes the lock object if it holds our token: a write that failed (timed out, connection
   * dropped) may have landed, and nobody would own what it wrote. A write S3 is still working
   * on when we look can land after this; that object lapses after its TTL like any other.
   */
  async #discardIfOurs(mine: OurObject): Promise<void> {
    try {
      const current = await this.#bucket.get(mine.objectKey);
      if (current === undefined || tokenOf(current.body) !== mine.token) return;
      const { deleteIfMatch } = await this.support(AbortSignal.timeout(this.#ttlMs));
      await this.#releaseOne({ ...mine, etag: current.etag, renewals: 0 }, deleteIfMatch);
    } catch (error) {
      this.#logger.warn('could not remove the lock object of a failed write; it lapses after its TTL', {
        key: mine.key,
        error: String(error),
      });
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
