import { whenAborted } from './delays.js';
import type { LockWork } from './types.js';

export type WorkOutcome<T> =
  | { readonly kind: 'settled'; readonly result: PromiseSettledResult<T> }
  /** `signal` aborted first; `running` settles (never rejects) once the work has stopped. */
  | { readonly kind: 'aborted'; readonly reason: unknown; readonly running: Promise<void> };

/**
 * Runs the work, and stops waiting for it as soon as `signal` aborts. JavaScript cannot stop a
 * running function: work that keeps going after the abort is tracked through `running`, so the
 * locks are handed back only once it has really stopped.
 */
export async function runCancellable<T>(work: LockWork<T>, signal: AbortSignal): Promise<WorkOutcome<T>> {
  const running = (async () => work(signal))();
  const settledWork = running.then(
    (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
    (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
  );
  const abort = whenAborted(signal);
  try {
    const first = await Promise.race([settledWork, abort.promise.then(() => undefined)]);
    if (first !== undefined) return { kind: 'settled', result: first };
    return { kind: 'aborted', reason: signal.reason, running: settledWork.then(() => undefined) };
  } finally {
    abort.dispose();
  }
}

/** The keys a caller named, each once, in the one order every holder acquires them in. */
export function acquisitionOrder(keys: readonly string[]): string[] {
  return [...new Set(keys)].sort();
}
