import { PassThrough, pipeline, type Readable } from 'node:stream';
import type { Config } from '@angos/config';
import { type JobHandler, type JobQueue, TerminalJobError } from '@angos/jobs';
import { LockLostError, type LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import { type DigestParts, formatDigest, OciError, parseDigest } from '@angos/oci';
import type { Registry } from '@angos/registry';
import { isUpstreamError } from '../errors.js';
import { BlobFill } from './blob-fill.js';
import type { CacheMetrics } from './metrics.js';
import type { BlobBytes, BlobFillPayload } from './types.js';
import { cacheRepositoryOf, type UpstreamPool } from './upstreams.js';

/** The durable queue of fills. */
export const CACHE_QUEUE = 'cache';
/** The job kind of a blob fill. */
export const BLOB_FILL_JOB = 'blob';
/**
 * The durable job of a fill run inline waits this long before the drain may take it: the inline
 * fill deletes it when it commits, so it only runs after a crash (or a fill that outlived this).
 */
const INLINE_JOB_DEFER_MS = 10 * 60 * 1000;
/** How long a request waits for a fill it could not run itself (no capacity) to reach storage. */
const QUEUED_FILL_WAIT_MS = 5 * 60 * 1000;
const QUEUED_FILL_POLL_MS = 250;

/** Held while a blob is fetched: one fill of a digest at a time across every replica. */
export function blobFillLockKey(digest: DigestParts): string {
  return `cache-fill:${formatDigest(digest)}`;
}

/** The lock key of a namespace's fill job: enqueues of the same blob for the same namespace join. */
function fillJobLockKey(namespace: string, digest: DigestParts): string {
  return `cache-blob:${namespace}@${formatDigest(digest)}`;
}

export interface BlobFillerDeps {
  readonly registry: Registry;
  readonly locks: LockManager;
  readonly jobs: JobQueue;
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: CacheMetrics;
  readonly upstreams: UpstreamPool;
}

/**
 * Fills blobs of cache namespaces from their upstreams: at most one fill per namespace and digest
 * in this process (every client joins it), one per digest across replicas (the fill lock), each a
 * durable `cache` job so that a fill a crash cut short completes later.
 */
export class BlobFiller {
  /** Fills clients follow, by namespace and digest: running here, or waiting for a job. */
  readonly #fills = new Map<string, BlobFill>();
  /** The keys of the fills running in this process. */
  readonly #filling = new Set<string>();
  #running = 0;

  constructor(private readonly deps: BlobFillerDeps) {}

  /** The fill of the blob in progress here, or a new one. Never cancelled by the clients that follow it. */
  join(namespace: string, digest: DigestParts): BlobFill {
    const key = fillKey(namespace, digest);
    const existing = this.#fills.get(key);
    if (existing !== undefined) return existing;
    const fill = this.#newFill(namespace, digest);
    this.#fills.set(key, fill);
    const forget = () => this.#fills.delete(key);
    fill.done.then(forget, forget);
    void this.#start(namespace, digest, fill);
    return fill;
  }

  /** The `cache` queue's handler of blob fills (run by the drain or a worker). */
  handler(): JobHandler<BlobFillPayload> {
    return {
      kind: BLOB_FILL_JOB,
      parse: parseBlobFillPayload,
      run: async ({ payload, signal }) => {
        const digest = parseDigest(payload.digest);
        const repository = cacheRepositoryOf(this.deps.config(), payload.namespace);
        // The repository is no longer a cache: nothing to fill (scrub --cache-orphans reports these).
        if (repository === undefined) return;
        const key = fillKey(payload.namespace, digest);
        if (this.#filling.has(key)) {
          // This process is filling it already: the job is done when that fill is.
          await this.#fills.get(key)?.done;
          return;
        }
        // Requests waiting for this job (no capacity to fill inline) stream from it.
        const waiting = this.#fills.get(key);
        const fill = waiting ?? this.#newFill(payload.namespace, digest);
        if (waiting === undefined) this.#fills.set(key, fill);
        try {
          await this.#fill(payload.namespace, digest, fill, signal);
        } catch (error) {
          // No upstream has the blob (any more): retrying cannot help.
          if (error instanceof OciError && error.kind === 'BLOB_UNKNOWN') {
            throw new TerminalJobError(`no upstream has ${payload.digest} for ${payload.namespace}`);
          }
          throw error;
        } finally {
          if (waiting === undefined) this.#fills.delete(key);
        }
      },
    };
  }

  #newFill(namespace: string, digest: DigestParts): BlobFill {
    const repository = cacheRepositoryOf(this.deps.config(), namespace) ?? namespace;
    return new BlobFill(
      async (start, end) => {
        const last = end ?? (await this.deps.registry.blobs.stat(namespace, digest)).size - 1;
        const copy = await this.deps.registry.blobs.open(namespace, digest, { start, end: last });
        return copyAsStream(copy);
      },
      (bytes) => this.deps.metrics.bytesFetched.inc({ repository }, bytes),
    );
  }

  /**
   * Enqueues the fill's durable job, then runs it here when this process has room under
   * `max_concurrent_cache_jobs`; otherwise the drain or a worker runs the job and this waits for
   * storage to have the blob.
   */
  async #start(namespace: string, digest: DigestParts, fill: BlobFill): Promise<void> {
    const capacity = this.deps.config().global.max_concurrent_cache_jobs;
    const inline = this.#running < capacity;
    if (!inline) {
      await this.#enqueue(namespace, digest, 0);
      await this.#awaitStored(namespace, digest, fill);
      return;
    }
    // The job is written while the fill starts: the first byte does not wait for it.
    const queued = this.#enqueue(namespace, digest, INLINE_JOB_DEFER_MS);
    try {
      await this.#fill(namespace, digest, fill, undefined);
    } catch {
      // The followers have the error, and the logs the cause. The job is there for a fill a crash
      // cuts short, not to retry one that failed: the next pull tries again.
    }
    const job = await queued;
    if (job !== undefined) {
      await this.deps.jobs.deletePending(CACHE_QUEUE, job).catch((error: unknown) =>
        this.deps.logger.warn('cache job of an ended fill not removed', {
          namespace,
          digest: formatDigest(digest),
          error: String(error),
        }),
      );
    }
  }

  async #enqueue(namespace: string, digest: DigestParts, deferMs: number): Promise<string | undefined> {
    const payload: BlobFillPayload = { namespace, digest: formatDigest(digest) };
    try {
      const notBefore = new Date(Date.now() + deferMs);
      const result = await this.deps.jobs.enqueue(
        CACHE_QUEUE,
        BLOB_FILL_JOB,
        fillJobLockKey(namespace, digest),
        payload,
        { notBefore },
      );
      return result.id;
    } catch (error) {
      // The fill still runs; only its recovery after a crash is lost.
      this.deps.logger.warn('cache fill not queued', {
        namespace,
        digest: payload.digest,
        error: String(error),
      });
      return undefined;
    }
  }

  /** Waits (bounded) for another runner's fill to commit the blob. */
  async #awaitStored(namespace: string, digest: DigestParts, fill: BlobFill): Promise<void> {
    const deadline = Date.now() + QUEUED_FILL_WAIT_MS;
    while (Date.now() < deadline) {
      // A job run in this process may drive this very fill (see handler()).
      if (fill.settled) return;
      if (await this.#isStored(namespace, digest).catch(() => false)) {
        fill.stored();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, QUEUED_FILL_POLL_MS));
    }
    fill.failed(new OciError('UNAVAILABLE', { reason: 'the cache fill is queued; try again later' }));
  }

  /**
   * The fill itself, under the digest's fill lock: nothing to do when the namespace already holds
   * the blob (another replica filled it while this one waited for the lock); otherwise the first
   * upstream that has it streams it, verified, through the core's upload path into storage.
   */
  async #fill(namespace: string, digest: DigestParts, fill: BlobFill, signal: AbortSignal | undefined) {
    const repository = cacheRepositoryOf(this.deps.config(), namespace);
    const text = formatDigest(digest);
    const key = fillKey(namespace, digest);
    this.#filling.add(key);
    this.#running++;
    this.deps.metrics.fillsInFlight.inc();
    try {
      if (repository === undefined) throw new OciError('BLOB_UNKNOWN', { digest: text });
      // The fill lock only keeps replicas from fetching one blob twice: what a fill stores is
      // verified and committed atomically, whoever else fetches it. So a fill that outlives its
      // lock (S3's max_hold_secs against a multi-GiB layer from a slow upstream) goes on to the end
      // instead of failing every client streaming from it; at worst another replica fetches too.
      let fetching: Promise<void> | undefined;
      try {
        await this.deps.locks.withLocks(
          [blobFillLockKey(digest)],
          () => {
            fetching = this.#fetchAndStore(namespace, repository, digest, fill, signal);
            return fetching;
          },
          signal === undefined ? {} : { signal },
        );
      } catch (error) {
        if (!(error instanceof LockLostError) || fetching === undefined) throw error;
        this.deps.logger.warn('blob fill outlived its lock; it goes on', {
          namespace,
          digest: text,
          reason: error.message,
        });
        await fetching;
      }
    } catch (error) {
      fill.failed(error);
      throw error;
    } finally {
      this.#filling.delete(key);
      this.#running--;
      this.deps.metrics.fillsInFlight.dec();
    }
  }

  /**
   * Nothing to do when the namespace already holds the blob (another replica filled it while this
   * one waited for the lock); otherwise the first upstream that has it streams it, verified,
   * through the core's upload path into storage.
   */
  async #fetchAndStore(
    namespace: string,
    repository: string,
    digest: DigestParts,
    fill: BlobFill,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const text = formatDigest(digest);
    if (await this.#isStored(namespace, digest)) {
      fill.stored();
      return;
    }
    const asked = await this.deps.upstreams.ask(repository, `blob ${namespace}@${text}`, (client) =>
      client.getBlob(namespace, text, signal === undefined ? {} : { signal }),
    );
    if (asked.kind === 'not-found') throw new OciError('BLOB_UNKNOWN', { digest: text });
    if (asked.kind === 'failed') throw unavailable(asked.errors);
    const blob = asked.value;
    fill.begin(blob.size);
    const body = pipeline(blob.body, fill.tap(), () => {});
    let id: string | undefined;
    try {
      id = await this.deps.registry.uploads.start(namespace);
      await this.deps.registry.uploads.complete(namespace, id, digest, body, {});
    } catch (error) {
      blob.body.destroy();
      if (id !== undefined) await this.deps.registry.uploads.cancel(namespace, id).catch(() => {});
      if (isUpstreamError(error)) {
        this.deps.upstreams.record(repository, `blob ${namespace}@${text}`, error);
      }
      throw error;
    }
    this.deps.logger.info('blob cached', { namespace, digest: text, upstream: asked.upstream.url });
    fill.stored();
  }

  async #isStored(namespace: string, digest: DigestParts): Promise<boolean> {
    try {
      await this.deps.registry.blobs.stat(namespace, digest);
      return true;
    } catch (error) {
      if (error instanceof OciError && error.kind === 'BLOB_UNKNOWN') return false;
      throw error;
    }
  }
}

function fillKey(namespace: string, digest: DigestParts): string {
  return `${namespace}\n${formatDigest(digest)}`;
}

/** Every upstream failed: 503 UNAVAILABLE, naming why. */
export function unavailable(errors: readonly { kind: string; message: string }[]): OciError {
  return new OciError('UNAVAILABLE', {
    reason: 'every upstream failed',
    upstreams: errors.map((error) => `${error.kind}: ${error.message}`),
  });
}

function parseBlobFillPayload(payload: unknown): BlobFillPayload {
  const value = payload as Partial<BlobFillPayload> | null;
  if (typeof value?.namespace !== 'string' || typeof value.digest !== 'string') {
    throw new Error('a blob fill needs a namespace and a digest');
  }
  parseDigest(value.digest);
  return { namespace: value.namespace, digest: value.digest };
}

/** A storage BlobCopy as a Readable. */
function copyAsStream(copy: BlobBytes): Readable {
  const out = new PassThrough();
  copy
    .copyTo(out)
    .then(
      () => out.end(),
      (error: unknown) => out.destroy(error as Error),
    )
    .finally(() => void copy.close());
  return out;
}
