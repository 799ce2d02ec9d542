import { Readable } from 'node:stream';
import { type Algorithm, type DigestParts, keyFor, legacyKeyFor } from '../keys.js';
import { KeyedSerializer } from '../serial.js';
import {
  type BlobStore,
  type ByteRange,
  NotFoundError,
  OffsetMismatchError,
  type PresignOptions,
} from '../types.js';
import type { S3Bucket } from './bucket.js';
import { copyObject } from './copy.js';
import type { S3BlobStoreOptions } from './options.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from './parts.js';
import { type PartPolicy, SessionChange } from './session-writer.js';
import {
  decodeState,
  EMPTY_STATE,
  encodeState,
  SessionKeys,
  sizeOf,
  type UploadState,
} from './upload-state.js';

const ALGORITHMS: readonly Algorithm[] = ['sha256', 'sha512'];

/**
 * Blobs as objects at `_blobs/<alg>/<hex[0:2]>/<hex>` (those of the legacy flat layout,
 * `_blobs/<alg>/<hex>`, are read, listed and deleted in place: keys.ts); upload sessions as multipart
 * uploads whose state (upload id, parts, staged tail) is itself an object,
 * so a session continues after a restart and on any replica (see
 * upload-state.ts for the layout, session-writer.ts for the upload modes).
 *
 * Appends and commits of one session are serialized in this process; across
 * replicas the registry's claim on the session (one writer at a time) does
 * it. Trusts its keys: use it through withBlobKeyValidation() (openStores()
 * does).
 */
export class S3BlobStore implements BlobStore {
  readonly backend = 's3';
  readonly #bucket: S3Bucket;
  readonly #policy: PartPolicy;
  readonly #copy: { threshold: number; chunkSize: number; jobs: number };
  readonly #sessions = new KeyedSerializer();

