import { describe, expect, it } from 'vitest';
import { keyFor, legacyKeyFor, legacyPathOf } from '../src/index.js';

const HEX = `ab${'0'.repeat(62)}`;
const digest = { algorithm: 'sha256', hex: HEX } as const;

describe('blob keys', () => {
  it('fan out by the first two hex characters, as distribution’s do', () => {
    expect(keyFor({ kind: 'blob', digest })).toBe(`_blobs/sha256/ab/${HEX}`);
    expect(keyFor({ kind: 'blobIndex', digest })).toBe(`_blob_index/sha256/ab/${HEX}`);
  });

  it('know where the flat layout kept them, from the key or from its path', () => {
    expect(legacyKeyFor({ kind: 'blob', digest })).toBe(`_blobs/sha256/${HEX}`);
    expect(legacyKeyFor({ kind: 'blobIndex', digest })).toBe(`_blob_index/sha256/${HEX}`);
    expect(legacyPathOf(keyFor({ kind: 'blob', digest }))).toBe(`_blobs/sha256/${HEX}`);
    expect(legacyPathOf(keyFor({ kind: 'blobIndex', digest }))).toBe(`_blob_index/sha256/${HEX}`);
  });

  it('leave every other path alone', () => {
    for (const path of [
      `_blob_index/sha256/${HEX}`,
      `_blob_index/sha256/cd/${HEX}`,
      `_blob_index/md5/ab/${HEX}`,
      `ns/_blob_index/sha256/ab/${HEX}`,
      keyFor({ kind: 'layerLink', namespace: 'ns', digest }),
      keyFor({ kind: 'tagLink', namespace: 'ns', tag: 'ab' }),
    ]) {
      expect(legacyPathOf(path), path).toBeUndefined();
    }
  });
});
