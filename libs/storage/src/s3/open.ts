import { withDeferredWrites } from '../deferred-writes.js';
import { withLegacyBlobIndex } from '../legacy-layout.js';
import { withLinkCache } from '../link-cache.js';
import type { BlobStore, MetadataStore } from '../types.js';
import { S3BlobStore } from './blob-store.js';
import { S3Bucket } from './bucket.js';
import { resolveCapabilities } from './capabilities.js';
import { S3MetadataStore } from './metadata-store.js';
import { S3MultipartCleanup } from './multipart-cleanup.js';
import type { S3BlobStoreOptions, S3MetadataStoreOptions, StorageLogger } from './options.js';

/**
 * An S3 blob store, once a first call has shown the bucket exists and the
 * credentials work (StorageError saying which, otherwise).
 */
export async function openS3BlobStore(options: S3BlobStoreOptions): Promise<BlobStore> {
  const bucket = new S3Bucket(options);
  try {
    const store = new S3BlobStore(bucket, options);
    await store.check();
    return store;
  } catch (error) {
    bucket.destroy();
    throw error;
  }
}

/**
 * An S3 metadata store: checked like the blob store, its conditional writes
 * declared or probed, with the link cache (`link_cache_ttl`) and pull-time
 * batching (`access_time_debounce_secs`) in front.
 */
export async function openS3MetadataStore(
  options: S3MetadataStoreOptions,
  logger?: StorageLogger,
): Promise<MetadataStore> {
  const bucket = new S3Bucket(options);
  try {
    await bucket.probeAccess();
    const capabilities = await resolveCapabilities(
      bucket,
      options.capabilities,
      [options.endpoint, options.bucket, bucket.objectKey('')].join('\n'),
    );
    // A bucket may hold blob index entries of the flat layout (keys.ts).
    const store = withLegacyBlobIndex(new S3MetadataStore(bucket, capabilities));
    return withLinkCache(
      withDeferredWrites(store, options.accessTimeDebounceSecs, logger),
      options.linkCacheTtlSecs,
      { versions: options.linkCacheVersions },
    );
  } catch (error) {
    bucket.destroy();
    throw error;
  }
}

/** `scrub --multipart`: the orphan multipart uploads of an S3 blob store. */
export async function openS3MultipartCleanup(
  options: S3BlobStoreOptions,
): Promise<S3MultipartCleanup & { close(): void }> {
  const bucket = new S3Bucket(options);
  try {
    await bucket.probeAccess();
  } catch (error) {
    bucket.destroy();
    throw error;
  }
  return Object.assign(new S3MultipartCleanup(bucket), { close: () => bucket.destroy() });
}
