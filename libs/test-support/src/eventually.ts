export interface EventuallyOptions {
  /** How long to keep asking; default 8 s (a loaded machine is slow, a failure should not hang). */
  readonly timeoutMs?: number;
  /** What is awaited, for the error when it never comes. */
  readonly what?: string;
  /** Pause between two checks; default 50 ms. */
  readonly intervalMs?: number;
}

/** Resolves once `check` holds; rejects when it still does not after the timeout. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  options: EventuallyOptions = {},
): Promise<void> {
  const { timeoutMs = 8000, what = 'condition', intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`${what} not met in time (${timeoutMs} ms)`);
}
