import { silentLogger } from '@angos/observability';
import { type DigestParts, parseDigest } from '@angos/oci';
import { MemoryBlobStore, MemoryMetadataStore, type MetadataStore } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { BlobIndex } from '../src/index.js';

const DIGEST: DigestParts = parseDigest(`sha256:${'a'.repeat(64)}`);

/** A metadata store whose reads yield to the event loop before returning, so concurrent updates interleave. */
function interleaving(inner: MemoryMetadataStore): MetadataStore {
  const pause = () => new Promise((resolve) => setImmediate(resolve));
  const cas = inner.conditional;
  return {
    backend: inner.backend,
    get: async (path) => {
      const value = await inner.get(path);
      await pause();
      return value;
    },
    put: (path, data) => inner.put(path, data),
    putIfAbsent: (path, data) => inner.putIfAbsent(path, data),
    delete: (path) => inner.delete(path),
    list: (prefix) => inner.list(prefix),
    deletePrefix: (prefix) => inner.deletePrefix(prefix),
    conditional: {
      getVersioned: async (path) => {
        const value = await cas.getVersioned(path);
        await pause();
        return value;
      },
      putIfVersion: (path, data, version) => cas.putIfVersion(path, data, version),
      deleteIfVersion: (path, version) => cas.deleteIfVersion!(path, version),
    },
  };
}

describe('BlobIndex with compare-and-swap', () => {
  it('loses no reference when instances that share no lock update one entry at once', async () => {
    const metadata = interleaving(new MemoryMetadataStore());
    const blobs = new MemoryBlobStore();
    // One index per "replica": nothing but the store's conditional writes serializes them.
    const replicas = Array.from({ length: 8 }, () => new BlobIndex(metadata, blobs, silentLogger));
    await Promise.all(replicas.map((index, i) => index.add(DIGEST, `ns${i}`, ['layer'])));
    const entry = await replicas[0]!.references(DIGEST);
    expect(Object.keys(entry).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `ns${i}`).sort());
    await Promise.all(replicas.slice(1).map((index, i) => index.remove(DIGEST, `ns${i + 1}`, 'all')));
    expect(await replicas[0]!.references(DIGEST)).toEqual({ ns0: ['layer'] });
  });

  it('reclaims the bytes and the entry when the last reference goes', async () => {
    const metadata = new MemoryMetadataStore();
    const blobs = new MemoryBlobStore();
    await blobs.putBlob(DIGEST, Buffer.from('bytes'));
    const index = new BlobIndex(metadata, blobs, silentLogger);
    await index.add(DIGEST, 'ns', ['layer', 'manifest']);
    expect(await index.remove(DIGEST, 'ns', ['layer'])).toEqual(['manifest']);
    expect(await blobs.statBlob(DIGEST)).toEqual({ size: 5 });
    expect(await index.remove(DIGEST, 'ns', ['manifest'])).toEqual([]);
    await expect(blobs.statBlob(DIGEST)).rejects.toThrow();
    expect(await metadata.list('')).toEqual([]);
  });
});
