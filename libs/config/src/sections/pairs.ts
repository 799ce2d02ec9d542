import type { Checker } from '../schema.js';

/**
 * Options that only work together (a client certificate and its key, a username and its
 * password): when one is set the other is required.
 */
export function requireBoth<T extends object>(
  value: T,
  first: keyof T & string,
  second: keyof T & string,
  at: Checker,
): void {
  const hasFirst = value[first] !== undefined;
  const hasSecond = value[second] !== undefined;
  if (hasFirst && !hasSecond) at.error(second, `required when ${first} is set`);
  if (hasSecond && !hasFirst) at.error(first, `required when ${second} is set`);
}
