import type { Algorithm, DigestParts } from './keys.js';
import { InvalidKeyError } from './types.js';

/**
 * What every backend accepts as a storage path, checked once (by the validating
 * wrappers) so drivers can trust their input:
 * - non-empty `/`-separated segments: no leading, trailing or doubled `/`;
 * - no `.` or `..` segment, no NUL, no backslash;
 * - no segment starting with `.tmp-` (reserved for the fs driver's temp files);
 * - at most 255 bytes per segment (fs NAME_MAX) and 1024 bytes in all (S3 key limit).
 */
const MAX_SEGMENT_BYTES = 255;
const MAX_KEY_BYTES = 1024;
const SLASH = 0x2f;
const DOT = 0x2e;
const BACKSLASH = 0x5c;
const NUL = 0;
const TEMP_PREFIX = '.tmp-';

const ALGORITHMS: ReadonlySet<string> = new Set<Algorithm>(['sha256', 'sha512']);
const LOWER_HEX = /^[0-9a-f]+$/;

/** Temp files of the fs driver start with this; no valid key segment does. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

export function isValidKey(key: string): boolean {
  const length = key.length;
  if (length === 0 || length > MAX_KEY_BYTES) return false;
  let segmentStart = 0;
  let ascii = true;
  // One pass over the string: this runs on every storage call.
  for (let i = 0; i <= length; i++) {
    const c = i < length ? key.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      if (!isValidSegment(key, segmentStart, i)) return false;
      segmentStart = i + 1;
    } else if (c === NUL || c === BACKSLASH) {
      return false;
    } else if (c > 0x7f) {
      ascii = false;
    }
  }
  return ascii || hasValidByteLengths(key);
}

function isValidSegment(key: string, start: number, end: number): boolean {
  const length = end - start;
  if (length === 0 || length > MAX_SEGMENT_BYTES) return false;
  if (key.charCodeAt(start) !== DOT) return true;
  if (length === 1) return false;
  if (length === 2 && key.charCodeAt(start + 1) === DOT) return false;
  return !key.startsWith(TEMP_PREFIX, start);
}

function hasValidByteLengths(key: string): boolean {
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return false;
  return key.split('/').every((segment) => Buffer.byteLength(segment) <= MAX_SEGMENT_BYTES);
}

export function assertValidKey(key: string): void {
  if (!isValidKey(key)) throw new InvalidKeyError(key);
}

/** A list prefix may also be `''`, the root. */
export function assertValidPrefix(prefix: string): void {
  if (prefix !== '') assertValidKey(prefix);
}

/**
 * A digest must name exactly one `_blobs/<alg>/<hex>` file: a known algorithm
 * and lowercase hex (anything else could alias another key or escape the tree).
 */
export function assertValidDigest(digest: DigestParts): void {
  if (
    !ALGORITHMS.has(digest.algorithm) ||
    !LOWER_HEX.test(digest.hex) ||
    digest.hex.length > MAX_SEGMENT_BYTES
  ) {
    throw new InvalidKeyError(`${digest.algorithm}:${digest.hex}`);
  }
}

/**
 * A namespace is one or more segments, none starting with `_` (those names are
 * the layout's own, e.g. `_blobs`, `_uploads`); an upload id is one segment.
 */
export function assertValidUpload(namespace: string, id: string): void {
  if (!isValidKey(namespace) || !isValidKey(id) || id.includes('/') || hasReservedSegment(namespace)) {
    throw new InvalidKeyError(`${namespace}/_uploads/${id}`);
  }
}

function hasReservedSegment(namespace: string): boolean {
  if (namespace.charCodeAt(0) === 0x5f) return true;
  return namespace.includes('/_');
}
