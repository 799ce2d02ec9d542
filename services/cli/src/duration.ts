import { CliError } from './errors.js';

/** `500ms`, `30s`, `1h`, `2d`, or several at once (`1h30m`). */
const DURATION = /^(?:\d+(?:ms|[smhd]))+$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in a flag's `<duration>`; a CliError naming the flag otherwise. */
export function parseDurationMs(flag: string, text: string): number {
  if (!DURATION.test(text)) {
    throw new CliError([`--${flag}: invalid duration "${text}" (expected e.g. 500ms, 30m, 1h, 2d)`]);
  }
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|[smhd])/g)) ms += Number(amount) * UNIT_MS[unit!]!;
  return ms;
}
