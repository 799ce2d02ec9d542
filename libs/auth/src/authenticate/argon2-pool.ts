import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The worker's program (`eval`): no file of its own to find, whether this module runs from
 * `dist/` or from its TypeScript source under the test runner. Written to run as CommonJS or as
 * an ES module (a worker inherits `--input-type`): `require` where there is one. It loads the binding
 * from the path the main thread resolved, so the worker needs no module resolution of its own.
 * The synchronous calls keep the work on this thread: the binding's async functions run on
 * libuv's threadpool, the four threads every fs read and write of the process waits for.
 */
const WORKER_SOURCE = `
const builtin = typeof require === 'function' ? require : process.getBuiltinModule;
const { parentPort, workerData } = builtin('node:worker_threads');
const { createRequire } = builtin('node:module');
const argon2 = createRequire(workerData.binding)(workerData.binding);
try {
  // Linux: this thread (not the process) at the lowest priority, so that on a busy machine the
  // threads serving requests and storage I/O get the CPU first. Elsewhere nothing changes.
  const tid = Number(builtin('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (tid > 0) builtin('node:os').setPriority(tid, 19);
} catch {}
parentPort.on('message', (job) => {
  try {
    let value;
    if (job.op === 'verify') value = argon2.verifySync(job.hash, job.password);
    else {
      const o = argon2.parseOptions(job.hash);
      value = argon2.hashSync(job.password, {
        algorithm: o.algorithm, version: o.version, memoryCost: o.memoryCost,
        timeCost: o.timeCost, parallelism: o.parallelism, outputLen: o.outputLen,
      });
    }
    parentPort.postMessage({ value });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message ? error.message : error) });
  }
});
`;

/** An idle worker is ended after this long: the binding and its heap cost ~15 MiB of RSS each. */
const IDLE_WORKER_MS = 30_000;

type Job =
  | { readonly op: 'verify'; readonly hash: string; readonly password: string }
  | { readonly op: 'hash-like'; readonly hash: string; readonly password: string };

interface Pending {
  readonly job: Job;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface PoolWorker {
  readonly thread: Worker;
  current?: Pending;
  idleTimer?: NodeJS.Timeout;
}

/** The queue of waiting verifications is full: the caller should answer 503 and ask to retry. */
export class Argon2PoolBusy extends Error {
  override readonly name = 'Argon2PoolBusy';
}

/** A job the binding could not run (a hash it cannot read); the message is the binding's. */
export class Argon2JobFailed extends Error {
  override readonly name = 'Argon2JobFailed';
}

export interface Argon2PoolLimits {
  /** Worker threads, i.e. Argon2 computations running at once (≥ 1). */
  readonly concurrency: number;
  /** Jobs that may wait for a free worker; one more is refused with {@link Argon2PoolBusy}. */
  readonly queueLimit: number;
}

export interface Argon2PoolStats {
  /** Jobs handed to a worker since the pool was made. */
  readonly started: number;
  readonly running: number;
  readonly queued: number;
  /** The most jobs that ever ran at once. */
  readonly peakRunning: number;
}

/**
 * Argon2 on a few worker threads of its own, so that password checks, however many arrive, never
 * occupy the threads that serve storage I/O. At most `concurrency` run at once; up to
 * `queueLimit` more wait in order; beyond that a job is refused at once rather than queued
 * without bound. Workers start on the first job (a configuration without identities never
 * starts one) and end after a while idle. An idle worker never keeps the process alive: only a
 * job in progress does, until it answers; close() ends them all at once.
 */
export class Argon2Pool {
  private readonly workers = new Set<PoolWorker>();
  private readonly queue: Pending[] = [];
  private closed = false;
  private startedJobs = 0;
  private peak = 0;
  /** Path of the @node-rs/argon2 entry point, resolved on the first job. */
  private binding: string | undefined;

  private limits: Argon2PoolLimits;

  // No parameter properties in this module: a test runs it in a child process as plain Node
  // TypeScript (type stripping), to see that its workers do not keep a process alive.
  constructor(limits: Argon2PoolLimits) {
    this.limits = limits;
  }

