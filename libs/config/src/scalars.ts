import { isIP } from 'node:net';
import { argon2HashProblem } from './argon2-hash.js';
import { arrayOf, describeChoices, refine, type Schema, scalar } from './schema.js';
import { formatSize, parseSize } from './size.js';

/** Leaf value schemas for the option types the reference uses (string, bool, u16, u64, sizes…). */

export function string(): Schema<string> {
  return scalar<string>((raw) => (typeof raw === 'string' ? { value: raw } : { error: 'expected string' }));
}

export function nonEmptyString(): Schema<string> {
  return refine(string(), (value) => (value.trim() === '' ? 'must not be empty' : undefined));
}

export function boolean(): Schema<boolean> {
  return scalar<boolean>((raw) =>
    typeof raw === 'boolean' ? { value: raw } : { error: 'expected boolean' },
  );
}

/** The integer types of the reference. u64/usize stop at 2^53-1: beyond that a JS number is inexact. */
export type IntegerKind = 'u8' | 'u16' | 'u32' | 'u64' | 'usize';

const INTEGER_MAX: Readonly<Record<IntegerKind, number>> = {
  u8: 0xff,
  u16: 0xffff,
  u32: 0xffffffff,
  u64: Number.MAX_SAFE_INTEGER,
  usize: Number.MAX_SAFE_INTEGER,
};

export interface IntegerBounds {
  /** Reject 0 with `must be greater than zero` (the reference's "non-zero" types). */
  readonly nonZero?: boolean;
  /** Reject smaller values with `must be at least <min>` (the reference's "minimum: n"). */
  readonly min?: number;
}

/**
 * Integers arrive from smol-toml (`integersAsBigInt: 'asNeeded'`) as numbers, or as BigInt when
 * they do not fit a double exactly; both are range-checked before becoming a number.
 */
export function integer(kind: IntegerKind, bounds: IntegerBounds = {}): Schema<number> {
  const max = INTEGER_MAX[kind];
  const expected = `expected integer 0..${max}`;
  return scalar<number>((raw) => {
    if (typeof raw === 'bigint') return { error: expected };
    if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw > max) return { error: expected };
    if (bounds.nonZero && raw === 0) return { error: 'must be greater than zero' };
    if (bounds.min !== undefined && raw < bounds.min) return { error: `must be at least ${bounds.min}` };
    return { value: raw };
  });
}

export function float(min: number, max: number): Schema<number> {
  const expected = `expected number ${min.toFixed(1)}..${max.toFixed(1)}`;
  return scalar<number>((raw) => {
    const value = typeof raw === 'bigint' ? Number.NaN : raw;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      return { error: expected };
    }
    return { value };
  });
}

export function oneOf<const T extends string>(values: readonly T[]): Schema<T> {
  const expected = `expected ${describeChoices(values)}`;
  return scalar<T>((raw) =>
    typeof raw === 'string' && (values as readonly string[]).includes(raw)
      ? { value: raw as T }
      : { error: expected },
  );
}

export interface SizeBounds {
  readonly nonZero?: boolean;
  readonly min?: number;
  readonly max?: number;
}

/** A byte size (`"5MiB"`, `"5GB"`, `12345`), parsed to a number of bytes. */
export function size(bounds: SizeBounds = {}): Schema<number> {
  return scalar<number>((raw) => {
    const result = parseSize(raw);
    if ('error' in result) return result;
    const bytes = result.value;
    if (bounds.nonZero && bytes === 0) return { error: 'must be greater than zero' };
    if (bounds.min !== undefined && bytes < bounds.min) {
      return { error: `must be at least ${formatSize(bounds.min)}` };
    }
    if (bounds.max !== undefined && bytes > bounds.max) {
      return { error: `must be at most ${formatSize(bounds.max)}` };
    }
    return { value: bytes };
  });
}

/** An absolute URL whose scheme is one of `protocols` (given without the colon). */
export function url(protocols: readonly string[]): Schema<string> {
  const schemes = protocols.join(' or ');
  return refine(string(), (value) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return `expected ${schemes} URL`;
    }
    if (!protocols.includes(parsed.protocol.slice(0, -1))) return `expected ${schemes} URL`;
    if (parsed.hostname === '' && parsed.protocol !== 'unix:') return 'URL has no host';
    return undefined;
  });
}

export const httpUrl = (): Schema<string> => url(['http', 'https']);

/** Hosts whose plain-HTTP traffic never leaves the machine. */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

/**
 * An `https:` URL, or `http:` on a loopback host only: where a man in the middle could forge
 * what is fetched (OIDC issuers and keys), plain HTTP is a configuration error.
 */
export function secureUrl(): Schema<string> {
  return refine(httpUrl(), (value) => {
    const parsed = new URL(value);
    if (parsed.protocol === 'https:' || LOOPBACK_HOST.test(parsed.hostname)) return undefined;
    return 'expected https URL (http only on a loopback address)';
  });
}
export const redisUrl = (): Schema<string> => url(['redis', 'rediss']);

/**
 * A regular expression, compiled now so a typo fails the load with its location instead of at
 * the first request. Compiled the way consumers compile it: `new RegExp(pattern)`, no flags.
 */
export function regex(): Schema<string> {
  return refine(string(), (pattern) => {
    try {
      new RegExp(pattern);
      return undefined;
    } catch (error) {
      return `invalid regex: ${(error as Error).message}`;
    }
  });
}

export function stringList(): Schema<string[]> {
  return arrayOf(string(), { expected: 'expected array of strings' });
}

export function regexList(): Schema<string[]> {
  return arrayOf(regex(), { expected: 'expected array of regex strings' });
}

/** An Argon2 PHC hash string (see `argon2-hash.ts`). */
export function argon2Hash(): Schema<string> {
  return refine(string(), (hash) => {
    const problem = argon2HashProblem(hash);
    return problem === undefined
      ? undefined
      : `invalid Argon2 hash: ${problem}; generate one with \`angos argon\``;
  });
}

/** RFC 9110 field-name token characters. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function headerName(): Schema<string> {
  return refine(string(), (name) => (HEADER_NAME.test(name) ? undefined : 'invalid HTTP header name'));
}

/** RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens. */
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A host name or IP address to bind or connect to. */
export function hostOrAddress(): Schema<string> {
  return refine(string(), (value) => {
    if (isIP(value) !== 0 || HOSTNAME.test(value)) return undefined;
    return 'expected an IP address or host name';
  });
}
