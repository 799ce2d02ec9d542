/** S3's multipart limits. */
export const MiB = 1024 * 1024;
/** Every part but the last must be at least this large. */
export const MIN_PART_SIZE = 5 * MiB;
/** No part (uploaded or copied) may be larger. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;
/** CopyObject copies at most this much; larger objects need a multipart copy. */
export const MAX_COPY_OBJECT_SIZE = 5 * 1000 * 1000 * 1000;

/** An inclusive byte range of an object. */
export interface Range {
  readonly start: number;
  readonly end: number;
}

/**
 * `length` bytes from `start` cut into the fewest ranges of at most `maxSize`,
 * as even as possible: when `length` is at least the minimum part size, so is
 * every range, and any of them may be a non-final part.
 */
export function evenRanges(start: number, length: number, maxSize: number): Range[] {
  const count = Math.max(1, Math.ceil(length / maxSize));
  const ranges: Range[] = [];
  let at = start;
  for (let i = 0; i < count; i++) {
    const size = Math.floor(length / count) + (i < length % count ? 1 : 0);
    ranges.push({ start: at, end: at + size - 1 });
    at += size;
  }
  return ranges;
}

/** `length` bytes from `start` cut into ranges of exactly `size`, the last one shorter. */
export function fixedRanges(start: number, length: number, size: number): Range[] {
  const ranges: Range[] = [];
  for (let at = start; at < start + length; at += size) {
    ranges.push({ start: at, end: Math.min(at + size, start + length) - 1 });
  }
  return ranges;
}

export function rangeSize(range: Range): number {
  return range.end - range.start + 1;
}
