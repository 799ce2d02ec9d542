import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '@angos/oci';
import type { BlobBytes } from './types.js';

/** How many bytes a follower may fall behind the fill before it is cut loose to read storage. */
export const FOLLOWER_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * How much of the blob's start a fill keeps while it runs, so that a client who asks a moment
 * after another (docker and CI fleets pull the same image at once) still streams from the fill
 * rather than waiting for its commit. Later joiners read storage once the fill is committed.
 */
export const FILL_HEAD_BYTES = FOLLOWER_BUFFER_BYTES;

/** Where a fill stands, as its followers see it. */
type FillState =
  | { readonly kind: 'waiting' }
  | { readonly kind: 'streaming' }
  | { readonly kind: 'stored' }
  | { readonly kind: 'failed'; readonly error: unknown };

/** A client reading a fill: the bytes `[next, end]` still to deliver, queued or to come. */
interface Follower {
  next: number;
  readonly end: number;
  readonly queue: Buffer[];
  queued: number;
  /** Set when the follower fell too far behind (or joined late): it reads storage from here. */
  resumeAt: number | undefined;
  wake: (() => void) | undefined;
}

/**
 * One blob being fetched from an upstream into storage, shared by every client that asks for it
 * meanwhile. The fill's own pace is storage's: each follower gets the bytes as they pass, into a
 * queue of its own bounded by FOLLOWER_BUFFER_BYTES, so a slow client never stalls the fill or the
 * others, and memory never grows with the blob. A follower that joins while the fill is still
 * within its first FILL_HEAD_BYTES gets those from memory and follows on; one that falls further
 * behind, or joins later, reads the rest from storage once the fill is committed.
 */
export class BlobFill {
  #state: FillState = { kind: 'waiting' };
  #size: number | undefined;
  #received = 0;
  /** The chunks of the blob's first FILL_HEAD_BYTES, while no more has passed; then dropped. */
  #head: Buffer[] | undefined = [];
  /** The latest chunk, passed on to followers only with the next one, or at the commit. */
  #held: Buffer | undefined;
  readonly #followers = new Set<Follower>();
  readonly #started: Promise<'streaming' | 'stored'>;
  readonly #done: Promise<void>;
  #resolveStarted!: (value: 'streaming' | 'stored') => void;
  #rejectStarted!: (error: unknown) => void;
  #resolveDone!: () => void;
  #rejectDone!: (error: unknown) => void;

