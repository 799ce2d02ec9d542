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
export { FsBlobStore, FsMetadataStore, type FsStoreOptions } from './fs/index.js';
export { isValidKey } from './key-rules.js';
export * from './keys.js';
export { withLinkCache } from './link-cache.js';
export { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
export {
  type OrphanMultipartUpload,
  openS3MultipartCleanup,
  probeCapabilities,
  S3BlobStore,
  type S3BlobStoreOptions,
  S3Bucket,
  type S3Capabilities,
  type S3ConnectionOptions,
  S3MetadataStore,
  type S3MetadataStoreOptions,
  S3MultipartCleanup,
  type StorageLogger,
} from './s3/index.js';
export * from './types.js';
export { withBlobKeyValidation, withMetadataKeyValidation } from './validating.js';
