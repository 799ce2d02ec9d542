import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type Algorithm, createDigester, type Digester, type DigestParts } from '@angos/oci';

/**
 * The running hash of an upload session: fed the bytes as they arrive, asked for the digest at
 * completion.
 */
export interface RunningHash {
  readonly algorithm: Algorithm;
  /** Bytes fed so far. */
  readonly bytes: number;
  /**
   * Feeds a chunk (copied: the caller may reuse it). Returns a promise when the hashing thread is
   * behind, to be awaited before feeding more; undefined otherwise.
   */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** The digest of everything fed. Rejects if the hashing thread failed: re-hash the stored bytes. */
  digest(): Promise<DigestParts>;
  /** Frees the state (a session abandoned, failed or completed); the hash is unusable after. */
  dispose(): void;
}

/**
 * Bytes of the ring each thread reads chunks from. Chunks are copied into it (no allocation per
 * chunk: a message per chunk, cloned, left ~50 MiB of freed buffers in the process after a few
 * gigabytes); a feeder waits while it is full.
 */
const RING_BYTES = 4 * 1024 * 1024;

/** The worker reports hashed bytes in batches (and whenever it runs out of work). */
const ACK_BYTES = 256 * 1024;

/**
 * Runs in each worker: one hash per session id. `u` hashes a region of the ring, `d` finishes a
 * session, `x` drops one. The worker reports how many ring bytes it has consumed (`a`), which is
 * how the main thread knows what it may overwrite.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const ring = new Uint8Array(workerData.ring);
const hashes = new Map();
let consumed = 0;
let reportScheduled = false;
const report = () => {
  reportScheduled = false;
  if (consumed > 0) parentPort.postMessage({ op: 'a', bytes: consumed });
  consumed = 0;
};
parentPort.on('message', (message) => {
  const { op, id } = message;
  if (op === 'u') {
    let hash = hashes.get(id);
    if (hash === undefined) hashes.set(id, (hash = createHash(message.algorithm)));
    hash.update(ring.subarray(message.start, message.start + message.length));
    consumed += message.length;
    if (consumed >= ${ACK_BYTES}) report();
    else if (!reportScheduled) {
      reportScheduled = true;
      setImmediate(report);
    }
  } else if (op === 'd') {
    const hash = hashes.get(id) ?? createHash(message.algorithm);
    hashes.delete(id);
    parentPort.postMessage({ op: 'r', id, hex: hash.digest('hex') });
  } else if (op === 'x') {
    hashes.delete(id);
  }
});
`;

type WorkerReply = { op: 'a'; bytes: number } | { op: 'r'; id: number; hex: string };

/** A chunk waiting for room in the ring, and who waits for it to be in. */
interface PendingChunk {
  readonly id: number;
  readonly algorithm: Algorithm;
  readonly data: Uint8Array;
  copied: number;
  readonly done: () => void;
}

/** One hashing thread, the ring it reads from, and what it still has to consume. */
class HashThread {
  readonly #worker: Worker;
  readonly #ring = new Uint8Array(new SharedArrayBuffer(RING_BYTES));
  /** Ring bytes written and consumed so far (monotonic); their difference is in use. */
  #written = 0;
  #consumed = 0;
  readonly #pending: PendingChunk[] = [];
  #failure: Error | undefined;
  readonly #results = new Map<number, { resolve: (hex: string) => void; reject: (error: Error) => void }>();

