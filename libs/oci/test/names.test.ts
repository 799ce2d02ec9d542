import { describe, expect, it } from 'vitest';
import {
  isValidNamespace,
  isValidTag,
  OciError,
  parseLookupReference,
  parseReference,
} from '../src/index.js';

const HEX = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

function errorOf(run: () => unknown): OciError {
  try {
    run();
  } catch (error) {
    if (error instanceof OciError) return error;
    throw error;
  }
  throw new Error('expected an OciError');
}

describe('isValidNamespace', () => {
  it.each([
    'a',
    'library/ubuntu',
    'a/b/c/d/e',
    'my-org/my_repo',
    'a__b',
    'a--b',
    'a---b',
    'a.b',
    'a1/2b/3c',
    'blobs',
    'a/blobs/manifests/tags',
    'x'.repeat(255),
    `${'a'.repeat(127)}/${'b'.repeat(127)}`,
  ])('accepts %s', (name) => {
    expect(isValidNamespace(name)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['uppercase', 'Library/ubuntu'],
    ['uppercase component', 'library/Ubuntu'],
    ['dot-dot', '..'],
    ['dot-dot component', 'a/../b'],
    ['dot component', 'a/./b'],
    ['percent-encoded dot-dot', '%2e%2e'],
    ['percent-encoded slash', 'a%2Fb'],
    ['leading slash', '/a'],
    ['trailing slash', 'a/'],
    ['double slash', 'a//b'],
    ['leading separator', '-a'],
    ['trailing separator', 'a-'],
    ['trailing dot', 'a.'],
    ['triple underscore', 'a___b'],
    ['dot then dash', 'a.-b'],
    ['double dot', 'a..b'],
    ['256 characters', 'x'.repeat(256)],
    ['256 characters with slashes', `${'a'.repeat(128)}/${'b'.repeat(127)}`],
    ['leading underscore (reserved for storage)', '_blobs'],
    ['space', 'a b'],
    ['NUL', 'a\u0000b'],
    ['trailing newline', 'a\n'],
    ['colon', 'a:b'],
    ['unicode', 'ünï'],
  ])('rejects %s', (_label, name) => {
    expect(isValidNamespace(name)).toBe(false);
  });

  it('answers quickly on a long adversarial name', () => {
    const started = performance.now();
    expect(isValidNamespace(`${'a-'.repeat(8000)}!`)).toBe(false);
    expect(isValidNamespace(`a${'-'.repeat(200)}!`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(100);
  });
});

describe('isValidTag', () => {
  it.each(['latest', 'v1.0.0', '_underscore', '1', 'A', 'a-b_c.d', 'x'.repeat(128)])('accepts %s', (tag) => {
    expect(isValidTag(tag)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['129 characters', 'x'.repeat(129)],
    ['leading dot', '.hidden'],
    ['leading dash', '-a'],
    ['slash', 'a/b'],
    ['colon', 'a:b'],
    ['at sign', 'a@b'],
    ['plus', 'a+b'],
    ['space', 'a b'],
    ['trailing newline', 'latest\n'],
    ['percent', '%2e'],
  ])('rejects %s', (_label, tag) => {
    expect(isValidTag(tag)).toBe(false);
  });
});

describe('parseReference', () => {
  it('parses a tag', () => {
    expect(parseReference('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    expect(parseReference('x'.repeat(128))).toEqual({ kind: 'tag', tag: 'x'.repeat(128) });
  });

  it('parses a digest', () => {
    expect(parseReference(`sha256:${HEX}`)).toEqual({
      kind: 'digest',
      digest: { algorithm: 'sha256', hex: HEX },
    });
  });

  it.each([
    ['unsupported algorithm', `sha384:${HEX}`],
    ['uppercase hex', `sha256:${HEX.toUpperCase()}`],
    ['short hex', 'sha256:abc'],
    ['empty hex', 'sha256:'],
    ['colon with junk', 'a:b/c'],
    ['leading colon', ':latest'],
  ])('rejects a bad digest (%s) with DIGEST_INVALID', (_label, ref) => {
    expect(errorOf(() => parseReference(ref)).kind).toBe('DIGEST_INVALID');
  });

  it.each([
    ['empty', ''],
    ['129 characters', 'x'.repeat(129)],
    ['leading dot', '.x'],
    ['slash', 'a/b'],
    ['percent-encoded', '%2e%2e'],
  ])('rejects a bad tag (%s) with TAG_INVALID', (_label, ref) => {
    const error = errorOf(() => parseReference(ref));
    expect(error.kind).toBe('TAG_INVALID');
    expect(error.status).toBe(400);
  });
});

describe('parseLookupReference', () => {
  it('parses tags and digests as parseReference does', () => {
    expect(parseLookupReference('latest')).toEqual({ kind: 'tag', tag: 'latest' });
    expect(parseLookupReference(`sha256:${HEX}`)).toEqual({
      kind: 'digest',
      digest: { algorithm: 'sha256', hex: HEX },
    });
  });

  it.each([
    ['the conformance suite', '.INVALID_MANIFEST_NAME'],
    ['empty', ''],
    ['129 characters', 'x'.repeat(129)],
    ['slash', 'a/b'],
  ])('answers MANIFEST_UNKNOWN (404) for a name no push could create (%s)', (_label, ref) => {
    const error = errorOf(() => parseLookupReference(ref));
    expect(error.kind).toBe('MANIFEST_UNKNOWN');
    expect(error.status).toBe(404);
  });

  it('still rejects a bad digest with DIGEST_INVALID', () => {
    expect(errorOf(() => parseLookupReference('sha256:abc')).kind).toBe('DIGEST_INVALID');
  });
});
