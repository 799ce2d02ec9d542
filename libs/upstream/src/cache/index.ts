export { BLOB_FILL_JOB, blobFillLockKey, CACHE_QUEUE } from './blob-filler.js';
export { PullThroughCache } from './cache.js';
export type {
  BlobAnswer,
  BlobBytes,
  BlobFillPayload,
  BlobRequest,
  CacheJobPayload,
  ManifestAnswer,
  ManifestRequest,
  PullThroughCacheDeps,
  ReferrersAnswer,
  TagListAnswer,
} from './types.js';
