export { S3BlobStore } from './blob-store.js';
export { S3Bucket } from './bucket.js';
export { probeCapabilities } from './capabilities.js';
export { S3MetadataStore } from './metadata-store.js';
export { type OrphanMultipartUpload, S3MultipartCleanup } from './multipart-cleanup.js';
export { openS3BlobStore, openS3MetadataStore, openS3MultipartCleanup } from './open.js';
export type {
  S3BlobStoreOptions,
  S3Capabilities,
  S3ConnectionOptions,
  S3MetadataStoreOptions,
  StorageLogger,
} from './options.js';
