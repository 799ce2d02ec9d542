import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createStores, InvalidKeyError } from '../src/index.js';

describe('createStores', () => {
  it('builds each store from its own backend, with key validation', async () => {
    const rootDir = await mkdtemp(join(tmpdir(), 'angos-storage-factory-'));
    try {
      const { blobs, metadata } = createStores({
        blob: { kind: 'fs', rootDir, syncToDisk: false },
        metadata: { kind: 'memory' },
      });
      expect(blobs.backend).toBe('fs');
      expect(metadata.backend).toBe('memory');
      await expect(metadata.put('../escape', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(blobs.createUpload('../escape', 'id')).rejects.toBeInstanceOf(InvalidKeyError);
    } finally {
      await rm(rootDir, { recursive: true, force: true });
    }
  });
});