  /** New limits (a configuration reload): a smaller pool shrinks as its workers finish. */
  configure(limits: Argon2PoolLimits): void {
    this.limits = limits;
    this.dispatch();
  }

  /** Whether `password` matches the PHC `hash`. A hash the binding cannot read rejects. */
  async verify(hash: string, password: string): Promise<boolean> {
    return (await this.submit({ op: 'verify', hash, password })) === true;
  }

  /** A hash of `password` with the parameters (algorithm, costs, length) of the PHC `hash`. */
  async hashLike(hash: string, password: string): Promise<string> {
    return String(await this.submit({ op: 'hash-like', hash, password }));
  }

  get stats(): Argon2PoolStats {
    return {
      started: this.startedJobs,
      running: this.running(),
      queued: this.queue.length,
      peakRunning: this.peak,
    };
  }

  /** Ends the workers; jobs still queued or running reject. */
  async close(): Promise<void> {
    this.closed = true;
    const error = new Error('the Argon2 pool is closed');
    for (const pending of this.queue.splice(0)) pending.reject(error);
    await Promise.all([...this.workers].map((worker) => this.retire(worker, error)));
  }

  private submit(job: Job): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the Argon2 pool is closed'));
    const { concurrency, queueLimit } = this.limits;
    if (this.running() >= concurrency && this.queue.length >= queueLimit) {
      return Promise.reject(new Argon2PoolBusy('too many password verifications waiting'));
    }
    try {
      // Resolved here, where the caller sees the failure: a missing binding is a broken installation.
      this.binding ??= createRequire(import.meta.url).resolve('@node-rs/argon2');
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private running(): number {
    let count = 0;
    for (const worker of this.workers) if (worker.current !== undefined) count += 1;
    return count;
  }

  /** Hands queued jobs to idle workers, starting workers up to the limit. */
  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      const worker = this.idleWorker() ?? this.startWorker();
      if (worker === undefined) return;
      const pending = this.queue.shift()!;
      clearTimeout(worker.idleTimer);
      worker.current = pending;
      this.startedJobs += 1;
      this.peak = Math.max(this.peak, this.running());
      // Referenced while it works, so a caller awaiting the answer is not cut off by an exit.
      worker.thread.ref();
      worker.thread.postMessage(pending.job);
    }
  }

  private idleWorker(): PoolWorker | undefined {
    for (const worker of this.workers) if (worker.current === undefined) return worker;
    return undefined;
  }

  private startWorker(): PoolWorker | undefined {
    if (this.workers.size >= this.limits.concurrency) return undefined;
    const thread = new Worker(WORKER_SOURCE, { eval: true, workerData: { binding: this.binding } });
    const worker: PoolWorker = { thread };
    this.workers.add(worker);
    thread.on('message', (reply: { value?: unknown; error?: string }) => this.finish(worker, reply));
    thread.on('error', (error) => void this.retire(worker, error));
    thread.on('exit', () => void this.retire(worker, new Error('an Argon2 worker exited')));
    // An idle worker never keeps the process running (see finish); after the listeners, since
    // adding a 'message' listener references the worker again.
    thread.unref();
    return worker;
  }

  private finish(worker: PoolWorker, reply: { value?: unknown; error?: string }): void {
    const pending = worker.current;
    worker.current = undefined;
    if (pending !== undefined) {
      if (reply.error !== undefined) pending.reject(new Argon2JobFailed(reply.error));
      else pending.resolve(reply.value);
    }
    if (this.workers.size > this.limits.concurrency) {
      void this.retire(worker, new Error('the Argon2 pool shrank'));
    } else {
      worker.thread.unref();
      worker.idleTimer = setTimeout(() => void this.retire(worker), IDLE_WORKER_MS).unref();
    }
    this.dispatch();
  }

  /** Ends one worker; its job, if any, rejects with `error`. */
  private async retire(worker: PoolWorker, error?: Error): Promise<void> {
    if (!this.workers.delete(worker)) return;
    clearTimeout(worker.idleTimer);
    const pending = worker.current;
    worker.current = undefined;
    if (pending !== undefined) pending.reject(error ?? new Error('an Argon2 worker ended'));
    await worker.thread.terminate();
    this.dispatch();
  }
}
