import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { LockManager } from '@angos/lock';
import { inSpan, type Logger, linkTo, SpanKind, silentLogger } from '@angos/observability';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, retryDelayMs } from './backoff.js';
import {
  CorruptRecordError,
  encodeEnvelope,
  type FailedJob,
  isJobId,
  type JobEnvelope,
  parsePendingName,
  pendingName,
} from './envelope.js';
import { TerminalJobError } from './errors.js';
import { paths } from './layout.js';
import type { JobQueue } from './queue.js';
import { type ClaimRecord, decodeClaim, encodeClaim, encodeLockKeyRecord } from './records.js';

/** What a handler gets: the envelope, its parsed payload, and the signal to stop on. */
export interface JobContext<P> {
  readonly job: JobEnvelope;
  readonly payload: P;
  /**
   * Aborts when the job must stop at once: its lock stopped protecting it (ownership lost, max
   * hold, lock object gone, heartbeat budget spent; the reason is a `LockLostError`), or the
   * worker's stop grace ran out. A handler checks it between writes and writes nothing after.
   */
  readonly signal: AbortSignal;
}

/** Runs the jobs of one kind. */
export interface JobHandler<P = unknown> {
  readonly kind: string;
  /** Checks and types the payload; a throw dead-letters the job at once (unparseable payload). */
  parse?(payload: unknown): P;
  /** Resolves when done; throws to retry with backoff, or a `TerminalJobError` to dead-letter. */
  run(context: JobContext<P>): Promise<void>;
}

/**
 * How a run ended: `completed` (envelope deleted), `retried` (rescheduled with backoff),
 * `dead_lettered`, `cancelled` (the lock was lost or the worker stopped: nothing written, the job
 * is taken over later), or `deleted` (removed through the API while it ran: not rescheduled).
 */
export type JobOutcome = 'completed' | 'retried' | 'dead_lettered' | 'cancelled' | 'deleted';

export interface JobFinished {
  readonly queue: string;
  readonly kind: string;
  readonly id: string;
  readonly outcome: JobOutcome;
  readonly durationMs: number;
  readonly error?: string | undefined;
}

export interface QueuePool {
  readonly name: string;
  /** Jobs of this queue run at once by this runner (`max_concurrent_*_jobs`). */
  readonly concurrency: number;
}

export interface JobRunnerOptions {
  readonly queue: JobQueue;
  /** The `[metadata_store]` lock strategy; shared by every worker (memory only in one process). */
  readonly locks: LockManager;
  readonly pools: readonly QueuePool[];
  // biome-ignore lint/suspicious/noExplicitAny: a registry of handlers of different payload types
  readonly handlers: readonly JobHandler<any>[];
  /** Between two looks at a queue (default 1 s); a finished job triggers one at once. */
  readonly pollIntervalMs?: number | undefined;
  /**
   * When a queue holds only backed-off jobs (none ready, none claimed), the next look waits until
   * the soonest one is due, but at most this long (default 60 s; never less than the poll
   * interval). An idle queue with nothing pending is still looked at every poll interval, unless
   * `backOffWhenEmpty`.
   */
  readonly maxIdleWaitMs?: number | undefined;
  /**
   * For a drain that is poked for every job its own process enqueues (the server's in-process
   * drain): an empty queue (nothing pending, no claims) is looked at again after twice the last
   * wait, from the poll interval up to `maxIdleWaitMs`; a poke or a look that finds anything goes
   * back to the poll interval. Jobs enqueued elsewhere are then found within `maxIdleWaitMs`.
   */
  readonly backOffWhenEmpty?: boolean | undefined;
  /** How long a claimed job waits for its lock (another job of the lock key runs) before it is left for later (default 10 s). */
  readonly lockWaitMs?: number | undefined;
  /** How long a takeover attempt waits for the lock of a claim it suspects dead (default 1 s). */
  readonly takeoverWaitMs?: number | undefined;
  readonly retry?: Partial<RetryPolicy> | undefined;
  /** Recorded in claims, for the operator (default `<host>:<pid>:<random>`). */
  readonly workerId?: string | undefined;
  readonly logger?: Logger | undefined;
  /** Called after every run (metrics). */
  readonly onJobFinished?: ((event: JobFinished) => void) | undefined;
}

