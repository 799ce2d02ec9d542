/** Inclusive byte range, as HTTP uses. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

// Digits only, and few enough that Number() is exact: longer runs are not safe integers anyway.
const DIGITS = /^[0-9]{1,16}$/;

function toSafeInteger(digits: string | undefined): number | undefined {
  if (digits === undefined || !DIGITS.test(digits)) return undefined;
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The Range header of a blob GET, against a blob of `size` bytes. Supports one
 * range: `bytes=a-b`, `bytes=a-`, `bytes=-n`. Multiple ranges and malformed
 * values give undefined: RFC 9110 lets a server ignore Range and send the whole
 * blob. A range that starts at or beyond the end (or a zero suffix, or any
 * range of an empty blob) is 'unsatisfiable' (416). An end beyond the blob is
 * clamped to its last byte.
 */
export function parseRangeHeader(value: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$/i.exec(value);
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;

  if (first === '') {
    // Suffix range: the last n bytes.
    const suffix = toSafeInteger(last);
    if (suffix === undefined) return undefined;
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }

  const start = toSafeInteger(first);
  if (start === undefined) return undefined;
  let end = size - 1;
  if (last !== '') {
    const requested = toSafeInteger(last);
    if (requested === undefined || requested < start) return undefined;
    end = Math.min(requested, size - 1);
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/**
 * The Content-Range of an upload PATCH: `<start>-<end>` as the distribution-spec
 * writes it, or the RFC 9110 form `bytes <start>-<end>/<total|*>`. Undefined when
 * malformed, when end < start, or when a total is given that the range exceeds.
 */
export function parseContentRange(value: string): ByteRange | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  const bare = /^([0-9]+)-([0-9]+)$/.exec(trimmed);
  const full = bare === null ? /^bytes ([0-9]+)-([0-9]+)\/([0-9]+|\*)$/i.exec(trimmed) : null;
  const match = bare ?? full;
  if (match === null) return undefined;

  const start = toSafeInteger(match[1]);
  const end = toSafeInteger(match[2]);
  if (start === undefined || end === undefined || end < start) return undefined;
  const total = match[3];
  if (total !== undefined && total !== '*') {
    const length = toSafeInteger(total);
    if (length === undefined || end >= length) return undefined;
  }
  return { start, end };
}
