import type { Readable, Writable } from 'node:stream';
import type { DigestParts } from './keys.js';

/** Thrown by every driver when a key, blob or upload does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  constructor(readonly path: string) {
    super(`not found: ${path}`);
  }
}

/** Thrown when a key or path is not acceptable to the store (traversal, empty segment…). */
export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError';
  constructor(readonly path: string) {
    super(`invalid key: ${path}`);
  }
}

/** Thrown when an append does not start where the upload currently ends. */
export class OffsetMismatchError extends Error {
  override readonly name = 'OffsetMismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`upload offset mismatch: expected ${expected}, upload is at ${actual}`);
  }
}

/** A body delivered more or fewer bytes than the length declared for it (`appendUpload`). */
export class BodyLengthError extends Error {
  override readonly name = 'BodyLengthError';
  constructor(
    readonly declared: number,
    readonly received: number,
  ) {
    super(`body length mismatch: declared ${declared} bytes, received ${received}`);
  }
}

/** What a backend failure was doing, for the message and for log fields. */
export interface StorageErrorDetails {
  readonly backend: string;
  /** The backend call, e.g. `UploadPart`. */
  readonly operation: string;
  readonly bucket?: string | undefined;
  readonly key?: string | undefined;
  /** The backend's error code (`SlowDown`, `NoSuchBucket`, `TimeoutError`…). */
  readonly code?: string | undefined;
  readonly status?: number | undefined;
  /** How many attempts were made before giving up. */
  readonly attempts?: number | undefined;
}

