import type { Readable } from 'node:stream';
import { assertValidDigest, assertValidKey, assertValidPrefix, assertValidUpload } from './key-rules.js';
import type { DigestParts } from './keys.js';
import { MetadataStoreWrapper } from './metadata-wrapper.js';
import { assertValidPageOptions } from './paging.js';
import { withExactLength } from './streaming.js';
import type {
  BlobCopy,
  BlobStore,
  ByteRange,
  ConditionalWrites,
  ListPageOptions,
  MetadataStore,
  PresignOptions,
  VersionedValue,
} from './types.js';

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

class KeyValidatingMetadataStore extends MetadataStoreWrapper {
  constructor(inner: MetadataStore) {
    super(inner, {
      conditional: (conditional) => new KeyValidatingConditionalWrites(conditional),
      getUncached: (getUncached) => async (path) => {
        assertValidKey(path);
        return getUncached(path);
      },
      putDeferred: (putDeferred) => (path, data) => {
        assertValidKey(path);
        putDeferred(path, data);
      },
    });
  }

  override async get(path: string): Promise<Buffer> {
    assertValidKey(path);
    return this.inner.get(path);
  }

  override async put(path: string, data: Uint8Array | string): Promise<void> {
    assertValidKey(path);
    return this.inner.put(path, data);
  }

  override async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    assertValidKey(path);
    return this.inner.putIfAbsent(path, data);
  }

  override async delete(path: string): Promise<boolean> {
    assertValidKey(path);
    return this.inner.delete(path);
  }

  override async list(prefix: string): Promise<string[]> {
    assertValidPrefix(prefix);
    return this.inner.list(prefix);
  }

  override async listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    assertValidPrefix(prefix);
    assertValidPageOptions(options);
    return this.inner.listPage(prefix, options);
  }

  override async deletePrefix(prefix: string): Promise<void> {
    // Deliberately not assertValidPrefix: '' (everything) is never a valid target.
    assertValidKey(prefix);
    return this.inner.deletePrefix(prefix);
  }
}

class KeyValidatingConditionalWrites implements ConditionalWrites {
  readonly deleteIfVersion?: (path: string, version: string) => Promise<boolean>;

  constructor(private readonly inner: ConditionalWrites) {
    const { deleteIfVersion } = inner;
    if (deleteIfVersion) {
      this.deleteIfVersion = async (path, version) => {
        assertValidKey(path);
        return deleteIfVersion.call(inner, path, version);
      };
    }
  }

  async getVersioned(path: string): Promise<VersionedValue | undefined> {
    assertValidKey(path);
    return this.inner.getVersioned(path);
  }

  async putIfVersion(path: string, data: Uint8Array | string, version: string | undefined): Promise<boolean> {
    assertValidKey(path);
    return this.inner.putIfVersion(path, data, version);
  }
}

class KeyValidatingBlobStore implements BlobStore {
  readonly backend: string;
  readonly presignBlob?: (digest: DigestParts, options: PresignOptions) => Promise<string>;
  readonly openBlobCopy?: (digest: DigestParts, range?: ByteRange) => Promise<BlobCopy>;
  readonly check?: () => Promise<void>;
  readonly close?: () => Promise<void>;

  constructor(private readonly inner: BlobStore) {
    this.backend = inner.backend;
    const { presignBlob, openBlobCopy, check, close } = inner;
    if (openBlobCopy) {
      this.openBlobCopy = async (digest, range) => {
        assertValidDigest(digest);
        if (range !== undefined) assertValidRange(range);
        return openBlobCopy.call(inner, digest, range);
      };
    }
    if (presignBlob) {
      this.presignBlob = async (digest, options) => {
        assertValidDigest(digest);
        return presignBlob.call(inner, digest, options);
      };
    }
    if (check) this.check = () => check.call(inner);
    if (close) this.close = () => close.call(inner);
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

  async appendUpload(
    namespace: string,
    id: string,
    offset: number,
    body: Readable,
    length?: number,
  ): Promise<number> {
    assertValidUpload(namespace, id);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`invalid upload offset: ${offset}`);
    if (length === undefined) return this.inner.appendUpload(namespace, id, offset, body);
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid body length: ${length}`);
    // Checked here once, so every backend fails a body that belies its length the same way.
    return this.inner.appendUpload(namespace, id, offset, withExactLength(body, length), length);
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
