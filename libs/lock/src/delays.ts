import { setTimeout as sleepFor } from 'node:timers/promises';

/** The ceiling of the Redis backoff: retries never wait more than this (plus jitter). */
export const MAX_BACKOFF_MS = 1000;

/**
 * Redis retry delays: `retry_delay_ms` doubled per retry, capped at 1 s, plus up to half again
 * of random jitter so instances that collided once do not collide again in lockstep.
 */
export function exponentialBackoff(initialMs: number): (retry: number) => number {
  return (retry) => {
    const base = Math.min(initialMs * 2 ** Math.min(retry, 30), MAX_BACKOFF_MS);
    return base + Math.random() * (base / 2);
  };
}

/** S3 retry delays: `retry_delay_ms`, jittered between half and one and a half times it. */
export function jitteredDelay(delayMs: number): (retry: number) => number {
  return () => delayMs * (0.5 + Math.random());
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await sleepFor(ms, undefined, signal ? { signal } : undefined).catch((error: unknown) => {
    throw signal?.aborted ? signal.reason : error;
  });
}

/** Resolves when `signal` aborts; `dispose()` drops the listener when no longer needed. */
export function whenAborted(signal: AbortSignal): { promise: Promise<void>; dispose(): void } {
  let onAbort: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** `promise`, unless `signal` aborts first: then rejects with the abort reason (the promise runs on). */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  const abort = whenAborted(signal);
  try {
    return await Promise.race([
      promise,
      abort.promise.then(() => {
        throw signal.reason;
      }),
    ]);
  } finally {
    abort.dispose();
  }
}
