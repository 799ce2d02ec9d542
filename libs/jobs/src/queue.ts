import { type Logger, serializeContext, silentLogger } from '@angos/observability';
import { type MetadataStore, NotFoundError } from '@angos/storage';
import {
  assertQueueName,
  CorruptRecordError,
  decodeEnvelope,
  decodeFailedJob,
  encodeEnvelope,
  type FailedJob,
  isJobId,
  isQueueName,
  type JobEnvelope,
  newJobId,
  type ParsedPendingName,
  parsePendingName,
  pendingName,
} from './envelope.js';
import { paths } from './layout.js';
import { decodeLockKeyRecord, encodeLockKeyRecord } from './records.js';

export interface JobQueueOptions {
  /** The `[metadata_store]`: jobs live under its `_jobs/` prefix. */
  readonly store: MetadataStore;
  readonly logger?: Logger | undefined;
  /** Clock (tests). */
  readonly now?: (() => number) | undefined;
}

export interface EnqueueOptions {
  /** Attempt budget of this job; the runner's default when absent. */
  readonly maxAttempts?: number | undefined;
  /** Not run before this time (default: now). */
  readonly notBefore?: Date | undefined;
}

export interface EnqueueResult {
  /** The job that will run: the new one, or the pending one this enqueue joined. */
  readonly id: string;
  /** True when a job of the same lock key was already pending (`angos_job_queue_enqueued_total{dedup}`). */
  readonly deduplicated: boolean;
}

export interface PageOptions {
  /** At most this many entries (default 100). */
  readonly n?: number | undefined;
  /** Continue after this cursor (the `last` of the previous page). */
  readonly last?: string | undefined;
}

export interface Page<T> {
  readonly items: T[];
  /** Cursor of the last entry, present when more entries may follow: pass it as `last`. */
  readonly last?: string | undefined;
}

/** A pending job, and whether a worker holds a claim on it (it is running, or its worker died). */
export interface PendingJob extends JobEnvelope {
  readonly claimed: boolean;
}

const DEFAULT_PAGE_SIZE = 100;
/**
 * The most jobs a gauge refresh counts (`angos_job_queue_pending`, `angos_job_queue_failed`): a
 * deeper queue reads as this many. Listing this many names costs ten ListObjectsV2 requests on S3
 * (two readdirs on fs) at most, however deep the queue; an autoscaler only needs to know that
 * there is more than enough work.
 */
export const GAUGE_COUNT_CAP = 10_000;
/** Names of the first listing page when counting: one ListObjectsV2 request on S3. */
const COUNT_PAGE_SIZE = 1000;
/** Attempts at an enqueue racing other enqueues and workers of the same lock key. */
const ENQUEUE_ROUNDS = 8;

/**
 * The durable queues under `_jobs/` of the metadata store, written against the storage contract
 * only: enqueue, and the listing and repair a jobs API needs. `JobRunner` drains them.
 *
 * States (keys.ts draws the tree): pending (`pending/<not-before>-<id>`), claimed (a
 * `claims/<id>` beside it), and dead-lettered (`failed/<id>`); completion deletes the envelope.
 * A record that cannot be read is moved to `quarantine/` and never blocks the others.
 */
export class JobQueue {
  readonly store: MetadataStore;
  readonly logger: Logger;
  readonly now: () => number;

