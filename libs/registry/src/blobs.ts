import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type DigestParts, digestOf, formatDigest, OciError } from '@angos/oci';
import { type BlobCopy, type BlobStore, type ByteRange, NotFoundError } from '@angos/storage';
import type { BlobIndex } from './blob-index.js';
import type { BlobSizes } from './blob-sizes.js';
import { ByteCache } from './byte-cache.js';
import type { Grants } from './grants.js';
import { readWhole } from './read-whole.js';

/**
 * How long a presigned download URL stays valid. Clients follow a redirect at
 * once; the URL only has to outlive the start of the download.
 */
export const DOWNLOAD_URL_TTL_SECS = 900;

/**
 * Blobs of at most this size are kept in memory once read: image configs, signatures, small
 * attestations, fetched on every pull of an image. Each served from a file costs four file
 * operations on libuv's pool (open, stat, read, close), which all serving threads share: kept,
 * a 4 KiB blob GET on fs went from ~6,300 to ~12,500 requests a second on one thread.
 */
export const SMALL_BLOB_BYTES = 64 * 1024;
/** The memory the small blobs of one thread may take. */
const SMALL_BLOB_CACHE_BYTES = 8 * 1024 * 1024;

/** Blob reads, deletes and cross-namespace mounts, always through the namespace's grants. */
export class Blobs {
  /**
   * Small blobs by digest, their bytes checked against it when read: content-addressed, so never
   * stale. Only their bytes: whether the blob exists is still asked of the store on every HEAD
   * and GET (stat), so that bytes the store lost (`scrub --blobs` removes corrupt ones) answer
   * 404 and a client pushes them again, rather than being told they exist by a thread that kept
   * a copy. Served only to a caller that has checked the namespace's grant, as every read is.
   */
  readonly #small = new ByteCache(SMALL_BLOB_CACHE_BYTES);

  constructor(
    private readonly deps: {
      blobs: BlobStore;
      grants: Grants;
      index: BlobIndex;
      blobSizes: BlobSizes;
    },
  ) {}

  /**
   * The namespaces that hold the blob now (a grant or a reference), from its index entry: where
   * replication looks for a copy the downstream may already have, to mount instead of upload.
   */
  async holders(digest: DigestParts): Promise<string[]> {
    return Object.keys(await this.deps.index.references(digest));
  }

  /** True when downloads can be redirected to the storage itself (S3 presigned URLs). */
  get redirects(): boolean {
    return this.deps.blobs.presignBlob !== undefined;
  }

  /**
   * A time-limited URL from which the client downloads the blob directly
   * (Range included); undefined when the store cannot presign. The caller
   * has checked the namespace's grant (stat).
   */
  async downloadUrl(digest: DigestParts): Promise<string | undefined> {
    const presign = this.deps.blobs.presignBlob;
    return presign?.call(this.deps.blobs, digest, { expiresInSecs: DOWNLOAD_URL_TTL_SECS });
  }

  /**
   * Size of a blob the namespace may read; BLOB_UNKNOWN otherwise. The grant is checked on every
   * call; the size, once the grant allowed it, may come from `blobSizes` (why that is safe: there).
   */
  async stat(namespace: string, digest: DigestParts): Promise<{ size: number }> {
    if (!(await this.deps.grants.canRead(namespace, digest))) throw new OciError('BLOB_UNKNOWN', { digest });
    const known = this.deps.blobSizes.get(digest);
    if (known !== undefined) return { size: known };
    try {
      const { size } = await this.deps.blobs.statBlob(digest);
      this.deps.blobSizes.set(digest, size);
      return { size };
    } catch (error) {
      if (error instanceof NotFoundError) throw new OciError('BLOB_UNKNOWN', { digest });
      throw error;
    }
  }

  /**
   * Opens a blob (BLOB_UNKNOWN if absent) to be copied into a response: from memory when it is
   * small (its `size`, from `stat`, at most SMALL_BLOB_BYTES), else the store's own copy where it
   * has one (fs: reused buffers), its stream otherwise. The caller has checked the namespace's
   * grant (stat).
   */
  async open(namespace: string, digest: DigestParts, range?: ByteRange, size?: number): Promise<BlobCopy> {
    const store = this.deps.blobs;
    try {
      const small = await this.#smallBlob(digest, size);
      if (small !== undefined) return bufferCopy(range ? small.subarray(range.start, range.end + 1) : small);
      if (store.openBlobCopy) return await store.openBlobCopy(digest, range);
      return streamCopy(await store.readBlob(digest, range));
    } catch (error) {
      if (error instanceof NotFoundError) throw new OciError('BLOB_UNKNOWN', { digest, namespace });
      throw error;
    }
  }

  /**
   * The bytes of a small blob: kept ones, or read whole and kept when they match their digest.
   * Undefined for a blob not known to be small, and for bytes that do not match (corrupt: they
   * are served from the store as they are, and the client's digest check refuses them).
   */
  async #smallBlob(digest: DigestParts, size: number | undefined): Promise<Buffer | undefined> {
    const key = formatDigest(digest);
    const kept = this.#small.get(key);
    if (kept !== undefined || size === undefined || size > SMALL_BLOB_BYTES) return kept;
    // Never more than the size read before: a file larger than that is corrupt, and streamed.
    const bytes = await readWhole(await this.deps.blobs.readBlob(digest), size);
    if (bytes === undefined || digestOf(digest.algorithm, bytes).hex !== digest.hex) return undefined;
    this.#small.set(key, bytes);
    return bytes;
  }

  /** Blob DELETE: removes the namespace's grant only; the bytes are garbage collection's. */
  async delete(namespace: string, digest: DigestParts): Promise<void> {
    if (!(await this.deps.grants.revoke(namespace, digest))) throw new OciError('BLOB_UNKNOWN', { digest });
  }

  /**
   * Grants `namespace` a blob that `from` holds. The caller has already
   * checked that the requester may read `from`. Returns false when `from`
   * holds no such blob (the client then uploads it normally).
   */
  async mount(namespace: string, digest: DigestParts, from: string): Promise<boolean> {
    return this.deps.grants.mount(namespace, digest, from, async () => {
      try {
        await this.deps.blobs.statBlob(digest);
        return true;
      } catch (error) {
        if (error instanceof NotFoundError) return false;
        throw error;
      }
    });
  }
}

/** Bytes in memory as a BlobCopy: one write, which must not be changed (it is a kept blob). */
function bufferCopy(bytes: Buffer): BlobCopy {
  return {
    copyTo: (destination) =>
      new Promise((resolve, reject) => {
        destination.write(bytes, (error) => (error ? reject(error) : resolve()));
      }),
    close: async () => {},
  };
}

/** A stream as a BlobCopy, for stores without a copy of their own. */
function streamCopy(body: Readable): BlobCopy {
  return {
    copyTo: (destination) => pipeline(body, destination, { end: false }),
    close: async () => {
      body.destroy();
    },
  };
}
