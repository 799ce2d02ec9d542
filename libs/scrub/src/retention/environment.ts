import { type CelEnvironment, newCelEnvironment } from '@angos/auth/cel';

/**
 * What retention rules are written against, so a rule is type-checked when the configuration
 * loads. Times are CEL ints in seconds since the epoch, so `image.pushed_at > now() - days(7)`
 * compares like with like. `image.tag` is absent for an untagged manifest: rules test it with
 * `has(image.tag)`; reading it without does not type-check as null and fails at run time, which
 * keeps the manifest. `image.last_pulled_at` is 0 for a manifest never pulled (or pulled while
 * `update_pull_time` was off).
 */
export const IMAGE_SCHEMA = {
  tag: 'string',
  pushed_at: 'int',
  last_pulled_at: 'int',
} as const;

const SECONDS = { minutes: 60n, hours: 3600n, days: 86_400n } as const;

/**
 * What the functions of a rule see besides `image`: the time the decision is taken and the image's
 * rank in its namespace. cel-js hands a function its arguments only, so the frame is set around
 * each evaluation (`evaluateInFrame`); evaluation is synchronous (no function here is async), so
 * no other evaluation can run while a frame is set.
 */
export interface RuleFrame {
  /** `now()`, seconds since the epoch. */
  readonly nowSecs: bigint;
  /** How many tagged images of the namespace were pushed strictly later; undefined when untagged. */
  readonly pushRank: number | undefined;
  /** How many were pulled strictly later; undefined when untagged or never pulled. */
  readonly pullRank: number | undefined;
}

let frame: RuleFrame | undefined;

function currentFrame(): RuleFrame {
  if (frame === undefined) throw new Error('retention rule evaluated outside a retention decision');
  return frame;
}

/** Runs `evaluate` with `current` as the frame the rule functions read. */
export function evaluateInFrame<T>(current: RuleFrame, evaluate: () => T): T {
  frame = current;
  try {
    return evaluate();
  } finally {
    frame = undefined;
  }
}

/** True when the image ranks among the first `n` (ties share a rank, so all of them are in). */
function within(rank: number | undefined, n: bigint): boolean {
  return rank !== undefined && BigInt(rank) < n;
}

let shared: CelEnvironment | undefined;

/**
 * One environment for every retention rule, made by the first rule compiled: a configuration
 * without retention rules never loads cel-js.
 */
export function retentionEnvironment(): CelEnvironment {
  if (shared === undefined) {
    shared = newCelEnvironment()
      .registerVariable({ name: 'image', schema: IMAGE_SCHEMA })
      .registerFunction('now(): int', () => currentFrame().nowSecs)
      .registerFunction('days(int): int', (n: bigint) => n * SECONDS.days)
      .registerFunction('hours(int): int', (n: bigint) => n * SECONDS.hours)
      .registerFunction('minutes(int): int', (n: bigint) => n * SECONDS.minutes)
      .registerFunction('top_pushed(int): bool', (n: bigint) => within(currentFrame().pushRank, n))
      .registerFunction('top_pulled(int): bool', (n: bigint) => within(currentFrame().pullRank, n));
  }
  return shared;
}

/** Milliseconds since the epoch as a CEL int of seconds. */
export function celSeconds(ms: number): bigint {
  return BigInt(Math.floor(ms / 1000));
}
