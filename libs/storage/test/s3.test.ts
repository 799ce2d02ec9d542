import { describe, expect } from 'vitest';
import {
  describeBlobStoreContract,
  describeLegacyLayoutContract,
  describeMetadataStoreContract,
} from '../src/testing/contract.js';
import {
  blobOptions,
  freshPrefix,
  leftovers,
  MiB,
  metadataOptions,
  onFreshPrefix,
  openBlobs,
  openMetadata,
  rawBucket,
  s3,
  wipe,
} from './s3-helpers.js';

// The same contract as fs and memory, against a real S3 server (Ceph RGW).
describe.skipIf(!s3)('S3 driver contract', () => {
  describeMetadataStoreContract(
    's3 (probed capabilities, link cache, deferred writes)',
    onFreshPrefix((keyPrefix) => openMetadata(metadataOptions(keyPrefix))),
  );
  // Each upload mode: the contract's 64 MiB chunked append goes through it.
  describeBlobStoreContract(
    's3 (non-uniform, 10 MiB parts coalesced from 5 MiB sub-parts, multipart copy above 16 MiB)',
    onFreshPrefix((keyPrefix) =>
      openBlobs(
        blobOptions(keyPrefix, {
          multipartPartSize: 10 * MiB,
          multipartCopyThreshold: 16 * MiB,
          multipartCopyChunkSize: 5 * MiB,
          multipartCopyJobs: 3,
        }),
      ),
    ),
  );
  // A bucket an older registry filled, in the flat layout; conditional writes as RGW probes them.
  describeLegacyLayoutContract('s3', async () => {
    const keyPrefix = freshPrefix();
    const raw = rawBucket(keyPrefix);
    const blobs = await openBlobs(blobOptions(keyPrefix));
    const metadata = await openMetadata(metadataOptions(keyPrefix));
    return {
      store: {
        blobs,
        metadata,
        writeRaw: (path, data) => raw.put(path, Buffer.from(data)).then(() => undefined),
        existsRaw: async (path) => (await raw.head(path)) !== undefined,
      },
      async cleanup() {
        await metadata.close?.();
        await blobs.close?.();
        raw.destroy();
        try {
          expect(await leftovers(keyPrefix), 'objects or multipart uploads left in the bucket').toEqual([]);
        } finally {
          await wipe(keyPrefix);
        }
      },
    };
  });
  describeBlobStoreContract(
    's3 (non-uniform, plain 5 MiB parts)',
    onFreshPrefix((keyPrefix) => openBlobs(blobOptions(keyPrefix, { multipartPartSize: 5 * MiB }))),
  );
  describeBlobStoreContract(
    's3 (uniform 6 MiB parts)',
    onFreshPrefix((keyPrefix) =>
      openBlobs(blobOptions(keyPrefix, { multipartPartSize: 6 * MiB, multipartUniformParts: true })),
    ),
  );
});
