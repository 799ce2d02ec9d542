/** How failed runs are spaced out. */
export interface RetryPolicy {
  /** Attempt budget for envelopes that name none (default 5). */
  readonly maxAttempts: number;
  /** Delay after the first failure (default 1 s); doubled after each further one. */
  readonly baseDelayMs: number;
  /** Ceiling of the delay (default 5 min). */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 300_000 };

/**
 * The delay before the next run after `attempts` failed runs (1-based): exponential, capped, and
 * jittered over its upper half, so jobs that failed together (a peer was down) do not all come
 * back in the same instant.
 */
export function retryDelayMs(
  attempts: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(0, attempts - 1), 30);
  const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
  return Math.round(delay / 2 + random() * (delay / 2));
}
