import type { Readable } from 'node:stream';
import { assertValidDigest, assertValidKey, assertValidPrefix, assertValidUpload } from './key-rules.js';
import type { DigestParts } from './keys.js';
import type { BlobStore, ByteRange, MetadataStore } from './types.js';

/**
 * The one place where keys are checked (STYLE.md #3): drivers trust their input
 * and stay simple, and every backend rejects the same keys with InvalidKeyError.
 * `createStores()` always returns wrapped stores; wrap a driver built by hand.
 */
export function withMetadataKeyValidation(store: MetadataStore): MetadataStore {
  return new KeyValidatingMetadataStore(store);
}

export function withBlobKeyValidation(store: BlobStore): BlobStore {
  return new KeyValidatingBlobStore(store);
}

class KeyValidatingMetadataStore implements MetadataStore {
  readonly backend: string;

  constructor(private readonly inner: MetadataStore) {
    this.backend = inner.backend;
  }

  async get(path: string): Promise<Buffer> {
    assertValidKey(path);
    return this.inner.get(path);
  }

  async put(path: string, data: Uint8Array | string): Promise<void> {
    assertValidKey(path);
    return this.inner.put(path, data);
  }

  async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    assertValidKey(path);
    return this.inner.putIfAbsent(path, data);
  }

  async delete(path: string): Promise<boolean> {
    assertValidKey(path);
    return this.inner.delete(path);
  }

  async list(prefix: string): Promise<string[]> {
    assertValidPrefix(prefix);
    return this.inner.list(prefix);
  }

  async deletePrefix(prefix: string): Promise<void> {
    // Deliberately not assertValidPrefix: '' (everything) is never a valid target.
    assertValidKey(prefix);
    return this.inner.deletePrefix(prefix);
  }
}

class KeyValidatingBlobStore implements BlobStore {
  readonly backend: string;

  constructor(private readonly inner: BlobStore) {
    this.backend = inner.backend;
  }

  async statBlob(digest: DigestParts): Promise<{ size: number }> {
    assertValidDigest(digest);
    return this.inner.statBlob(digest);
  }

  async readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable> {
    assertValidDigest(digest);
    if (range !== undefined) assertValidRange(range);
    return this.inner.readBlob(digest, range);
  }

  async putBlob(digest: DigestParts, data: Uint8Array): Promise<void> {
    assertValidDigest(digest);
    return this.inner.putBlob(digest, data);
  }

  async deleteBlob(digest: DigestParts): Promise<boolean> {
    assertValidDigest(digest);
    return this.inner.deleteBlob(digest);
  }

  listBlobs(): AsyncIterable<DigestParts> {
    return this.inner.listBlobs();
  }

  async createUpload(namespace: string, id: string): Promise<void> {
    assertValidUpload(namespace, id);
    return this.inner.createUpload(namespace, id);
  }

  async uploadSize(namespace: string, id: string): Promise<number> {
    assertValidUpload(namespace, id);
    return this.inner.uploadSize(namespace, id);
  }

  async appendUpload(namespace: string, id: string, offset: number, body: Readable): Promise<number> {
    assertValidUpload(namespace, id);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`invalid upload offset: ${offset}`);
    return this.inner.appendUpload(namespace, id, offset, body);
  }

  async readUpload(namespace: string, id: string): Promise<Readable> {
    assertValidUpload(namespace, id);
    return this.inner.readUpload(namespace, id);
  }

  async commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void> {
    assertValidUpload(namespace, id);
    assertValidDigest(digest);
    return this.inner.commitUpload(namespace, id, digest);
  }

  async deleteUpload(namespace: string, id: string): Promise<boolean> {
    assertValidUpload(namespace, id);
    return this.inner.deleteUpload(namespace, id);
  }
}

/** A malformed range is a caller bug (the HTTP layer answers 416 before calling). */
function assertValidRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range: ${start}-${end}`);
  }
}
