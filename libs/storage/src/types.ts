import type { Readable } from 'node:stream';
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
   * Removes the value at `prefix`, if any, and everything under `prefix/`
   * (recursive); never siblings that merely share the spelling (`ns` spares
   * `ns2`). Empty parents disappear. No error if absent. `''` is an InvalidKeyError.
   */
  deletePrefix(prefix: string): Promise<void>;
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
   * the error is rethrown.
   */
  appendUpload(namespace: string, id: string, offset: number, body: Readable): Promise<number>;
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
}