  constructor(
    /**
     * Opens the committed blob in storage, from `start` to `end` (inclusive; undefined: its end),
     * for copying into the follower's destination. A storage copy reuses its buffers once a write
     * is taken, so it writes straight into the destination (the socket), never into a stream
     * that would hold the bytes for a slower reader.
     */
    private readonly openStored: (start: number, end: number | undefined) => Promise<BlobBytes>,
    /** Called with the length of each chunk received (metrics). */
    private readonly onBytes: (bytes: number) => void = () => {},
  ) {
    this.#started = new Promise((resolve, reject) => {
      this.#resolveStarted = resolve;
      this.#rejectStarted = reject;
    });
    this.#done = new Promise((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    // Nobody may be waiting on either when the fill fails: that is not an unhandled rejection.
    this.#started.catch(() => {});
    this.#done.catch(() => {});
  }

  /** Resolves once bytes flow (`streaming`, size known if the upstream gave it) or the blob was already stored. */
  get started(): Promise<'streaming' | 'stored'> {
    return this.#started;
  }

  /** Resolves when the blob is committed to storage; rejects when the fill failed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** The blob's size, once `started` resolved with `streaming` (undefined when the upstream did not say). */
  get size(): number | undefined {
    return this.#size;
  }

  /** True once the fill is stored or failed. */
  get settled(): boolean {
    return this.#state.kind === 'stored' || this.#state.kind === 'failed';
  }

  /** The upstream answered: bytes will pass through `tap()`. */
  begin(size: number | undefined): void {
    this.#size = size;
    this.#state = { kind: 'streaming' };
    this.#resolveStarted('streaming');
  }

  /** The blob is in storage (committed by this fill, or found there). */
  stored(): void {
    if (this.#held !== undefined) this.#deliver(this.#held);
    this.#held = undefined;
    this.#head = undefined;
    this.#state = { kind: 'stored' };
    this.#resolveStarted('stored');
    this.#resolveDone();
    this.#wakeAll();
  }

  failed(error: unknown): void {
    this.#held = undefined;
    this.#head = undefined;
    this.#state = { kind: 'failed', error };
    this.#rejectStarted(error);
    this.#rejectDone(error);
    this.#wakeAll();
  }

  /** The stream the verified upstream bytes pass through on their way to storage. */
  tap(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) => {
        // The last chunk reaches followers only once the blob is committed: a client that has
        // every byte then finds the blob in storage, and none gets all of a blob that failed.
        if (this.#held !== undefined) this.#deliver(this.#held);
        this.#held = chunk;
        this.onBytes(chunk.length);
        callback(null, chunk);
      },
    });
  }

  /**
   * The bytes `[range]` (the whole blob without one) as they arrive, then from storage for
   * whatever this follower could not keep up with. Its copy fails when the fill fails.
   */
  follow(range: ByteRange | undefined): BlobBytes {
    const start = range?.start ?? 0;
    const passed = this.#received > start;
    const follower: Follower = {
      next: start,
      end: range?.end ?? Number.POSITIVE_INFINITY,
      queue: [],
      queued: 0,
      // Bytes before `#received` have passed: from the head while the fill keeps it, otherwise
      // read back from storage after the commit.
      resumeAt: passed && this.#head === undefined ? start : undefined,
      wake: undefined,
    };
    if (passed && this.#head !== undefined) this.#queueHead(follower);
    if (follower.resumeAt === undefined) this.#followers.add(follower);
    const forget = () => {
      this.#followers.delete(follower);
      follower.queue.length = 0;
      follower.queued = 0;
    };
    const live = Readable.from(this.#live(follower), { objectMode: false }).on('close', forget);
    let stored: BlobBytes | undefined;
    let closed = false;
    return {
      copyTo: async (destination: Writable) => {
        await pipeline(live, destination, { end: false });
        if (follower.resumeAt === undefined) return;
        await this.#done;
        if (closed) return;
        const end = follower.end === Number.POSITIVE_INFINITY ? undefined : follower.end;
        stored = await this.openStored(follower.resumeAt, end);
        if (closed) {
          await stored.close();
          return;
        }
        await stored.copyTo(destination);
      },
      close: async () => {
        closed = true;
        live.destroy();
        forget();
        await stored?.close();
      },
    };
  }

  /** The bytes that reach this follower as they pass; ends early when it is to read storage. */
  async *#live(follower: Follower): AsyncGenerator<Buffer> {
    for (;;) {
      const chunk = follower.queue.shift();
      if (chunk !== undefined) {
        follower.queued -= chunk.length;
        yield chunk;
        continue;
      }
      const state = this.#state;
      if (state.kind === 'failed') throw state.error;
      if (follower.resumeAt !== undefined) return;
      // A range ends with its last byte. The whole blob (no end) ends once it is committed, so a
      // client that has it all finds it in storage from then on, and sees a failed commit fail.
      if (state.kind === 'stored' || follower.next > follower.end) return;
      await new Promise<void>((resolve) => {
        follower.wake = resolve;
      });
      follower.wake = undefined;
    }
  }

  /** Queues for a follower joining late what of the kept head it asks for. */
  #queueHead(follower: Follower): void {
    let offset = 0;
    for (const chunk of this.#head ?? []) {
      const from = Math.max(follower.next - offset, 0);
      const to = Math.min(chunk.length, follower.end + 1 - offset);
      if (to > from) {
        follower.queue.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
        follower.queued += to - from;
      }
      offset += chunk.length;
    }
    follower.next = Math.min(this.#received, follower.end + 1);
  }

  #deliver(chunk: Buffer): void {
    const offset = this.#received;
    this.#received += chunk.length;
    if (this.#head !== undefined) {
      if (this.#received <= FILL_HEAD_BYTES) this.#head.push(chunk);
      else this.#head = undefined;
    }
    for (const follower of this.#followers) {
      if (follower.resumeAt !== undefined || follower.next > follower.end) continue;
      const from = Math.max(follower.next, offset) - offset;
      const to = Math.min(follower.end + 1, this.#received) - offset;
      if (to <= from) continue;
      const part = from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
      follower.queue.push(part);
      follower.queued += part.length;
      follower.next = offset + to;
      if (follower.queued > FOLLOWER_BUFFER_BYTES) {
        // Too far behind: drop what it holds and let it read storage from there after the commit.
        follower.resumeAt = follower.next - follower.queued;
        follower.queue.length = 0;
        follower.queued = 0;
        this.#followers.delete(follower);
      }
      follower.wake?.();
    }
  }

  #wakeAll(): void {
    for (const follower of this.#followers) follower.wake?.();
  }
}
