import { describe, expect, it } from 'vitest';
import { isValidKey } from '../src/index.js';

describe('isValidKey', () => {
  it('accepts layout keys', () => {
    expect(isValidKey('library/ubuntu/_manifests/tags/22.04/link')).toBe(true);
    expect(isValidKey('_blobs/sha256/abc')).toBe(true);
    expect(isValidKey('ns/.hidden-but-not-temp')).toBe(true);
    expect(isValidKey('ns/..x')).toBe(true);
  });

  it('counts segment and key limits in UTF-8 bytes, not characters', () => {
    expect(isValidKey('é'.repeat(127))).toBe(true); // 254 bytes
    expect(isValidKey('é'.repeat(128))).toBe(false); // 256 bytes
    expect(isValidKey(`${'é'.repeat(100)}/`.repeat(5).slice(0, -1))).toBe(true); // 1004 bytes
    expect(isValidKey(`${'é'.repeat(100)}/`.repeat(6).slice(0, -1))).toBe(false); // 1205 bytes
  });
});