  constructor() {
    // A small heap: the worker holds hash states, nothing else.
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ring: this.#ring.buffer },
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    // Hashing threads never keep the process alive.
    this.#worker.unref();
    this.#worker.on('message', (reply: WorkerReply) => {
      if (reply.op === 'a') {
        this.#consumed += reply.bytes;
        this.#copyPending();
      } else {
        this.#results.get(reply.id)?.resolve(reply.hex);
        this.#results.delete(reply.id);
      }
    });
    const fail = (error: Error) => {
      this.#failure ??= error;
      for (const pending of this.#results.values()) pending.reject(this.#failure);
      this.#results.clear();
      // Feeders stop waiting; their hashes' digests reject.
      for (const chunk of this.#pending.splice(0)) chunk.done();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`hashing thread exited (code ${code})`)));
  }

  get failed(): boolean {
    return this.#failure !== undefined;
  }

  update(id: number, algorithm: Algorithm, data: Uint8Array): Promise<void> | undefined {
    if (this.#failure || data.byteLength === 0) return undefined;
    const chunk: PendingChunk = { id, algorithm, data, copied: 0, done: () => {} };
    if (this.#pending.length === 0) {
      this.#copy(chunk);
      if (chunk.copied === data.byteLength) return undefined;
    }
    return new Promise((resolve) => {
      this.#pending.push({ ...chunk, done: resolve });
    });
  }

  digest(id: number, algorithm: Algorithm): Promise<string> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#results.set(id, { resolve, reject });
      this.#worker.postMessage({ op: 'd', id, algorithm });
    });
  }

  drop(id: number): void {
    // Chunks of the session still waiting for room are not needed any more.
    for (let index = 0; index < this.#pending.length; index++) {
      const chunk = this.#pending[index]!;
      if (chunk.id !== id) continue;
      this.#pending.splice(index--, 1);
      chunk.done();
    }
    if (!this.#failure) this.#worker.postMessage({ op: 'x', id });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }

  /** Copies what fits of `chunk` into the ring, in contiguous pieces, telling the worker of each. */
  #copy(chunk: PendingChunk): void {
    while (chunk.copied < chunk.data.byteLength) {
      const free = RING_BYTES - (this.#written - this.#consumed);
      const at = this.#written % RING_BYTES;
      const length = Math.min(chunk.data.byteLength - chunk.copied, free, RING_BYTES - at);
      if (length === 0) return;
      this.#ring.set(chunk.data.subarray(chunk.copied, chunk.copied + length), at);
      this.#worker.postMessage({ op: 'u', id: chunk.id, algorithm: chunk.algorithm, start: at, length });
      this.#written += length;
      chunk.copied += length;
    }
  }

  /** Room was made: chunks waiting go in, in order. */
  #copyPending(): void {
    while (this.#pending.length > 0) {
      const chunk = this.#pending[0]!;
      this.#copy(chunk);
      if (chunk.copied < chunk.data.byteLength) return;
      this.#pending.shift();
      chunk.done();
    }
  }
}

/**
 * Running upload hashes, computed on worker threads. SHA-256 costs ~0.5 s of CPU per GiB; on the
 * event loop it competed with receiving the bytes and writing them, and a monolithic push ran
 * at ~600 MiB/s; off it, at ~710. Each session's hash state lives in one thread (sessions are
 * spread round-robin); chunks are copied into the thread's ring, and update() waits while the
 * ring is full. If no thread can be started, hashes are computed in line.
 */
export class RunningHashes {
  readonly #threads: HashThread[] = [];
  readonly #size: number;
  #next = 0;
  #ids = 0;

  constructor(threads = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    this.#size = threads;
  }

  create(algorithm: Algorithm): RunningHash {
    const thread = this.#pickThread();
    return thread ? new ThreadHash(thread, ++this.#ids, algorithm) : new InlineHash(algorithm);
  }

  /** Stops the threads (tests; a process exits without it). */
  async close(): Promise<void> {
    await Promise.all(this.#threads.splice(0).map((thread) => thread.terminate()));
  }

  #pickThread(): HashThread | undefined {
    for (let index = 0; index < this.#threads.length; index++) {
      if (this.#threads[index]!.failed) this.#threads.splice(index--, 1);
    }
    if (this.#threads.length < this.#size) {
      try {
        this.#threads.push(new HashThread());
      } catch {
        // No threads here (resource limits): the caller hashes in line.
      }
    }
    if (this.#threads.length === 0) return undefined;
    this.#next = (this.#next + 1) % this.#threads.length;
    return this.#threads[this.#next];
  }
}

class ThreadHash implements RunningHash {
  #bytes = 0;
  #result: Promise<DigestParts> | undefined;

  constructor(
    private readonly thread: HashThread,
    private readonly id: number,
    readonly algorithm: Algorithm,
  ) {}

  get bytes(): number {
    return this.#bytes;
  }

  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#result !== undefined) throw new Error('running hash already finalized');
    this.#bytes += chunk.byteLength;
    return this.thread.update(this.id, this.algorithm, chunk);
  }

  digest(): Promise<DigestParts> {
    this.#result ??= this.thread
      .digest(this.id, this.algorithm)
      .then((hex) => ({ algorithm: this.algorithm, hex }));
    return this.#result;
  }

  dispose(): void {
    if (this.#result === undefined) this.thread.drop(this.id);
  }
}

/** The fallback: the same contract, hashed on the calling thread. */
class InlineHash implements RunningHash {
  readonly #digester: Digester;

  constructor(readonly algorithm: Algorithm) {
    this.#digester = createDigester(algorithm);
  }

  get bytes(): number {
    return this.#digester.bytes;
  }

  update(chunk: Uint8Array): undefined {
    this.#digester.update(chunk);
    return undefined;
  }

  async digest(): Promise<DigestParts> {
    return this.#digester.digest();
  }

  dispose(): void {}
}

let shared: RunningHashes | undefined;

/** The hashing threads of this process, shared by every registry it builds (tests build many). */
export function processRunningHashes(): RunningHashes {
  shared ??= new RunningHashes();
  return shared;
}
