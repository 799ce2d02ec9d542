import type { ListPageOptions } from './types.js';

/** A page's `limit` is a positive integer: anything else is a caller bug. */
export function assertValidPageOptions(options: ListPageOptions): void {
  if (!Number.isSafeInteger(options.limit) || options.limit < 1) {
    throw new RangeError(`invalid listing page limit: ${options.limit}`);
  }
}

/** The page of an already sorted listing: names after `after`, at most `limit`. */
export function pageOf(sorted: readonly string[], options: ListPageOptions): string[] {
  assertValidPageOptions(options);
  const { after, limit } = options;
  let start = 0;
  if (after !== undefined) {
    // Binary search for the first name after `after`: the listing is sorted with `<`.
    let end = sorted.length;
    while (start < end) {
      const middle = (start + end) >>> 1;
      if ((sorted[middle] as string) <= after) start = middle + 1;
      else end = middle;
    }
  }
  return sorted.slice(start, start + limit);
}
