import { describe } from 'vitest';
import { describeBlobStoreContract, describeMetadataStoreContract } from '../src/testing/contract.js';
import {
  blobOptions,
  MiB,
  metadataOptions,
  onFreshPrefix,
  openBlobs,
  openMetadata,
  s3,
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