  constructor(bucket: S3Bucket, options: S3BlobStoreOptions) {
    // A coalesced part is up to one 5 MiB sub-part above the part size, and must stay a valid part.
    if (
      options.multipartPartSize < MIN_PART_SIZE ||
      options.multipartPartSize > MAX_PART_SIZE - MIN_PART_SIZE
    ) {
      throw new RangeError(
        `multipart_part_size must be between 5 MiB and 5 GiB - 5 MiB, not ${options.multipartPartSize} bytes`,
      );
    }
    this.#bucket = bucket;
    this.#policy = { partSize: options.multipartPartSize, uniform: options.multipartUniformParts };
    this.#copy = {
      threshold: options.multipartCopyThreshold,
      chunkSize: options.multipartCopyChunkSize,
      jobs: options.multipartCopyJobs,
    };
  }

  async statBlob(digest: DigestParts): Promise<{ size: number }> {
    const found = await this.#locate(digest);
    if (found === undefined) throw new NotFoundError(blobKey(digest));
    return { size: found.size };
  }

  async readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable> {
    const stream =
      (await this.#bucket.getStream(blobKey(digest), range)) ??
      (await this.#bucket.getStream(legacyBlobKey(digest), range));
    if (stream === undefined) throw new NotFoundError(blobKey(digest));
    return stream;
  }

  async putBlob(digest: DigestParts, data: Uint8Array): Promise<void> {
    // Re-pushes of the same manifest are common: a HEAD spares the write.
    if ((await this.#locate(digest)) !== undefined) return;
    await this.#bucket.put(blobKey(digest), Buffer.from(data));
  }

  async deleteBlob(digest: DigestParts): Promise<boolean> {
    // S3 answers a DELETE the same whether the key existed or not: HEADs tell what was there.
    const present: string[] = [];
    for (const key of [legacyBlobKey(digest), blobKey(digest)]) {
      if ((await this.#bucket.head(key)) !== undefined) present.push(key);
    }
    for (const key of present) await this.#bucket.delete(key);
    return present.length > 0;
  }

  /**
   * Lists `_blobs/<alg>/`: keys `<hex[0:2]>/<hex>` are blobs of the fanned-out layout, keys
   * `<hex>` blobs of the legacy flat layout (keys.ts). A blob present in both (only an earlier
   * version writing beside this one makes that) is listed twice.
   */
  async *listBlobs(): AsyncIterable<DigestParts> {
    for (const algorithm of ALGORITHMS) {
      const prefix = `_blobs/${algorithm}/`;
      for await (const key of this.#bucket.listKeys(prefix)) {
        const rest = key.slice(prefix.length);
        // `<hex>` (legacy) or `<hex[0:2]>/<hex>`; anything else is not a blob of this store.
        const hex = rest.charAt(2) === '/' ? rest.slice(3) : rest;
        if (hex !== '' && !hex.includes('/')) yield { algorithm, hex };
      }
    }
  }

  /**
   * A blob of the legacy layout is presigned at its legacy key, which costs a HEAD first: the
   * URL must name the object that exists, and the client, not this process, will GET it.
   */
  async presignBlob(digest: DigestParts, options: PresignOptions): Promise<string> {
    const key = (await this.#locate(digest))?.key ?? blobKey(digest);
    return this.#bucket.presignGet(key, options.expiresInSecs, options.contentType);
  }

  async createUpload(namespace: string, id: string): Promise<void> {
    const keys = new SessionKeys(namespace, id);
    if ((await this.#bucket.head(keys.state)) !== undefined) {
      throw new Error(`upload session already exists: ${keys.data}`);
    }
    await this.#bucket.put(keys.state, encodeState(EMPTY_STATE));
  }

  async uploadSize(namespace: string, id: string): Promise<number> {
    return sizeOf(await this.#load(new SessionKeys(namespace, id)));
  }

  async appendUpload(
    namespace: string,
    id: string,
    offset: number,
    body: Readable,
    length?: number,
  ): Promise<number> {
    const keys = new SessionKeys(namespace, id);
    return this.#sessions.run(keys.state, async () => {
      const state = await this.#load(keys);
      const size = sizeOf(state);
      if (size !== offset) throw new OffsetMismatchError(offset, size);
      const change = new SessionChange(this.#bucket, keys, this.#policy, state);
      let appended: number;
      try {
        if (length === undefined) appended = await change.appendStream(body);
        else {
          await change.appendKnownLength(body, length);
          appended = length;
        }
      } catch (error) {
        body.destroy();
        await change.rollback();
        throw error;
      }
      if (appended > 0) await this.#save(keys, change);
      return size + appended;
    });
  }

  async readUpload(namespace: string, id: string): Promise<Readable> {
    const keys = new SessionKeys(namespace, id);
    const tail = await this.#sessions.run(keys.state, async () => (await this.#sealed(keys)).tail);
    if (tail === undefined) return Readable.from([]);
    const stream = await this.#bucket.getStream(tail.key);
    if (stream === undefined) throw new Error(`upload session ${keys.data}: staged bytes are missing`);
    return stream;
  }

  async commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void> {
    const keys = new SessionKeys(namespace, id);
    return this.#sessions.run(keys.state, async () => {
      const state = await this.#load(keys);
      const target = blobKey(digest);
      if ((await this.#locate(digest)) === undefined) {
        const { tail } = await this.#sealed(keys, state);
        if (tail === undefined) await this.#bucket.put(target, Buffer.alloc(0));
        else await copyObject(this.#bucket, tail.key, target, tail.size, this.#copy);
        await this.#bucket.deleteMany([keys.state, tail?.key ?? keys.data]);
        return;
      }
      // The blob exists (content-addressed: same bytes): this session's bytes are not needed.
      await this.#discard(keys, state);
    });
  }

  /**
   * Not queued behind an append in progress (which may wait on a slow client for long): as one
   * on another replica would, that append then fails (its multipart upload is aborted) or saves
   * the state again, and the registry removes the session once more (it knows the session ended).
   */
  async deleteUpload(namespace: string, id: string): Promise<boolean> {
    const keys = new SessionKeys(namespace, id);
    const found = await this.#bucket.getBuffer(keys.state);
    if (found === undefined) return false;
    await this.#discard(keys, decodeState(found.data));
    // Leftovers of appends that failed without cleaning up, or of a crash. Only
    // this store's keys: a metadata store sharing the bucket keeps `startedat` here.
    const leftovers = [keys.data];
    for await (const key of this.#bucket.listKeys(`${keys.staging}/`)) leftovers.push(key);
    await this.#bucket.deleteMany(leftovers);
    for await (const upload of this.#bucket.listMultipartUploads(keys.root)) {
      await this.#bucket.abortMultipartUpload(upload.key, upload.uploadId);
    }
    return true;
  }

  async check(): Promise<void> {
    await this.#bucket.probeAccess();
  }

  async close(): Promise<void> {
    this.#bucket.destroy();
  }

  /** Where the blob is, and its size: its fanned-out key, else its legacy one (keys.ts); undefined if neither. */
  async #locate(digest: DigestParts): Promise<{ key: string; size: number } | undefined> {
    for (const key of [blobKey(digest), legacyBlobKey(digest)]) {
      const found = await this.#bucket.head(key);
      if (found !== undefined) return { key, size: found.size };
    }
    return undefined;
  }

  /** Removes the session's state first (it is gone from then on), then what the state referenced. */
  async #discard(keys: SessionKeys, state: UploadState): Promise<void> {
    await this.#bucket.delete(keys.state);
    if (state.multipart) await this.#bucket.abortMultipartUpload(keys.data, state.multipart.uploadId);
    await this.#bucket.deleteMany(state.tail ? [state.tail.key] : []);
  }

  /** The session as one object (see SessionChange.seal), its state saved. */
  async #sealed(keys: SessionKeys, known?: UploadState): Promise<UploadState> {
    const state = known ?? (await this.#load(keys));
    if (!state.multipart) return state;
    const change = new SessionChange(this.#bucket, keys, this.#policy, state);
    try {
      await change.seal();
    } catch (error) {
      await change.rollback();
      throw error;
    }
    await this.#save(keys, change);
    return change.state;
  }

  async #load(keys: SessionKeys): Promise<UploadState> {
    const found = await this.#bucket.getBuffer(keys.state);
    if (found === undefined) throw new NotFoundError(keys.data);
    return decodeState(found.data);
  }

  /** Saves the state a change produced, then drops what the old state referenced and the new one does not. */
  async #save(keys: SessionKeys, change: SessionChange): Promise<void> {
    await this.#bucket.put(keys.state, encodeState(change.state));
    // Garbage if this fails: `deleteUpload` lists the session's keys, and scrub finds the rest.
    await this.#bucket.deleteMany(change.obsolete).catch(() => undefined);
  }
}

function blobKey(digest: DigestParts): string {
  return keyFor({ kind: 'blob', digest });
}

function legacyBlobKey(digest: DigestParts): string {
  return legacyKeyFor({ kind: 'blob', digest });
}
