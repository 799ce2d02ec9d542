import type { LinkCacheVersions } from '../link-cache-versions.js';
/**
 * What the S3 drivers are built from: the `[blob_store.s3]` / `[metadata_store.s3]`
 * options of the configuration reference, in bytes and seconds.
 */

/** Connection and retry options shared by both stores. */
export interface S3ConnectionOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Prepended to every key (`key_prefix`); a trailing `/` is implied. */
  readonly keyPrefix?: string | undefined;
  /** Attempts per call, the first included (`max_attempts`). */
  readonly maxAttempts: number;
  /** Bound on one call, all attempts and backoff included (`operation_timeout_secs`). */
  readonly operationTimeoutSecs: number;
  /** Bound on one attempt, until the response headers (`operation_attempt_timeout_secs`). */
  readonly operationAttemptTimeoutSecs: number;
}

/** `[blob_store.s3]`. */
export interface S3BlobStoreOptions extends S3ConnectionOptions {
  /** `multipart_part_size`: minimum (non-uniform) or exact (uniform) size of non-final parts. */
  readonly multipartPartSize: number;
  /** `multipart_copy_threshold`: completion copies larger blobs with a multipart copy. */
  readonly multipartCopyThreshold: number;
  /** `multipart_copy_chunk_size`: part size of that copy. */
  readonly multipartCopyChunkSize: number;
  /** `multipart_copy_jobs`: parts of that copy in flight at once. */
  readonly multipartCopyJobs: number;
  /** `multipart_uniform_parts`. */
  readonly multipartUniformParts: boolean;
}

/** Which conditional writes the provider honours (`[metadata_store.s3.capabilities]`). */
export interface S3Capabilities {
  readonly putIfNoneMatch: boolean;
  readonly putIfMatch: boolean;
  readonly deleteIfMatch: boolean;
}

/** `[metadata_store.s3]`. */
export interface S3MetadataStoreOptions extends S3ConnectionOptions {
  /** `link_cache_ttl` in seconds; 0 disables the link cache. */
  readonly linkCacheTtlSecs: number;
  /** `access_time_debounce_secs`; 0 writes pull times at once. */
  readonly accessTimeDebounceSecs: number;
  /**
   * Declared capabilities; any left undefined (or all, when the table is
   * absent) are probed when the store is opened.
   */
  readonly capabilities?: Partial<S3Capabilities> | undefined;
  /**
   * The version table the link caches of every serving thread of one process share: a write
   * through one thread is answered new by the others at once, as in one process. Default: this
   * store's own.
   */
  readonly linkCacheVersions?: LinkCacheVersions | undefined;
}

/** Where a driver reports what it cannot throw (background flushes). Structurally a subset of @angos/observability's Logger. */
export interface StorageLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
}
