/**
 * Byte sizes as the configuration writes them: `"5MiB"`, `"100GiB"`, `"5GB"`, `"100MB"`, `"512"`,
 * or a plain TOML integer. Decimal units are powers of 1000, binary (`…iB`) powers of 1024; units
 * are case-insensitive and may be separated from the number by spaces. Exact arithmetic (BigInt)
 * so `"1.5MiB"` is 1572864 and `"1.5B"` is rejected rather than rounded.
 */

const UNIT_BYTES: Readonly<Record<string, bigint>> = {
  '': 1n,
  b: 1n,
  kb: 1000n,
  mb: 1000n ** 2n,
  gb: 1000n ** 3n,
  tb: 1000n ** 4n,
  pb: 1000n ** 5n,
  kib: 1024n,
  mib: 1024n ** 2n,
  gib: 1024n ** 3n,
  tib: 1024n ** 4n,
  pib: 1024n ** 5n,
};

const SIZE_TEXT = /^\s*(\d+)(?:\.(\d+))?\s*([A-Za-z]*)\s*$/;

export const SIZE_EXPECTED = 'expected a size such as "5MiB", "100MB" or a whole number of bytes';

export type SizeResult = { value: number } | { error: string };

export function parseSize(raw: unknown): SizeResult {
  if (typeof raw === 'bigint') {
    return raw < 0n ? { error: 'must not be negative' } : { error: tooLarge() };
  }
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { error: SIZE_EXPECTED };
    if (raw < 0) return { error: 'must not be negative' };
    if (!Number.isInteger(raw)) return { error: 'must be a whole number of bytes' };
    if (raw > Number.MAX_SAFE_INTEGER) return { error: tooLarge() };
    return { value: raw };
  }
  if (typeof raw !== 'string') return { error: SIZE_EXPECTED };
  if (/^\s*-/.test(raw)) return { error: 'must not be negative' };
  const match = SIZE_TEXT.exec(raw);
  if (!match) return { error: SIZE_EXPECTED };
  const [, whole = '', fraction = '', unitText = ''] = match;
  const unit = UNIT_BYTES[unitText.toLowerCase()];
  if (unit === undefined) return { error: SIZE_EXPECTED };
  const scale = 10n ** BigInt(fraction.length);
  const numerator = (BigInt(whole) * scale + BigInt(fraction || '0')) * unit;
  if (numerator % scale !== 0n) return { error: 'must be a whole number of bytes' };
  const bytes = numerator / scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return { error: tooLarge() };
  return { value: Number(bytes) };
}

function tooLarge(): string {
  return `must be at most ${Number.MAX_SAFE_INTEGER} bytes`;
}

/** For defaults written in the reference's own notation; throws on a programming error. */
export function sizeOf(text: string): number {
  const result = parseSize(text);
  if ('error' in result) throw new Error(`invalid size literal ${text}: ${result.error}`);
  return result.value;
}

/** Renders a byte count the way an operator would write it, for messages (`5MiB`, `100MB`, `7B`). */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
    ['TB', 1000 ** 4],
    ['GB', 1000 ** 3],
    ['MB', 1000 ** 2],
    ['KB', 1000],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
