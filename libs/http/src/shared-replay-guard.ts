import { createHash } from 'node:crypto';
import { type Admission, DEFAULT_NONCE_CAPACITY, SIGNATURE_WINDOW_MS } from './replay-guard.js';

/**
 * The replay guard of a service whose serving threads (`[server] workers`) share one nonce memory:
 * a request the gateway signed is admitted once by the whole service, whichever thread the kernel
 * hands each copy's connection to. A guard per thread would let a captured request be replayed
 * once on every other thread.
 *
 * The memory is a SharedArrayBuffer every thread maps: three generations of an open-addressing
 * table of 64-bit nonce hashes, each generation filled for one signature window and kept for two
 * more, so a nonce is remembered as long as its timestamp can pass the window check (a timestamp
 * may lie up to one window ahead of the clock). Every admission runs under one spinlock: a check
 * and an insert are a few memory reads, far below the cost of verifying the signature before it.
 * When a generation is full before its window ends, the oldest is dropped early and requests not
 * newer than anything it held are refused from then on, as ReplayGuard does at its capacity: only
 * requests delayed longer than the memory covers pay for an overload, never security. Two nonces
 * whose hashes collide (2^-64 per pair) refuse the second: the safe side.
 */

const GENERATIONS = 3;
/** Slots per generation: a power of two, at most half of them filled. */
const SLOTS = 2 ** Math.ceil(Math.log2(DEFAULT_NONCE_CAPACITY * 2));
const MAX_FILLED = SLOTS / 2;

// Int32 header cells.
const LOCK = 0;
const CURRENT = 1;
const FILLED = 2; // + generation
const HEADER_INTS = 8;
// Float64 cells after the header: each generation's start and newest timestamp, and the floor.
const STARTED = 0; // + generation
const NEWEST = GENERATIONS; // + generation
const FLOOR = 2 * GENERATIONS;
const FLOATS = 2 * GENERATIONS + 1;

const TABLE_OFFSET = HEADER_INTS * 4 + FLOATS * 8;
/** Bytes of the shared nonce memory: hand the same buffer to every serving thread. */
export const SHARED_NONCE_MEMORY_BYTES = TABLE_OFFSET + GENERATIONS * SLOTS * 2 * 4;

export interface SharedReplayGuardOptions {
  readonly windowMs?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
}

export class SharedReplayGuard {
  readonly #ints: Int32Array;
  readonly #floats: Float64Array;
  readonly #tables: Int32Array;
  readonly #windowMs: number;
  readonly #now: () => number;

  /** `buffer`: SHARED_NONCE_MEMORY_BYTES, zeroed when created and shared by every thread. */
  constructor(buffer: SharedArrayBuffer, options: SharedReplayGuardOptions = {}) {
    if (buffer.byteLength !== SHARED_NONCE_MEMORY_BYTES) {
      throw new Error(`shared nonce memory takes ${SHARED_NONCE_MEMORY_BYTES} bytes`);
    }
    this.#ints = new Int32Array(buffer, 0, HEADER_INTS);
    this.#floats = new Float64Array(buffer, HEADER_INTS * 4, FLOATS);
    this.#tables = new Int32Array(buffer, TABLE_OFFSET);
    this.#windowMs = options.windowMs ?? SIGNATURE_WINDOW_MS;
    this.#now = options.now ?? (() => Date.now());
  }

  /** Checks a correctly signed request's timestamp and nonce, and remembers the nonce if admitted. */
  admit(timestamp: number, nonce: string): Admission {
    const now = this.#now();
    if (Math.abs(now - timestamp) > this.#windowMs) return 'outside-window';
    const digest = createHash('sha256').update(nonce).digest();
    // Zero marks an empty slot: a hash whose high word is zero borrows a bit.
    const high = digest.readInt32LE(0) || 1;
    const low = digest.readInt32LE(4);
    this.#lock();
    try {
      this.#rotate(now);
      if (timestamp <= this.#floats[FLOOR]!) return 'outside-window';
      for (let generation = 0; generation < GENERATIONS; generation++) {
        if (this.#find(generation, high, low) !== undefined) return 'replayed';
      }
      const current = this.#ints[CURRENT]!;
      this.#insert(current, high, low);
      if (timestamp > this.#floats[NEWEST + current]!) this.#floats[NEWEST + current] = timestamp;
      return 'ok';
    } finally {
      this.#unlock();
    }
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#ints, LOCK, 0, 1) !== 0) {
      // Held for a few memory reads by another thread: wait a moment for it.
      Atomics.wait(this.#ints, LOCK, 1, 1);
    }
  }

  #unlock(): void {
    Atomics.store(this.#ints, LOCK, 0);
    Atomics.notify(this.#ints, LOCK, 1);
  }

  /** Starts a new generation once the current one has run a window, or filled up. */
  #rotate(now: number): void {
    const current = this.#ints[CURRENT]!;
    const started = this.#floats[STARTED + current]!;
    if (started === 0) {
      this.#floats[STARTED + current] = now;
      return;
    }
    if (now - started < this.#windowMs && this.#ints[FILLED + current]! < MAX_FILLED) return;
    const next = (current + 1) % GENERATIONS;
    // The generation reused is the oldest: anything it held no longer passes the window, unless
    // it is dropped early (full); either way nothing not newer than it may be admitted again.
    const dropped = this.#floats[NEWEST + next]!;
    if (dropped > this.#floats[FLOOR]!) this.#floats[FLOOR] = dropped;
    this.#tables.fill(0, next * SLOTS * 2, (next + 1) * SLOTS * 2);
    this.#ints[FILLED + next] = 0;
    this.#floats[NEWEST + next] = Number.NEGATIVE_INFINITY;
    this.#floats[STARTED + next] = now;
    this.#ints[CURRENT] = next;
  }

  /** The slot holding the hash in `generation`, if any (linear probing from its low word). */
  #find(generation: number, high: number, low: number): number | undefined {
    const base = generation * SLOTS;
    for (let probe = 0; probe < SLOTS; probe++) {
      const slot = base + ((low + probe) & (SLOTS - 1));
      const seen = this.#tables[slot * 2]!;
      if (seen === 0) return undefined;
      if (seen === high && this.#tables[slot * 2 + 1] === low) return slot;
    }
    return undefined;
  }

  #insert(generation: number, high: number, low: number): void {
    const base = generation * SLOTS;
    for (let probe = 0; ; probe++) {
      const slot = base + ((low + probe) & (SLOTS - 1));
      if (this.#tables[slot * 2] !== 0) continue;
      this.#tables[slot * 2] = high;
      this.#tables[slot * 2 + 1] = low;
      this.#ints[FILLED + generation] = this.#ints[FILLED + generation]! + 1;
      return;
    }
  }
}