/** After the stop grace, aborted jobs get this long to notice before `stop` returns anyway. */
const ABORT_WAIT_MS = 5000;
/** Stored errors are cut to this length: a record stays small. */
const MAX_ERROR_LENGTH = 2000;
/**
 * Names of `pending/` a poll reads beyond the claims and its free slots: the head of the queue
 * holds the running jobs (claimed ones stay in `pending/` until done) and then the next ready
 * ones, so this is about one listing request however deep the queue is.
 */
const POLL_HEAD_SLACK = 32;
/** The most names one listing request returns on S3. */
const MAX_POLL_PAGE = 1000;

/**
 * Drains queues: claims ready envelopes (`putIfAbsent` of a claim record, so two workers never
 * start the same one), runs each under the lock of its lock key for the whole run, and writes
 * the outcome. A claim whose worker died (its lock lapsed) is taken over at the first poll after
 * the lock's TTL. Every transition happens under the job's lock, and a run whose lock stopped
 * protecting it writes nothing: a job never runs twice at once, and runs again only after its
 * holder died or was cut off.
 */
export class JobRunner {
  readonly #queue: JobQueue;
  readonly #locks: LockManager;
  readonly #pools: readonly QueuePool[];
  readonly #handlers = new Map<string, JobHandler<unknown>>();
  readonly #pollIntervalMs: number;
  readonly #maxIdleWaitMs: number;
  readonly #backOffWhenEmpty: boolean;
  /** Per queue, the last wait after a look that found it empty (`backOffWhenEmpty`). */
  readonly #emptyWaits = new Map<string, number>();
  readonly #lockWaitMs: number;
  readonly #takeoverWaitMs: number;
  readonly #retry: RetryPolicy;
  readonly #workerId: string;
  readonly #logger: Logger;
  readonly #onJobFinished: ((event: JobFinished) => void) | undefined;
  /** Aborts the jobs still running when the stop grace runs out. */
  readonly #abort = new AbortController();
  /** Per queue: the jobs (by id) this runner claims, runs or tries to take over. */
  readonly #inFlight = new Map<string, Map<string, Promise<void>>>();
  /** Per queue: claims of other workers seen at the previous poll (takeover candidates). */
  readonly #seenClaims = new Map<string, Set<string>>();
  readonly #wakeups = new Map<string, () => void>();
  /** Queues poked while being looked at: looked at again right after. */
  readonly #poked = new Set<string>();
  /** Per queue: when this runner last tried to take each claim over. */
  readonly #takeoverTried = new Map<string, Map<string, number>>();
  /** Queues with a takeover attempt in flight (one at a time). */
  readonly #takingOver = new Set<string>();
  #loops: Promise<void>[] = [];
  #stopping = false;

  constructor(options: JobRunnerOptions) {
    this.#queue = options.queue;
    this.#locks = options.locks;
    this.#pools = options.pools;
    for (const pool of options.pools) {
      if (!Number.isSafeInteger(pool.concurrency) || pool.concurrency < 1)
        throw new RangeError(`concurrency of job queue ${pool.name} must be at least 1`);
      this.#inFlight.set(pool.name, new Map());
    }
    for (const handler of options.handlers) this.#handlers.set(handler.kind, handler);
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#maxIdleWaitMs = Math.max(this.#pollIntervalMs, options.maxIdleWaitMs ?? 60_000);
    this.#backOffWhenEmpty = options.backOffWhenEmpty ?? false;
    this.#lockWaitMs = options.lockWaitMs ?? 10_000;
    this.#takeoverWaitMs = options.takeoverWaitMs ?? 1000;
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#logger = options.logger ?? silentLogger;
    this.#onJobFinished = options.onJobFinished;
  }

