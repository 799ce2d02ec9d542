/**
 * How far a signed request's timestamp may be from registry-api's clock, either way. It bounds how
 * long a captured request can be replayed (and how long its nonce must be remembered), while
 * leaving room for clock drift between the gateway and registry-api (kept in step by NTP) and for
 * a request waiting for a free upstream connection. Thirty seconds is well above NTP's error and
 * well below anything an attacker would find useful.
 */
export const SIGNATURE_WINDOW_MS = 30_000;

/**
 * Nonces remembered at most. Only correctly signed requests are remembered, so only the gateway's
 * own traffic fills it: 100,000 nonces (about 10 MiB) cover 3,000 requests a second for the whole
 * window. Beyond that, see ReplayGuard.admit.
 */
export const DEFAULT_NONCE_CAPACITY = 100_000;

/**
 * A nonce cut out of a header is a slice that keeps the whole header alive (and a generated one a
 * chain of pieces): a copy keeps an entry near 90 bytes instead of several hundred.
 */
function ownCopy(nonce: string): string {
  return Buffer.from(nonce, 'latin1').toString('latin1');
}

export type Admission = 'ok' | 'outside-window' | 'replayed';

export interface ReplayGuardOptions {
  readonly windowMs?: number;
  readonly capacity?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
}

/**
 * Refuses a signed request whose timestamp is outside the window, or whose nonce was seen within
 * it. Memory is bounded: nonces are forgotten once their timestamp leaves the window, and when the
 * capacity is reached the oldest is dropped and every request not newer than it is refused from
 * then on, so that dropping a nonce can never let its request be replayed. Only requests that wait
 * longer than the time the capacity covers pay for an overload, never security.
 */
export class ReplayGuard {
  readonly #windowMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  /** Nonce to timestamp, in the order they arrived. */
  readonly #seen = new Map<string, number>();
  /** The newest timestamp of a nonce dropped before it left the window. */
  #floor = Number.NEGATIVE_INFINITY;

  constructor(options: ReplayGuardOptions = {}) {
    this.#windowMs = options.windowMs ?? SIGNATURE_WINDOW_MS;
    this.#capacity = options.capacity ?? DEFAULT_NONCE_CAPACITY;
    // Looked up on each call, so a clock swapped in later (a test's fake Date) is the one read.
    this.#now = options.now ?? (() => Date.now());
  }

  /** Checks a correctly signed request's timestamp and nonce, and remembers the nonce if admitted. */
  admit(timestamp: number, nonce: string): Admission {
    const now = this.#now();
    if (Math.abs(now - timestamp) > this.#windowMs || timestamp <= this.#floor) return 'outside-window';
    this.#forgetExpired(now);
    if (this.#seen.has(nonce)) return 'replayed';
    if (this.#seen.size >= this.#capacity) this.#dropOldest();
    this.#seen.set(ownCopy(nonce), timestamp);
    return 'ok';
  }

  /** Nonces remembered now (for tests and metrics). */
  get size(): number {
    return this.#seen.size;
  }

  /**
   * Forgets nonces whose request would now be refused by the window anyway. Arrival order is close
   * to timestamp order, so this stops at the first one still inside: an older one behind it only
   * stays a little longer.
   */
  #forgetExpired(now: number): void {
    for (const [nonce, timestamp] of this.#seen) {
      if (now - timestamp <= this.#windowMs) return;
      this.#seen.delete(nonce);
    }
  }

  #dropOldest(): void {
    const oldest = this.#seen.entries().next();
    if (oldest.done === true) return;
    const [nonce, timestamp] = oldest.value;
    this.#seen.delete(nonce);
    if (timestamp > this.#floor) this.#floor = timestamp;
  }
}
