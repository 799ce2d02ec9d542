import type { Serializable } from 'node:child_process';
import type { MessagePort } from 'node:worker_threads';
import { acquisitionOrder, runCancellable } from './cancellable.js';
import { whenAborted } from './delays.js';
import { LockLostError } from './errors.js';
import type { MemoryLockManager } from './memory.js';
import type { LockManager, LockOptions, LockWork } from './types.js';

/**
 * The `"memory"` lock strategy across the serving units of one service (`[server] workers`):
 * the primary (the main thread, or a parent process) holds the one lock table (a
 * MemoryLockManager), and each worker thread or process acquires and releases its keys over a
 * message channel to it (a MessagePort, or the IPC channel of a forked process). The contract is the
 * memory strategy's: FIFO per key, no TTL, no retries. A worker that dies (SIGKILL, crash) loses
 * its channel, and the primary releases every key it held or awaited at once, as a distributed
 * lock expires when its holder stops renewing it. A worker that loses the primary loses its locks:
 * their work's signal aborts with LockLostError (`ownership_lost`).
 */

/** Every lock message carries this tag, so other traffic on the same channel passes by. */
const TAG = 'angos.lock';

type Request =
  /** Take `keys` for request `id`; the primary answers `granted` once they are all held. */
  | {
      readonly tag: typeof TAG;
      readonly op: 'acquire';
      readonly id: number;
      readonly keys: readonly string[];
    }
  /** Done with request `id`, held or still waiting (a cancel and a release are the same). */
  | { readonly tag: typeof TAG; readonly op: 'release'; readonly id: number };

type Reply = { readonly tag: typeof TAG; readonly op: 'granted' | 'released'; readonly id: number };

/** The side of an IPC channel a lock client or the lock table talks through. */
export interface LockChannel {
  /** Sends a message; false when the channel is closed (the message is dropped). */
  post(message: object): boolean;
  /** Subscribes to the messages received; returns the unsubscribe. */
  onMessage(listener: (message: unknown) => void): () => void;
  /** Called once when the other side is gone; returns the unsubscribe. */
  onClose(listener: () => void): () => void;
}

/**
 * The shape shared by the IPC endpoints of Node: `process` in a forked child or cluster worker,
 * a ChildProcess and a cluster Worker in the parent.
 */
export interface IpcEndpoint {
  send?: ((message: Serializable) => boolean) | undefined;
  connected?: boolean | undefined;
  isConnected?: () => boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'disconnect', listener: () => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'disconnect', listener: () => void): unknown;
}

function isConnected(endpoint: IpcEndpoint): boolean {
  if (endpoint.isConnected) return endpoint.isConnected();
  return endpoint.connected !== false && endpoint.send !== undefined;
}

/** A LockChannel over a Node IPC endpoint (process, ChildProcess, cluster Worker). */
export function ipcChannel(endpoint: IpcEndpoint): LockChannel {
  return {
    post(message) {
      if (!isConnected(endpoint)) return false;
      try {
        // false only means the message waits in Node's backlog: it is still sent.
        endpoint.send!(message);
        return true;
      } catch {
        // ERR_IPC_CHANNEL_CLOSED: the other side went between the check and the send.
        return false;
      }
    },
    onMessage(listener) {
      endpoint.on('message', listener);
      return () => endpoint.off('message', listener);
    },
    onClose(listener) {
      if (!isConnected(endpoint)) {
        queueMicrotask(listener);
        return () => {};
      }
      endpoint.on('disconnect', listener);
      return () => endpoint.off('disconnect', listener);
    },
  };
}

/**
 * A LockChannel over a MessagePort (worker_threads): the main thread serves one end, a serving
 * thread holds the other. A port closes when either end is closed or its thread ends.
 */
export function messagePortChannel(port: MessagePort): LockChannel {
  let open = true;
  port.once('close', () => {
    open = false;
  });
  return {
    post(message) {
      if (!open) return false;
      port.postMessage(message);
      return true;
    },
    onMessage(listener) {
      port.on('message', listener);
      return () => port.off('message', listener);
    },
    onClose(listener) {
      if (!open) {
        queueMicrotask(listener);
        return () => {};
      }
      port.on('close', listener);
      return () => port.off('close', listener);
    },
  };
}

function isTagged(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { tag?: unknown }).tag === TAG;
}

const isRequest = (message: unknown): message is Request => isTagged(message);
const isReply = (message: unknown): message is Reply => isTagged(message);

/**
 * Serves the lock table `table` to the client at the other end of `channel` (one per worker).
 * Returns the detach, which releases everything that client held or awaited.
 */