  constructor(options: JobQueueOptions) {
    this.store = options.store;
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  /**
   * Adds a job, unless one of the same lock key is pending and not yet started: then this joins
   * it (`deduplicated`), so K enqueues before a worker starts it yield one run. An enqueue after
   * the run started adds a new job, run after it: the running one may have read the state
   * before the change this enqueue announces.
   */
  async enqueue(
    queue: string,
    kind: string,
    lockKey: string,
    payload: unknown,
    options: EnqueueOptions = {},
  ): Promise<EnqueueResult> {
    assertQueueName(queue);
    if (kind === '') throw new RangeError('a job needs a kind');
    if (lockKey === '') throw new RangeError('a job needs a lock key');
    const maxAttempts = options.maxAttempts;
    if (maxAttempts !== undefined && (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1))
      throw new RangeError('maxAttempts must be a positive integer');
    const nowMs = this.now();
    const notBeforeMs = options.notBefore?.getTime() ?? nowMs;
    const id = newJobId(nowMs);
    const name = pendingName(notBeforeMs, id);
    const envelope: JobEnvelope = {
      id,
      queue,
      kind,
      lockKey,
      createdAt: new Date(nowMs).toISOString(),
      attempts: 0,
      maxAttempts,
      notBefore: new Date(notBeforeMs).toISOString(),
      payload,
      trace: serializeContext(),
    };
    const body = encodeEnvelope(envelope); // throws here, before any write, if the payload is not JSON
    const marker = paths.lockKey(queue, lockKey);
    for (let round = 0; round < ENQUEUE_ROUNDS; round++) {
      const joined = await this.#pendingOfLockKey(queue, marker);
      if (joined !== undefined) return { id: joined, deduplicated: true };
      // The envelope first, then the marker: a crash in between leaves a job that runs, only
      // one that later enqueues do not join; the other order could leave a marker to nothing.
      await this.store.put(paths.pending(queue, name), body);
      if (await this.store.putIfAbsent(marker, encodeLockKeyRecord({ id, name, lockKey }))) {
        return { id, deduplicated: false };
      }
      // Another enqueue of the lock key won the race: join its job instead.
      await this.store.delete(paths.pending(queue, name));
    }
    throw new Error(`enqueue of lock key ${lockKey} kept racing other writers of queue ${queue}`);
  }

  /** Pending jobs in not-before order (ready ones first), `n` at a time. */
  async listPending(queue: string, page: PageOptions = {}): Promise<Page<PendingJob>> {
    assertQueueName(queue);
    // Claims are few (one per running job), so they are listed whole.
    const claims = new Set(await this.store.list(paths.claimsDir(queue)));
    return this.#page(paths.pendingDir(queue), page, async (name) => {
      const envelope = await this.readPending(queue, name);
      return envelope && { ...envelope, claimed: claims.has(envelope.id) };
    });
  }

  /** Dead-lettered jobs in id (creation) order, `n` at a time. */
  async listFailed(queue: string, page: PageOptions = {}): Promise<Page<FailedJob>> {
    assertQueueName(queue);
    return this.#page(paths.failedDir(queue), page, (id) => this.#readFailed(queue, id));
  }

  /** Puts a dead-lettered job back in the queue, its attempts reset; false if there is none. */
  async retryFailed(queue: string, id: string): Promise<boolean> {
    assertQueueName(queue);
    if (!isJobId(id)) return false;
    const failed = await this.#readFailed(queue, id);
    if (failed === undefined) return false;
    const nowMs = this.now();
    const { failedAt: _failedAt, ...envelope } = failed;
    const name = pendingName(nowMs, id);
    await this.store.put(
      paths.pending(queue, name),
      encodeEnvelope({ ...envelope, attempts: 0, notBefore: new Date(nowMs).toISOString() }),
    );
    await this.store.putIfAbsent(
      paths.lockKey(queue, envelope.lockKey),
      encodeLockKeyRecord({ id, name, lockKey: envelope.lockKey }),
    );
    await this.store.delete(paths.failed(queue, id));
    return true;
  }

  /**
   * Removes a pending job; false if there is none. A run in progress is not interrupted, but its
   * outcome is not written back: a failure is not retried.
   */
  async deletePending(queue: string, id: string): Promise<boolean> {
    assertQueueName(queue);
    if (!isJobId(id)) return false;
    const names = (await this.store.list(paths.pendingDir(queue))).filter(
      (name) => parsePendingName(name)?.id === id,
    );
    let deleted = false;
    for (const name of names) {
      const envelope = await this.readPending(queue, name);
      if (envelope !== undefined) await this.releaseLockKey(queue, envelope);
      if (await this.store.delete(paths.pending(queue, name))) deleted = true;
    }
    return deleted;
  }

  /** Removes a dead-lettered job; false if there is none. */
  async deleteFailed(queue: string, id: string): Promise<boolean> {
    assertQueueName(queue);
    if (!isJobId(id)) return false;
    return this.store.delete(paths.failed(queue, id));
  }

  /**
   * Jobs ready to run within `readyHorizonSecs` from now, running ones included
   * (`angos_job_queue_pending`), up to `GAUGE_COUNT_CAP`: a deeper queue reads as the cap. Each
   * key's name starts with its not-before time, so the count reads no values and stops at the
   * first job beyond the horizon. Cost, however deep the queue: at most cap / 1,000
   * ListObjectsV2 requests of 1,000 keys on S3, two readdirs on fs.
   */
  async pendingCount(queue: string, readyHorizonSecs: number): Promise<number> {
    assertQueueName(queue);
    const horizon = this.now() + readyHorizonSecs * 1000;
    return this.#countUpToCap(paths.pendingDir(queue), (name) => {
      const parsed = parsePendingName(name);
      if (parsed === undefined) return 'skip';
      return parsed.notBeforeMs <= horizon ? 'count' : 'stop';
    });
  }

  /**
   * The pending jobs' ids and not-before times, in not-before order, from their key names alone
   * (no record is read): the first `limit` (default all). With `GAUGE_COUNT_CAP` it costs what
   * `pendingCount` does at most.
   */
  async pendingNames(queue: string, limit = Number.POSITIVE_INFINITY): Promise<ParsedPendingName[]> {
    assertQueueName(queue);
    const jobs: ParsedPendingName[] = [];
    let after: string | undefined;
    while (jobs.length < limit) {
      const page = Math.min(COUNT_PAGE_SIZE * 10, limit - jobs.length);
      const names = await this.store.listPage(paths.pendingDir(queue), { after, limit: page });
      for (const name of names) {
        const parsed = parsePendingName(name);
        if (parsed !== undefined) jobs.push(parsed);
      }
      if (names.length < page) break;
      after = names.at(-1);
    }
    return jobs;
  }

  /**
   * Dead-lettered jobs (`angos_job_queue_failed`), up to `GAUGE_COUNT_CAP` at the cost
   * `pendingCount` has, of the queue's `failed/` prefix.
   */
  async failedCount(queue: string): Promise<number> {
    assertQueueName(queue);
    return this.#countUpToCap(paths.failedDir(queue), (id) => (isJobId(id) ? 'count' : 'skip'));
  }

  /**
   * The queues that hold anything. A queue directory left holding only the temp file of a write
   * a kill cut short (fs) holds nothing: the listings skip temp names, so it is not listed.
   */
  async queues(): Promise<string[]> {
    const names = (await this.store.list(paths.queues())).filter(isQueueName);
    const holding = await Promise.all(names.map((name) => this.#holdsAnything(paths.queue(name))));
    return names.filter((_, i) => holding[i]);
  }

  /**
   * A pending envelope; undefined when it is gone. A record that is not an envelope of this
   * queue is quarantined (and undefined returned), so that it never blocks the jobs behind it.
   */
  async readPending(queue: string, name: string): Promise<JobEnvelope | undefined> {
    const data = await this.#get(paths.pending(queue, name));
    if (data === undefined) return undefined;
    try {
      const envelope = decodeEnvelope(data);
      const parsed = parsePendingName(name);
      if (parsed?.id !== envelope.id) throw new CorruptRecordError('id does not match the key');
      if (envelope.queue !== queue) throw new CorruptRecordError('queue does not match the key');
      return envelope;
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      await this.quarantine(queue, paths.pending(queue, name), name, data, error);
      return undefined;
    }
  }

  /** Moves an unreadable record to `quarantine/<name>` and says so in the log. */
  async quarantine(queue: string, path: string, name: string, data: Buffer, error: Error): Promise<void> {
    this.logger.error('job record quarantined: it cannot be read', {
      queue,
      key: path,
      error: error.message,
    });
    await this.store.put(paths.quarantined(queue, name), data);
    await this.store.delete(path);
  }

  /**
   * Stops enqueues of the job's lock key from joining it (its run is starting, or it is being
   * deleted). Only the job's own marker is removed: a newer one belongs to a job enqueued since.
   */
  async releaseLockKey(queue: string, envelope: JobEnvelope): Promise<void> {
    const marker = paths.lockKey(queue, envelope.lockKey);
    const data = await this.#get(marker);
    if (data === undefined) return;
    try {
      if (decodeLockKeyRecord(data).id !== envelope.id) return;
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
    }
    await this.store.delete(marker);
  }

  /** The id of the pending job the marker names, clearing a marker whose job is gone. */
  async #pendingOfLockKey(queue: string, marker: string): Promise<string | undefined> {
    const data = await this.#get(marker);
    if (data === undefined) return undefined;
    try {
      const record = decodeLockKeyRecord(data);
      if ((await this.#get(paths.pending(queue, record.name))) !== undefined) return record.id;
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
    }
    // Left by a crash between a job's end and the marker's removal, or unreadable. Another
    // enqueue may replace it between our read and this delete; the price is one extra run of
    // that lock key, after the other one: never two at once (the lock), never a lost job.
    await this.store.delete(marker);
    return undefined;
  }

  async #readFailed(queue: string, id: string): Promise<FailedJob | undefined> {
    const path = paths.failed(queue, id);
    const data = await this.#get(path);
    if (data === undefined) return undefined;
    try {
      const failed = decodeFailedJob(data);
      if (failed.id !== id) throw new CorruptRecordError('id does not match the key');
      return failed;
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      await this.quarantine(queue, path, `failed-${id}`, data, error);
      return undefined;
    }
  }

  /**
   * A page of the records under `dir` after `last`: read one listing page at a time (one more
   * name than `n`, to know whether more follow), so that a page deep into a long queue costs
   * about what the first one does.
   */
  async #page<T>(
    dir: string,
    { n = DEFAULT_PAGE_SIZE, last }: PageOptions,
    read: (name: string) => Promise<T | undefined>,
  ): Promise<Page<T>> {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError('n must be a positive integer');
    const items: T[] = [];
    let cursor: string | undefined;
    let after = last;
    for (;;) {
      const names = await this.store.listPage(dir, { after, limit: n + 1 });
      for (const name of names) {
        if (items.length === n) return { items, last: cursor };
        const item = await read(name);
        after = name;
        if (item === undefined) continue; // gone, or quarantined
        items.push(item);
        cursor = name;
      }
      if (names.length <= n) return { items };
    }
  }

  /**
   * Names under `dir` that `judge` counts, in listing order, until it says stop or the cap's
   * worth of names is read (names that are no job's count for nothing, and are never read past
   * the bound either). Two pages: the first 1,000 names, where a count mostly ends, then the
   * rest of the cap at once (on S3 that is 9 more requests of 1,000 keys; on fs, where every
   * page reads the whole directory, one more readdir rather than 9).
   */
  async #countUpToCap(dir: string, judge: (name: string) => 'count' | 'skip' | 'stop'): Promise<number> {
    let count = 0;
    let after: string | undefined;
    for (const limit of [COUNT_PAGE_SIZE, GAUGE_COUNT_CAP - COUNT_PAGE_SIZE]) {
      const names = await this.store.listPage(dir, { after, limit });
      for (const name of names) {
        const verdict = judge(name);
        if (verdict === 'stop') return count;
        if (verdict === 'count') count++;
      }
      if (names.length < limit) return count;
      after = names.at(-1);
    }
    return count;
  }

  /** Whether anything but temp files lies under a queue's directory (its state prefixes are one level deep). */
  async #holdsAnything(dir: string): Promise<boolean> {
    for (const child of await this.store.listPage(dir, { limit: 10 })) {
      if ((await this.store.listPage(`${dir}/${child}`, { limit: 1 })).length > 0) return true;
    }
    return false;
  }

  async #get(path: string): Promise<Buffer | undefined> {
    try {
      return await this.store.get(path);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** @internal The runner's reads: a value, or undefined when absent. */
  read(path: string): Promise<Buffer | undefined> {
    return this.#get(path);
  }
}
