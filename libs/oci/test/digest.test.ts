import { describe, expect, it } from 'vitest';
import {
  createDigester,
  type DigestParts,
  digestOf,
  formatDigest,
  isDigestString,
  OciError,
  parseDigest,
  tryParseDigest,
} from '../src/index.js';

// Reference values from FIPS 180-2 test vectors, not computed by the code under test.
const SHA256_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const SHA512_ABC =
  'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('parseDigest', () => {
  it.each([
    [`sha256:${SHA256_ABC}`, { algorithm: 'sha256', hex: SHA256_ABC }],
    [`sha512:${SHA512_ABC}`, { algorithm: 'sha512', hex: SHA512_ABC }],
  ])('accepts %s', (input, expected) => {
    expect(parseDigest(input)).toEqual(expected);
    expect(tryParseDigest(input)).toEqual(expected);
  });

  it.each([
    ['uppercase hex', `sha256:${SHA256_ABC.toUpperCase()}`],
    ['one uppercase hex digit', `sha256:B${SHA256_ABC.slice(1)}`],
    ['hex too short', `sha256:${SHA256_ABC.slice(1)}`],
    ['hex too long', `sha256:${SHA256_ABC}0`],
    ['sha256 length under sha512', `sha512:${SHA256_ABC}`],
    ['sha512 length under sha256', `sha256:${SHA512_ABC}`],
    ['non-hex character', `sha256:g${SHA256_ABC.slice(1)}`],
    ['unknown algorithm', `sha384:${SHA256_ABC}`],
    ['uppercase algorithm', `SHA256:${SHA256_ABC}`],
    ['missing colon', `sha256${SHA256_ABC}`],
    ['missing algorithm', `:${SHA256_ABC}`],
    ['missing hex', 'sha256:'],
    ['empty', ''],
    ['two colons', `sha256:${SHA256_ABC}:x`],
    ['surrounding whitespace', ` sha256:${SHA256_ABC}`],
    ['trailing newline', `sha256:${SHA256_ABC}\n`],
    ['a tag', 'latest'],
  ])('rejects %s with DIGEST_INVALID', (_label, input) => {
    expect(tryParseDigest(input)).toBeUndefined();
    let thrown: unknown;
    try {
      parseDigest(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(OciError);
    expect((thrown as OciError).kind).toBe('DIGEST_INVALID');
    expect((thrown as OciError).status).toBe(400);
  });

  it('bounds the echoed digest in the error detail', () => {
    const huge = `sha256:${'a'.repeat(20_000)}`;
    try {
      parseDigest(huge);
      expect.unreachable();
    } catch (error) {
      expect(JSON.stringify((error as OciError).detail).length).toBeLessThan(400);
    }
  });

  it('round-trips through formatDigest', () => {
    const digest = `sha256:${SHA256_EMPTY}`;
    expect(formatDigest(parseDigest(digest))).toBe(digest);
  });
});

describe('isDigestString', () => {
  it.each([
    `sha256:${SHA256_ABC}`,
    'sha384:abc',
    'multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8',
    'sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564',
    'blake3:AbC=_-',
    'a.b_c-d:x',
  ])('%s looks like a digest', (input) => {
    expect(isDigestString(input)).toBe(true);
  });

  it.each([
    'latest',
    'v1.0',
    ':abc',
    'sha256:',
    'SHA256:abc',
    'sha256:ab/c',
    'sha256:ab:c',
    '+sha:abc',
    'sha+:abc',
    'sha..256:abc',
    '',
  ])('%s does not look like a digest', (input) => {
    expect(isDigestString(input)).toBe(false);
  });
});

describe('digestOf and createDigester', () => {
  it('hash known vectors', () => {
    expect(digestOf('sha256', new Uint8Array())).toEqual({ algorithm: 'sha256', hex: SHA256_EMPTY });
    expect(digestOf('sha256', bytes('abc'))).toEqual({ algorithm: 'sha256', hex: SHA256_ABC });
    expect(digestOf('sha512', bytes('abc'))).toEqual({ algorithm: 'sha512', hex: SHA512_ABC });
  });

  it('streams chunks to the same digest and counts bytes', () => {
    const digester = createDigester('sha256');
    expect(digester.bytes).toBe(0);
    for (const chunk of ['a', '', 'bc']) digester.update(bytes(chunk));
    expect(digester.bytes).toBe(3);
    const expected: DigestParts = { algorithm: 'sha256', hex: SHA256_ABC };
    expect(digester.digest()).toEqual(expected);
    // Idempotent: a second call returns the same value rather than throwing.
    expect(digester.digest()).toEqual(expected);
  });

  it('streams sha512', () => {
    const digester = createDigester('sha512');
    digester.update(bytes('ab'));
    digester.update(bytes('c'));
    expect(formatDigest(digester.digest())).toBe(`sha512:${SHA512_ABC}`);
  });

  it('refuses updates after finalizing', () => {
    const digester = createDigester('sha256');
    digester.digest();
    expect(() => digester.update(bytes('x'))).toThrow();
  });

  it('digest of an empty stream is the empty digest', () => {
    expect(createDigester('sha256').digest().hex).toBe(SHA256_EMPTY);
  });
});