  /** Starts polling every queue. */
  start(): void {
    if (this.#loops.length > 0 || this.#stopping) return;
    this.#loops = this.#pools.map((pool) => this.#loop(pool));
  }

  /** Jobs running (or being claimed) now, over every queue. */
  get inFlight(): number {
    let count = 0;
    for (const jobs of this.#inFlight.values()) count += jobs.size;
    return count;
  }

  /**
   * Stops claiming, waits for the jobs in flight up to `graceMs`, then aborts them (their
   * signal fires; their locks are released or lapse and other workers take them over).
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.#stopping = true;
    for (const wake of this.#wakeups.values()) wake();
    await Promise.all(this.#loops);
    if (await settlesWithin(this.#allInFlight(), graceMs)) return;
    this.#logger.warn('jobs still running after the stop grace period; cancelling them', {
      jobs: this.inFlight,
    });
    this.#abort.abort(new Error('the worker is stopping'));
    await settlesWithin(this.#allInFlight(), ABORT_WAIT_MS);
  }

  /**
   * Looks at a queue now rather than at the next poll: a job was just enqueued in this process.
   * A poke while the queue is being looked at makes another look follow at once.
   */
  poke(queue: string): void {
    this.#poked.add(queue);
    this.#emptyWaits.delete(queue);
    this.#wakeups.get(queue)?.();
  }

  #allInFlight(): Promise<unknown> {
    return Promise.all([...this.#inFlight.values()].flatMap((jobs) => [...jobs.values()]));
  }

  async #loop(pool: QueuePool): Promise<void> {
    while (!this.#stopping) {
      let waitMs = this.#pollIntervalMs;
      this.#poked.delete(pool.name);
      try {
        waitMs = await this.#poll(pool);
      } catch (error) {
        this.#logger.warn('job queue poll failed', { queue: pool.name, error: String(error) });
      }
      if (this.#stopping) return;
      if (this.#poked.has(pool.name)) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.#wakeups.set(pool.name, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * One look at a queue: one listing of `claims/` (one claim per running job), and the head of
   * `pending/`, a page at a time, until the free slots are filled or a job not yet due is
   * reached. Envelope names start with their not-before time, so the ready jobs come first: the
   * cost does not grow with the depth of the queue (a page covers the claims, the free slots and
   * `POLL_HEAD_SLACK`; more pages only while the jobs it holds are all claimed or unreadable).
   * Reads only of what it starts. Resolves with how long to wait before the next look (see
   * `maxIdleWaitMs`).
   */
  async #poll(pool: QueuePool): Promise<number> {
    const queue = pool.name;
    const running = this.#inFlight.get(queue) as Map<string, Promise<void>>;
    if (running.size >= pool.concurrency) return this.#pollIntervalMs; // a finishing job wakes the loop
    const store = this.#queue.store;
    const claimIds = await store.list(paths.claimsDir(queue));
    const claimed = new Set(claimIds);
    const pageSize = Math.min(MAX_POLL_PAGE, claimIds.length + pool.concurrency + POLL_HEAD_SLACK);
    // A crash half-way through a reschedule can leave two keys of one id: the newest seen counts.
    const namesById = new Map<string, string[]>();
    const nowMs = this.#queue.now();
    let anyReady = false;
    let soonestMs: number | undefined;
    let after: string | undefined;
    scan: for (;;) {
      const names = await store.listPage(paths.pendingDir(queue), { after, limit: pageSize });
      for (const name of names) {
        const id = parsePendingName(name)?.id;
        if (id !== undefined) namesById.set(id, [...(namesById.get(id) ?? []), name]);
      }
      for (const name of names) {
        if (this.#stopping || running.size >= pool.concurrency) break scan;
        const parsed = parsePendingName(name);
        if (parsed === undefined) continue; // not a job key; never read, never blocks anything
        if (parsed.notBeforeMs > nowMs) {
          soonestMs = parsed.notBeforeMs;
          break scan; // names sort by not-before: nothing further is ready
        }
        anyReady = true;
        const { id } = parsed;
        if (running.has(id) || claimed.has(id)) continue;
        const versions = namesById.get(id) as string[];
        const newest = versions.at(-1) as string;
        if ((parsePendingName(newest)?.notBeforeMs ?? 0) > nowMs) continue;
        this.#track(queue, id, () => this.#claimAndRun(queue, id, newest, versions.slice(0, -1)));
      }
      if (names.length < pageSize) break;
      after = names.at(-1);
    }
    this.#maybeTakeOver(pool, claimIds);
    if (!anyReady && soonestMs === undefined && claimIds.length === 0) return this.#emptyWait(queue);
    this.#emptyWaits.delete(queue);
    // Only backed-off jobs: nothing can start before the soonest is due. With claims about, the
    // next polls are takeover checks and keep their pace.
    if (anyReady || soonestMs === undefined || claimIds.length > 0) return this.#pollIntervalMs;
    return Math.min(Math.max(soonestMs - nowMs, this.#pollIntervalMs), this.#maxIdleWaitMs);
  }

  /** The wait after a look that found the queue empty (see `backOffWhenEmpty`). */
  #emptyWait(queue: string): number {
    if (!this.#backOffWhenEmpty) return this.#pollIntervalMs;
    const last = this.#emptyWaits.get(queue);
    const wait = last === undefined ? this.#pollIntervalMs : Math.min(last * 2, this.#maxIdleWaitMs);
    this.#emptyWaits.set(queue, wait);
    return wait;
  }

  /**
   * Claims of other workers seen at two polls in a row are takeover candidates: if the lock of
   * one is free, its worker is gone. A live claim's lock is held, so an attempt at it waits
   * `takeoverWaitMs` for nothing: at most one attempt per queue is in flight, taking a free slot,
   * and the candidate tried least recently goes first (ties at random, so that workers spread
   * out). A dead worker's job is thus taken over after its lock's TTL plus, at worst, one round
   * of the live claims (each costing a poll and a takeover wait, shared among the workers).
   */
  #maybeTakeOver(pool: QueuePool, claimIds: readonly string[]): void {
    const queue = pool.name;
    const running = this.#inFlight.get(queue) as Map<string, Promise<void>>;
    const previous = this.#seenClaims.get(queue) ?? new Set<string>();
    const tried = this.#takeoverTried.get(queue) ?? new Map<string, number>();
    const seen = new Set<string>();
    const candidates: string[] = [];
    for (const id of claimIds) {
      if (running.has(id) || !isJobId(id)) continue;
      seen.add(id);
      if (previous.has(id)) candidates.push(id);
    }
    this.#seenClaims.set(queue, seen);
    for (const id of tried.keys()) if (!seen.has(id)) tried.delete(id);
    this.#takeoverTried.set(queue, tried);
    if (this.#stopping || running.size >= pool.concurrency || this.#takingOver.has(queue)) return;
    const order = (id: string) => tried.get(id) ?? 0;
    const [pick] = candidates
      .map((id) => ({ id, order: order(id), tie: Math.random() }))
      .sort((a, b) => a.order - b.order || a.tie - b.tie);
    if (pick === undefined) return;
    tried.set(pick.id, Date.now());
    this.#takingOver.add(queue);
    this.#track(queue, pick.id, () =>
      this.#takeOver(queue, pick.id).finally(() => this.#takingOver.delete(queue)),
    );
  }

  #track(queue: string, id: string, work: () => Promise<void>): void {
    const running = this.#inFlight.get(queue) as Map<string, Promise<void>>;
    const done = work()
      .catch((error: unknown) => {
        this.#logger.error('job bookkeeping failed; the job is taken over later', {
          queue,
          id,
          error: String(error),
        });
      })
      .finally(() => {
        running.delete(id);
        this.#seenClaims.get(queue)?.delete(id);
        this.#wakeups.get(queue)?.(); // a slot is free: look again now
      });
    running.set(id, done);
  }

  async #claimAndRun(queue: string, id: string, name: string, older: readonly string[]): Promise<void> {
    const envelope = await this.#queue.readPending(queue, name);
    if (envelope === undefined) return;
    // A trace of its own (a job outlives the request that asked for it), linked to that request's.
    const link = linkTo(envelope.trace);
    await inSpan(
      `job ${envelope.kind}`,
      {
        root: true,
        kind: SpanKind.CONSUMER,
        attributes: {
          'angos.job.queue': queue,
          'angos.job.kind': envelope.kind,
          'angos.job.id': envelope.id,
          'angos.job.attempt': envelope.attempts + 1,
        },
        ...(link === undefined ? {} : { links: [link] }),
      },
      () => this.#claimAndRunTraced(queue, id, name, older, envelope),
    );
  }

  async #claimAndRunTraced(
    queue: string,
    id: string,
    name: string,
    older: readonly string[],
    envelope: JobEnvelope,
  ): Promise<void> {
    const token = randomUUID();
    const claimPath = paths.claim(queue, id);
    const claim = this.#claim(token, envelope.lockKey);
    if (!(await this.#queue.store.putIfAbsent(claimPath, encodeClaim(claim)))) return; // another worker's
    await this.#underLock(
      envelope.lockKey,
      this.#lockWaitMs,
      async (signal) => {
        if ((await this.#readClaim(queue, id))?.token !== token) return; // taken over meanwhile
        const current = await this.#queue.readPending(queue, name);
        if (current === undefined) {
          await this.#queue.store.delete(claimPath); // done or rescheduled between listing and claim
          return;
        }
        for (const stale of older) await this.#queue.store.delete(paths.pending(queue, stale));
        await this.#run(queue, name, current, signal);
      },
      async () => {
        // No lock in time (another job of the lock key runs): give the claim back for a later poll.
        if ((await this.#readClaim(queue, id))?.token === token) await this.#queue.store.delete(claimPath);
      },
    );
  }

  /**
   * Takes over a claim whose worker no longer holds the job's lock. Holding the lock proves the
   * claimant cannot be writing: it died (its lock lapsed after the TTL), was cut off, or has not
   * got the lock yet (then it finds our token and stands down).
   */
  async #takeOver(queue: string, id: string): Promise<void> {
    const suspect = await this.#readClaim(queue, id);
    if (suspect === undefined) return;
    const claimPath = paths.claim(queue, id);
    const store = this.#queue.store;
    await this.#underLock(suspect.lockKey, this.#takeoverWaitMs, async (signal) => {
      if ((await this.#readClaim(queue, id))?.token !== suspect.token) return;
      const versions = (await store.list(paths.pendingDir(queue))).filter(
        (name) => parsePendingName(name)?.id === id,
      );
      const newest = versions.at(-1);
      const notBeforeMs = newest === undefined ? 0 : (parsePendingName(newest)?.notBeforeMs ?? 0);
      for (const stale of versions.slice(0, -1)) await store.delete(paths.pending(queue, stale));
      if (newest === undefined || notBeforeMs > this.#queue.now()) {
        // Its worker finished or rescheduled it and died before removing the claim.
        await store.delete(claimPath);
        return;
      }
      const envelope = await this.#queue.readPending(queue, newest);
      if (envelope === undefined || envelope.lockKey !== suspect.lockKey) {
        await store.delete(claimPath); // claimed again by the next poll, under the right lock
        return;
      }
      await store.put(claimPath, encodeClaim(this.#claim(randomUUID(), envelope.lockKey)));
      this.#logger.info('job taken over from a worker that no longer holds its lock', {
        queue,
        id,
        kind: envelope.kind,
        previous_worker: suspect.worker,
      });
      await this.#run(queue, newest, envelope, signal);
    });
  }

  /**
   * Runs `work` holding the lock of `lockKey`. Without the lock within `waitMs` it calls
   * `onNoLock` instead. When the lock is lost (or the runner aborts) while the work runs,
   * `withLocks` answers at once; the work's signal has fired, and the slot is kept until the
   * work has actually stopped.
   */
  async #underLock(
    lockKey: string,
    waitMs: number,
    work: (signal: AbortSignal) => Promise<void>,
    onNoLock?: () => Promise<void>,
  ): Promise<void> {
    const acquisition = new AbortController();
    const timer = setTimeout(() => acquisition.abort(new Error('lock wait timed out')), waitMs);
    let running: Promise<void> | undefined;
    try {
      await this.#locks.withLocks(
        [lockKey],
        (signal) => {
          clearTimeout(timer); // from here only a lost lock or the stop grace cancels
          running = work(signal);
          return running;
        },
        { signal: AbortSignal.any([acquisition.signal, this.#abort.signal]) },
      );
    } catch (error) {
      if (running === undefined) {
        // Contended (another job of the lock key runs, or a live claim's) is routine; anything
        // else (the lock backend is unreachable) is worth a warning.
        const routine =
          acquisition.signal.aborted ||
          this.#abort.signal.aborted ||
          (error as Error).name === 'LockTimeoutError';
        const fields = { lock_key: lockKey, error: String(error) };
        if (routine) this.#logger.debug('job lock not acquired; left for a later poll', fields);
        else this.#logger.warn('job lock not acquired; left for a later poll', fields);
        await onNoLock?.();
        return;
      }
      // Cancelled (the run writes nothing, see #run), or the outcome's own writes failed.
      await running.catch(() => {});
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs the handler of a claimed job under its lock and writes the outcome, unless cancelled. */
  async #run(queue: string, name: string, envelope: JobEnvelope, signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    // From here on, enqueues of the lock key add a new job: this run may have read too early.
    await this.#queue.releaseLockKey(queue, envelope);
    const finish = (outcome: JobOutcome, error?: string) => {
      const event = {
        queue,
        kind: envelope.kind,
        id: envelope.id,
        outcome,
        durationMs: Date.now() - startedAt,
        error,
      };
      if (outcome === 'cancelled') this.#logger.warn('job cancelled; it runs again elsewhere', { ...event });
      try {
        this.#onJobFinished?.(event);
      } catch (error) {
        this.#logger.warn('job outcome observer failed', { queue, error: String(error) });
      }
    };
    const handler = this.#handlers.get(envelope.kind);
    if (handler === undefined) {
      await this.#deadLetter(queue, name, envelope, envelope.attempts, `unknown job kind "${envelope.kind}"`);
      finish('dead_lettered');
      return;
    }
    let payload: unknown;
    try {
      payload = handler.parse ? handler.parse(envelope.payload) : envelope.payload;
    } catch (error) {
      const message = `unparseable payload: ${messageOf(error)}`;
      await this.#deadLetter(queue, name, envelope, envelope.attempts, message);
      finish('dead_lettered', message);
      return;
    }
    const budget = envelope.maxAttempts ?? this.#retry.maxAttempts;
    if (envelope.attempts >= budget) {
      // Every run so far started and never reached an outcome: a job that kills its worker (or
      // always loses its lock) would otherwise run forever.
      const message = `${envelope.attempts} runs started and none finished (the worker died or lost the job's lock)${envelope.lastError === undefined ? '' : `; last error: ${envelope.lastError}`}`;
      await this.#deadLetter(queue, name, envelope, envelope.attempts, messageOf(message));
      finish('dead_lettered', message);
      return;
    }
    const started = await this.#countRunStart(queue, name, envelope);
    if (started === undefined) {
      await this.#queue.store.delete(paths.claim(queue, envelope.id)); // deleted through the API meanwhile
      return finish('deleted');
    }
    let failure: unknown;
    let failed = false;
    try {
      await handler.run({ job: started, payload, signal });
    } catch (error) {
      failed = true;
      failure = error;
    }
    // The lock no longer protects this run: whatever it would write could overwrite a newer
    // worker's. The claim stays; the job is taken over once the lock is free.
    if (signal.aborted) return finish('cancelled', messageOf(signal.reason));
    if (!failed) {
      await this.#queue.store.delete(paths.pending(queue, name));
      await this.#queue.store.delete(paths.claim(queue, envelope.id));
      return finish('completed');
    }
    const error = messageOf(failure);
    if ((await this.#queue.read(paths.pending(queue, name))) === undefined) {
      await this.#queue.store.delete(paths.claim(queue, envelope.id)); // deleted through the API meanwhile
      return finish('deleted', error);
    }
    const { attempts } = started; // this run included, counted as it started
    if (failure instanceof TerminalJobError || attempts >= budget) {
      await this.#deadLetter(queue, name, envelope, attempts, error);
      return finish('dead_lettered', error);
    }
    const notBeforeMs = this.#queue.now() + retryDelayMs(attempts, this.#retry);
    const next = pendingName(notBeforeMs, envelope.id);
    const retried: JobEnvelope = {
      ...started,
      attempts,
      notBefore: new Date(notBeforeMs).toISOString(),
      lastError: error,
    };
    // New key first, then the old one goes: a crash in between leaves two keys of one id, and
    // the newest wins (#poll). Then enqueues of the lock key join it again while it waits.
    await this.#queue.store.put(paths.pending(queue, next), encodeEnvelope(retried));
    await this.#queue.store.delete(paths.pending(queue, name));
    await this.#queue.store.putIfAbsent(
      paths.lockKey(queue, envelope.lockKey),
      encodeLockKeyRecord({ id: envelope.id, name: next, lockKey: envelope.lockKey }),
    );
    await this.#queue.store.delete(paths.claim(queue, envelope.id));
    this.#logger.info('job failed; retrying later', {
      queue,
      id: envelope.id,
      kind: envelope.kind,
      attempts,
      error,
    });
    finish('retried', error);
  }

  /**
   * Counts the run about to start in its envelope, durably, before the handler runs: a run cut
   * off by a kill or a lost lock then counts toward the attempt budget as a failed one does.
   * Undefined when the envelope is gone (deleted through the API since it was read); with
   * compare-and-swap, a deletion racing this write wins, without it the write follows a read.
   */
  async #countRunStart(queue: string, name: string, envelope: JobEnvelope): Promise<JobEnvelope | undefined> {
    const path = paths.pending(queue, name);
    const started: JobEnvelope = { ...envelope, attempts: envelope.attempts + 1 };
    const cas = this.#queue.store.conditional;
    if (cas !== undefined) {
      const current = await cas.getVersioned(path);
      if (current === undefined) return undefined;
      return (await cas.putIfVersion(path, encodeEnvelope(started), current.version)) ? started : undefined;
    }
    if ((await this.#queue.read(path)) === undefined) return undefined;
    await this.#queue.store.put(path, encodeEnvelope(started));
    return started;
  }

  async #deadLetter(
    queue: string,
    name: string,
    envelope: JobEnvelope,
    attempts: number,
    error: string,
  ): Promise<void> {
    const failed: FailedJob = {
      ...envelope,
      attempts,
      lastError: error,
      failedAt: new Date(this.#queue.now()).toISOString(),
    };
    await this.#queue.store.put(paths.failed(queue, envelope.id), encodeEnvelope(failed));
    await this.#queue.store.delete(paths.pending(queue, name));
    await this.#queue.store.delete(paths.claim(queue, envelope.id));
    this.#logger.warn('job dead-lettered', { queue, id: envelope.id, kind: envelope.kind, attempts, error });
  }

  /** A claim record; an unreadable one is quarantined, which frees its job for the next poll. */
  async #readClaim(queue: string, id: string): Promise<ClaimRecord | undefined> {
    const path = paths.claim(queue, id);
    const data = await this.#queue.read(path);
    if (data === undefined) return undefined;
    try {
      return decodeClaim(data);
    } catch (error) {
      if (!(error instanceof CorruptRecordError)) throw error;
      await this.#queue.quarantine(queue, path, `claim-${id}`, data, error);
      return undefined;
    }
  }

  #claim(token: string, lockKey: string): ClaimRecord {
    return { token, lockKey, worker: this.#workerId, claimedAt: new Date(this.#queue.now()).toISOString() };
  }
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}

/** Whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
