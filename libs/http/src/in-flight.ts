/**
 * How many requests a service handles at once, against `global.max_concurrent_requests`. One
 * process counts in a variable; the serving threads of one service (`[server] workers`) count in
 * one shared cell, so the limit stays the service's, not each thread's.
 */
export interface InFlightCounter {
  /** Counts one more request when fewer than `max` are in flight; false (nothing counted) otherwise. */
  tryEnter(max: number): boolean;
  leave(): void;
  current(): number;
}

/** The counter of one thread. */
export function localInFlightCounter(): InFlightCounter {
  let inFlight = 0;
  return {
    tryEnter(max) {
      if (inFlight >= max) return false;
      inFlight += 1;
      return true;
    },
    leave() {
      inFlight -= 1;
    },
    current: () => inFlight,
  };
}

/** Bytes of the shared cell sharedInFlightCounter counts in. */
export const IN_FLIGHT_COUNTER_BYTES = Int32Array.BYTES_PER_ELEMENT;

/**
 * A counter in `buffer` (IN_FLIGHT_COUNTER_BYTES, shared by every serving thread): a
 * compare-and-swap takes a slot only while the count is below the limit, so two threads never
 * both take the last one.
 */
export function sharedInFlightCounter(buffer: SharedArrayBuffer): InFlightCounter {
  const cell = new Int32Array(buffer, 0, 1);
  return {
    tryEnter(max) {
      for (;;) {
        const seen = Atomics.load(cell, 0);
        if (seen >= max) return false;
        if (Atomics.compareExchange(cell, 0, seen, seen + 1) === seen) return true;
      }
    },
    leave() {
      Atomics.sub(cell, 0, 1);
    },
    current: () => Atomics.load(cell, 0),
  };
}