export function serveLocks(table: MemoryLockManager, channel: LockChannel): () => void {
  /** Per request: ends its hold (or its wait). */
  const pending = new Map<number, () => void>();
  const end = (id: number) => {
    const done = pending.get(id);
    pending.delete(id);
    done?.();
  };
  const unsubscribe = channel.onMessage((message) => {
    if (!isRequest(message)) return;
    if (message.op === 'release') {
      end(message.id);
      channel.post({ tag: TAG, op: 'released', id: message.id } satisfies Reply);
      return;
    }
    const { id, keys } = message;
    const cancel = new AbortController();
    let released!: () => void;
    const held = new Promise<void>((resolve) => (released = resolve));
    pending.set(id, () => {
      cancel.abort(new Error('released'));
      released();
    });
    table
      .withLocks(
        keys,
        async () => {
          channel.post({ tag: TAG, op: 'granted', id } satisfies Reply);
          await held;
        },
        { signal: cancel.signal },
      )
      // Rejects only with the cancel: the client gave up, or is gone.
      .catch(() => {});
  });
  let detached = false;
  const detach = () => {
    if (detached) return;
    detached = true;
    unsubscribe();
    unsubscribeClose();
    for (const id of [...pending.keys()]) end(id);
  };
  // The client is gone (exited, killed): whatever it held goes back now.
  const unsubscribeClose = channel.onClose(detach);
  return detach;
}

/** The lock client of a worker: the `"memory"` strategy, with the primary's table as the authority. */
export class IpcLockManager implements LockManager {
  readonly backend = 'memory';
  #nextId = 1;
  readonly #grants = new Map<number, () => void>();
  /** Sent releases the primary has not acknowledged yet (close() waits for them). */
  readonly #unacknowledged = new Map<number, () => void>();
  /** Aborts the work under every lock this client holds, when the primary is gone. */
  readonly #lost = new AbortController();
  /** Work that ran on after its caller left: its keys go back once it stops. */
  readonly #background = new Set<Promise<void>>();
  readonly #unsubscribe: Array<() => void>;

  constructor(private readonly channel: LockChannel) {
    this.#unsubscribe = [
      channel.onMessage((message) => {
        if (!isReply(message)) return;
        const waiting = message.op === 'granted' ? this.#grants : this.#unacknowledged;
        const resolve = waiting.get(message.id);
        waiting.delete(message.id);
        resolve?.();
      }),
      channel.onClose(() => this.#loseAll()),
    ];
  }

  async withLocks<T>(keys: readonly string[], work: LockWork<T>, options: LockOptions = {}): Promise<T> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const ordered = acquisitionOrder(keys);
    const lostError = () => new LockLostError('memory', 'ownership_lost', ordered.join(','));
    if (this.#lost.signal.aborted) throw lostError();
    const id = this.#nextId++;
    const granted = new Promise<void>((resolve) => this.#grants.set(id, resolve));
    if (!this.channel.post({ tag: TAG, op: 'acquire', id, keys: ordered } satisfies Request)) {
      this.#grants.delete(id);
      throw lostError();
    }
    const stop = signal ? AbortSignal.any([signal, this.#lost.signal]) : this.#lost.signal;
    const abort = whenAborted(stop);
    try {
      await Promise.race([granted, abort.promise]);
    } finally {
      abort.dispose();
    }
    if (stop.aborted) {
      this.#grants.delete(id);
      // Gives up the place in the queue (or the keys, when the grant crossed the cancel).
      this.#release(id);
      throw signal?.aborted ? signal.reason : lostError();
    }
    const outcome = await runCancellable(work, stop);
    if (outcome.kind === 'aborted') {
      // The caller has gone, or the primary: the keys follow once the work stops.
      const releasing = outcome.running.then(() => this.#release(id));
      this.#background.add(releasing);
      void releasing.finally(() => this.#background.delete(releasing));
      throw signal?.aborted ? outcome.reason : lostError();
    }
    this.#release(id);
    if (outcome.result.status === 'rejected') throw outcome.result.reason;
    return outcome.result.value;
  }

  observe(): void {
    // Nothing to report: like in-process locks, these are never retried or recovered.
  }

  /** Waits (at most `timeoutMs`) for background releases and the primary's acknowledgement of each. */
  async close(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.#bounded(Promise.all(this.#background), timeoutMs);
    const acknowledged = Promise.all(
      [...this.#unacknowledged.keys()].map(
        (id) =>
          new Promise<void>((resolve) => {
            const previous = this.#unacknowledged.get(id);
            this.#unacknowledged.set(id, () => {
              previous?.();
              resolve();
            });
          }),
      ),
    );
    await this.#bounded(acknowledged, Math.max(0, deadline - Date.now()));
  }

  async #bounded(promise: Promise<unknown>, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  #release(id: number): void {
    if (this.#lost.signal.aborted) return;
    this.#unacknowledged.set(id, () => {});
    if (!this.channel.post({ tag: TAG, op: 'release', id } satisfies Request))
      this.#unacknowledged.delete(id);
  }

  #loseAll(): void {
    this.#lost.abort(new Error('the lock table (primary process) is gone'));
    for (const resolve of this.#unacknowledged.values()) resolve();
    this.#unacknowledged.clear();
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
  }
}
