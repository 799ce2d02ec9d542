export { withDeferredWrites } from './deferred-writes.js';
export {
  type BackendOptions,
  type BlobBackendOptions,
  createBlobStore,
  createMetadataStore,
  createStores,
  type FsBackendOptions,
  type MemoryBackendOptions,
  type MetadataBackendOptions,
  type OpenedStores,
  type OpenStoresOptions,
  openBlobStore,
  openMetadataStore,
  openStores,
  type S3BlobBackendOptions,
  type S3MetadataBackendOptions,
  type Stores,
  type StoresOptions,
} from './factory.js';
export { FsBlobStore, FsMetadataStore, FsRoot, type FsStoreOptions } from './fs/index.js';
export { instrumentBlobStore, instrumentMetadataStore, STORAGE_OPERATION_BUCKETS } from './instrumented.js';
export { isTempName, isValidKey } from './key-rules.js';
export * from './keys.js';
export { withLegacyBlobIndex } from './legacy-layout.js';
export { withLinkCache } from './link-cache.js';
export { LinkCacheVersions } from './link-cache-versions.js';
export { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
// The S3 driver's code lives behind `@angos/storage/s3`: the AWS SDK costs ~20 MiB of memory, so
// it loads only when S3 is configured (openBlobStore/openMetadataStore import it on demand).
export type {
  OrphanMultipartUpload,
  S3BlobStoreOptions,
  S3Capabilities,
  S3ConnectionOptions,
  S3MetadataStoreOptions,
  StorageLogger,
} from './s3/index.js';
export { blobCopyStream, markChunksUnshared, passesChunksOf } from './streaming.js';
export * from './types.js';
export { withBlobKeyValidation, withMetadataKeyValidation } from './validating.js';
