import { Readable } from 'node:stream';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { OciError, parseReference } from '@angos/oci';
import { type BlobStore, MemoryBlobStore, MemoryMetadataStore } from '@angos/storage';
import { configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { createRegistry, MANIFEST_READ_LIMIT } from '../src/index.js';
import { manifestOf, putManifest, upload } from './support.js';

const CHUNK = Buffer.alloc(1024 * 1024, 1);

describe('a stored manifest', () => {
  it('is never read into memory past MANIFEST_READ_LIMIT: a larger file answers MANIFEST_UNKNOWN', async () => {
    const store = new MemoryBlobStore();
    const metadata = new MemoryMetadataStore();
    /** Once set, every read answers 1 GiB (a store that swapped a layer in); counts what it gave. */
    let swapped: { chunks: number } | undefined;
    const blobs = new Proxy(store, {
      get(target, property) {
        if (property === 'readBlob' && swapped) {
          const served = swapped;
          return async () =>
            Readable.from(
              (function* () {
                for (let chunk = 0; chunk < 1024; chunk += 1) {
                  served.chunks += 1;
                  yield CHUNK;
                }
              })(),
            );
        }
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as BlobStore;
    const config = configOf();
    const open = () =>
      createRegistry({
        blobs,
        metadata,
        locks: new MemoryLockManager(),
        config: () => config,
        logger: silentLogger,
      });
    const pushing = open();
    await upload(pushing, 'team/app', 'config');
    await upload(pushing, 'team/app', 'layer');
    await putManifest(pushing, 'team/app', 'v1', manifestOf('config', ['layer']));

    swapped = { chunks: 0 };
    // A registry that has not kept the body from the push.
    const error = await open()
      .manifests.get('team/app', parseReference('v1'))
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).kind).toBe('MANIFEST_UNKNOWN');
    const limitChunks = MANIFEST_READ_LIMIT / CHUNK.length;
    expect(swapped.chunks).toBeGreaterThan(limitChunks);
    expect(swapped.chunks).toBeLessThanOrEqual(limitChunks + 2);
  });
});
