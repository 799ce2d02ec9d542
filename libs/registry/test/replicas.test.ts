import { Readable } from 'node:stream';
import { parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { parseReference } from '@angos/oci';
import {
  MemoryBlobStore,
  MemoryMetadataStore,
  withBlobKeyValidation,
  withLinkCache,
  withMetadataKeyValidation,
} from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../src/index.js';
import { digestOf } from './support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('two replicas on shared storage, one with a link cache', () => {
  it('never deletes a tag another replica has moved, even while the old target is cached', async () => {
    const { config } = parseConfig(
      '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n',
    );
    // Shared storage and a shared lock, as S3 + a distributed lock strategy give several replicas.
    const metadata = new MemoryMetadataStore();
    const blobs = withBlobKeyValidation(new MemoryBlobStore());
    const locks = new MemoryLockManager();
    const common = { blobs, locks, config: () => config, logger: silentLogger };
    const cachingReplica = createRegistry({
      ...common,
      metadata: withMetadataKeyValidation(withLinkCache(metadata, 30)),
    });
    const otherReplica = createRegistry({ ...common, metadata: withMetadataKeyValidation(metadata) });

    const id = await otherReplica.uploads.start('t/app');
    await otherReplica.uploads.complete(
      't/app',
      id,
      digestOf('cfg'),
      Readable.from([Buffer.from('cfg')]),
      {},
    );
    const manifest = (nonce: string) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: `sha256:${digestOf('cfg').hex}`,
            size: 3,
          },
          layers: [],
          annotations: { nonce },
        }),
      );
    const latest = parseReference('latest');
    const first = await otherReplica.manifests.put('t/app', latest, manifest('1'), OCI_MANIFEST, []);
    // The caching replica serves the tag once: its cache now says latest → first.
    expect((await cachingReplica.manifests.resolve('t/app', latest)).digest.hex).toBe(first.digest.hex);
    const second = await otherReplica.manifests.put('t/app', latest, manifest('2'), OCI_MANIFEST, []);

    await cachingReplica.manifests.delete('t/app', { kind: 'digest', digest: first.digest });

    expect((await otherReplica.manifests.resolve('t/app', latest)).digest.hex).toBe(second.digest.hex);
  });
});