/**
 * A backend call failed for a reason other than a missing key, after the
 * configured retries: unreachable endpoint, timeout, throttling, 5xx, bad
 * credentials, missing bucket. The message names the bucket and operation.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  /** The HTTP edge answers 503 (retry later) rather than 500 (a bug). */
  readonly transient = true;
  constructor(
    message: string,
    readonly details: StorageErrorDetails,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Inclusive byte range, as HTTP Range uses. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Small documents: links, indexes, upload markers. Paths come from `keyFor()`.
 * Every `put` is atomic: a reader sees the old value or the new one, never a mix,
 * and a crash never leaves a half-written value visible.
 */
export interface MetadataStore {
  readonly backend: string;
  /** Whole value; NotFoundError if absent (a prefix holds no value: NotFoundError too). */
  get(path: string): Promise<Buffer>;
  /**
   * Atomic create-or-replace. A key is a value or a prefix, never both: writing
   * a value where a prefix exists or below a value is outside the contract (the
   * layout never does it); fs and memory throw InvalidKeyError.
   */
  put(path: string, data: Uint8Array | string): Promise<void>;
  /** Atomic create only if absent; returns false (and writes nothing) if it exists. */
  putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean>;
  /** Removes one value; returns false if it was absent. Empty parent "directories" disappear. */
  delete(path: string): Promise<boolean>;
  /**
   * Names of the direct children under a prefix "directory", sorted by code point
   * (`a < b`, not localeCompare); [] if none, or if the prefix is a value.
   * `''` lists the top level.
   */
  list(prefix: string): Promise<string[]>;
  /**
   * One page of `list(prefix)`: the names that sort after `options.after` (all of them when it is
   * absent), in the same order, at most `options.limit` of them. Fewer than `limit` means the
   * listing ended. Its cost is bounded by `limit`, not by the size of the prefix, on the backends
   * where that matters (S3: ListObjectsV2 `StartAfter` and `MaxKeys`; fs reads the directory and
   * slices it). The names of the layout are ASCII, where every backend's order is `a < b`.
   * `limit` must be a positive integer (RangeError otherwise).
   */
  listPage(prefix: string, options: ListPageOptions): Promise<string[]>;
  /**
   * Removes the value at `prefix`, if any, and everything under `prefix/`
   * (recursive); never siblings that merely share the spelling (`ns` spares
   * `ns2`). Empty parents disappear. No error if absent. `''` is an InvalidKeyError.
   */
  deletePrefix(prefix: string): Promise<void>;

  /**
   * Optional: compare-and-swap on single keys, present only when the backend
   * guarantees it atomically (memory; S3 when the provider supports
   * `put_if_none_match` and `put_if_match`). Callers fall back to their locks
   * without it.
   */
  readonly conditional?: ConditionalWrites | undefined;
  /**
   * Optional: a write that may be delayed and merged with later writes of the
   * same key (last value wins), for frequent, low-value updates such as pull
   * times (S3 `access_time_debounce_secs`). Until it is flushed, `get` of the
   * key returns the pending value and `delete`/`deletePrefix` drop it; `list`
   * sees the key only once written. Without it, callers use `put`.
   */
  putDeferred?(path: string, data: string): void;
  /**
   * Reads past any cache in front of the store (the S3 link cache). A decision taken under a
   * lock — may this tag move, does this tag still point at the manifest being deleted — must not
   * act on a value another replica changed since it was cached. Absent when nothing caches:
   * `get` is already fresh.
   */
  getUncached?(path: string): Promise<Buffer>;
  /** Optional: verifies at startup that the backend is usable; throws StorageError saying what is wrong. */
  check?(): Promise<void>;
  /** Optional: writes what is deferred and releases connections and timers (shutdown). */
  close?(): Promise<void>;
}

/** Where a page of a listing starts and how long it is (`MetadataStore.listPage`). */
export interface ListPageOptions {
  /** Only names after this one; the listing's first names when absent. */
  readonly after?: string | undefined;
  /** At most this many names: a positive integer. */
  readonly limit: number;
}

/** A value and the opaque version it had when read. */
export interface VersionedValue {
  readonly data: Buffer;
  readonly version: string;
}

/** Optimistic concurrency on single metadata keys. */
export interface ConditionalWrites {
  /** The value and its version; undefined if absent. */
  getVersioned(path: string): Promise<VersionedValue | undefined>;
  /**
   * Writes only if the key still has `version` (`undefined`: only if the key is
   * absent). Returns false, writing nothing, when it changed in between.
   */
  putIfVersion(path: string, data: Uint8Array | string, version: string | undefined): Promise<boolean>;
  /**
   * Deletes only if the key still has `version`; false if it changed or is
   * gone. Absent when the backend cannot (RGW ignores If-Match on DELETE).
   */
  deleteIfVersion?(path: string, version: string): Promise<boolean>;
}

/** How a presigned download URL is made (`BlobStore.presignBlob`). */
export interface PresignOptions {
  /** How long the URL stays valid. */
  readonly expiresInSecs: number;
  /** The Content-Type the download answers with (S3 `response-content-type`). */
  readonly contentType?: string | undefined;
}

/** A committed blob (or range) opened for copying into a writable (`BlobStore.openBlobCopy`). */
export interface BlobCopy {
  /**
   * Writes every byte into `destination`, without ending it, and releases the blob. Rejects if
   * the blob cannot be read or `destination` fails or closes first. A chunk's buffer may be
   * reused once its write callback fires: right for a socket (the kernel has the bytes); an
   * in-memory consumer reads through `blobCopyStream`, which copies each chunk.
   */
  copyTo(destination: Writable): Promise<void>;
  /** Releases the blob without copying (idempotent; copyTo does it when it ends). */
  close(): Promise<void>;
}

/**
 * Large, content-addressed bytes and the upload sessions that produce them.
 * Bytes always stream: no method takes or returns a whole blob in memory,
 * except `putBlob` which is for small documents (manifests).
 */
export interface BlobStore {
  readonly backend: string;

  /** Size of a committed blob; NotFoundError if absent. */
  statBlob(digest: DigestParts): Promise<{ size: number }>;
  /**
   * Streams a committed blob, or the inclusive range of it; NotFoundError if
   * absent. An `end` past the blob reads to its end; the caller checks `start`
   * against the size (416 is the HTTP layer's); a malformed range is a RangeError.
   */
  readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable>;
  /**
   * Optional fast path for serving a blob: opens it (NotFoundError if absent, before anything is
   * written; ranges as readBlob), to copy into a writable through a few reused buffers. A stream
   * allocates a new buffer per chunk instead, and a gigabyte pull then spent ~15% of its CPU in
   * the garbage collector.
   */
  openBlobCopy?(digest: DigestParts, range?: ByteRange): Promise<BlobCopy>;
  /** Writes a small blob atomically; a no-op if it already exists (content-addressed). */
  putBlob(digest: DigestParts, data: Uint8Array): Promise<void>;
  /** Removes a committed blob; returns false if it was absent. */
  deleteBlob(digest: DigestParts): Promise<boolean>;
  /** All committed blob digests (maintenance walks), in no particular order. */
  listBlobs(): AsyncIterable<DigestParts>;

  /** Creates an empty upload session. Ids must be fresh: an existing session makes this reject, untouched. */
  createUpload(namespace: string, id: string): Promise<void>;
  /** Bytes received so far; NotFoundError if the session does not exist. */
  uploadSize(namespace: string, id: string): Promise<number>;
  /**
   * Appends a stream at `offset`, which must equal the current size
   * (OffsetMismatchError otherwise). Returns the new size. If the stream fails
   * midway the session keeps a consistent size (what was durably appended) and
   * the error is rethrown. `length`, when the caller knows it (Content-Length,
   * Content-Range), lets a backend stream without buffering (S3 UploadPart); a
   * body that delivers more or fewer bytes then fails the append with
   * BodyLengthError and leaves the session at `offset`: none of it is kept.
   *
   * The store re-checks `offset` but does not exclude a concurrent writer on
   * another replica: the registry lets one request at a time write a session.
   */
  appendUpload(
    namespace: string,
    id: string,
    offset: number,
    body: Readable,
    length?: number,
  ): Promise<number>;
  /** Streams the bytes received so far (used to re-hash a session). */
  readUpload(namespace: string, id: string): Promise<Readable>;
  /**
   * Atomically moves the session's bytes to the blob `digest` (the caller has
   * verified them) and removes the session. If the blob already exists the
   * session's bytes are discarded and the existing blob kept.
   */
  commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void>;
  /**
   * Removes the session and its bytes; returns false if absent. Keys the
   * metadata store holds for the session (`startedat`) are the caller's to delete.
   */
  deleteUpload(namespace: string, id: string): Promise<boolean>;

  /**
   * Optional: a time-limited URL from which a client can GET a committed blob
   * directly, Range included (S3 presigned URL, for 307 redirects). Does not
   * check that the blob exists.
   */
  presignBlob?(digest: DigestParts, options: PresignOptions): Promise<string>;
  /** Optional: verifies at startup that the backend is usable; throws StorageError saying what is wrong. */
  check?(): Promise<void>;
  /** Optional: releases connections (shutdown). */
  close?(): Promise<void>;
}
