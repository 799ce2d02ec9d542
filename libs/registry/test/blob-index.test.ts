import { silentLogger } from '@angos/observability';
import { type DigestParts, type OciError, parseDigest } from '@angos/oci';
import { keyFor, MemoryBlobStore, MemoryMetadataStore, type MetadataStore } from '@angos/storage';
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

describe('BlobIndex in lock-free mode (S3 lock strategy: digests not locked across namespaces)', () => {
  const present = async (blobs: MemoryBlobStore) =>
    blobs.statBlob(DIGEST).then(
      () => true,
      () => false,
    );

  it('never leaves a reference to reclaimed bytes, nor bytes without a reference, when namespaces race', async () => {
    const metadata = interleaving(new MemoryMetadataStore());
    const blobs = new MemoryBlobStore();
    const [a, b] = [0, 1].map(() => new BlobIndex(metadata, blobs, silentLogger, { lockFree: true }));
    let refused = 0;
    for (let round = 0; round < 60; round++) {
      await blobs.putBlob(DIGEST, Buffer.from('bytes'));
      await a!.add(DIGEST, 'a', ['layer']);
      // Namespace a lets go of the blob while b commits the same bytes (keeping what is there) and grants them.
      await Promise.all([
        a!.remove(DIGEST, 'a', 'all'),
        (async () => {
          if (!(await present(blobs))) await blobs.putBlob(DIGEST, Buffer.from('bytes'));
          await b!.add(DIGEST, 'b', ['layer']).catch((error: unknown) => {
            expect((error as OciError).kind).toBe('BLOB_UNKNOWN');
            refused++;
          });
        })(),
      ]);
      const entry = await a!.references(DIGEST);
      expect(await present(blobs), `round ${round}: ${JSON.stringify(entry)}`).toBe(entry['b'] !== undefined);
      if (entry['b']) await b!.remove(DIGEST, 'b', 'all');
      expect(await present(blobs)).toBe(false);
    }
    expect(await metadata.list('')).toEqual([]);
    // The race is real: some rounds end with b refused (it pushes again), none with a dangling grant.
    expect(refused).toBeGreaterThan(0);
  });

  it('takes over a reclamation claim whose process died, and checks the bytes', async () => {
    const metadata = new MemoryMetadataStore();
    const blobs = new MemoryBlobStore();
    const index = new BlobIndex(metadata, blobs, silentLogger, { lockFree: true, abandonedReclaimMs: 200 });
    // A claim left behind after the bytes were deleted.
    await metadata.put(keyFor({ kind: 'blobIndex', digest: DIGEST }), JSON.stringify({ _reclaiming: [] }));
    const started = Date.now();
    await expect(index.add(DIGEST, 'ns', ['layer'])).rejects.toMatchObject({ kind: 'BLOB_UNKNOWN' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(await index.references(DIGEST)).toEqual({});
    // With the bytes back (pushed again), the reference sticks.
    await blobs.putBlob(DIGEST, Buffer.from('bytes'));
    await index.add(DIGEST, 'ns', ['layer']);
    expect(await index.references(DIGEST)).toEqual({ ns: ['layer'] });
    await index.remove(DIGEST, 'ns', 'all');
    expect(await metadata.list('')).toEqual([]);
  });

  it('makes updates wait while another process reclaims', async () => {
    const metadata = new MemoryMetadataStore();
    const blobs = new MemoryBlobStore();
    const index = new BlobIndex(metadata, blobs, silentLogger, { lockFree: true });
    await metadata.put(keyFor({ kind: 'blobIndex', digest: DIGEST }), JSON.stringify({ _reclaiming: [] }));
    let done = false;
    const adding = index.add(DIGEST, 'ns', ['ref:sha256:x']).then(() => {
      done = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(done).toBe(false);
    await metadata.delete(keyFor({ kind: 'blobIndex', digest: DIGEST })); // the reclaiming process finishes
    await adding;
    expect(await index.references(DIGEST)).toEqual({ ns: ['ref:sha256:x'] });
    await index.remove(DIGEST, 'ns', 'all');
  });
});
