import { Readable } from 'node:stream';
import { type DigestParts, keyFor } from '../keys.js';
import { KeyedSerializer } from '../serial.js';
import { STREAM_CHUNK_BYTES } from '../streaming.js';
import {
  type BlobStore,
  BodyLengthError,
  type ByteRange,
  NotFoundError,
  OffsetMismatchError,
} from '../types.js';

interface StoredBlob {
  readonly digest: DigestParts;
  readonly bytes: Buffer;
}

interface UploadSession {
  readonly chunks: Buffer[];
  size: number;
}

/**
 * Blobs and upload sessions in Maps, with the fs driver's semantics (it passes
 * the same contract suite): the only fake in the project. Bytes are copied in,
 * so a producer reusing its buffers cannot alter what is stored.
 */
export class MemoryBlobStore implements BlobStore {
  readonly backend = 'memory';
  readonly #blobs = new Map<string, StoredBlob>();
  readonly #uploads = new Map<string, UploadSession>();
  readonly #sessions = new KeyedSerializer();

  async statBlob(digest: DigestParts): Promise<{ size: number }> {
    return { size: this.#blob(digest).length };
  }

  async readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable> {
    const bytes = this.#blob(digest);
    const view = range === undefined ? bytes : bytes.subarray(range.start, range.end + 1);
    return Readable.from(inChunks(view), { objectMode: false });
  }

  async putBlob(digest: DigestParts, data: Uint8Array): Promise<void> {
    const key = keyFor({ kind: 'blob', digest });
    if (!this.#blobs.has(key)) this.#blobs.set(key, { digest: copyDigest(digest), bytes: Buffer.from(data) });
  }

  async deleteBlob(digest: DigestParts): Promise<boolean> {
    return this.#blobs.delete(keyFor({ kind: 'blob', digest }));
  }

  async *listBlobs(): AsyncIterable<DigestParts> {
    // A snapshot, like a directory walk: deletes during the walk are safe.
    for (const { digest } of [...this.#blobs.values()]) yield copyDigest(digest);
  }

  async createUpload(namespace: string, id: string): Promise<void> {
    const key = uploadKey(namespace, id);
    if (this.#uploads.has(key)) throw new Error(`upload session already exists: ${key}`);
    this.#uploads.set(key, { chunks: [], size: 0 });
  }

  async uploadSize(namespace: string, id: string): Promise<number> {
    return this.#session(namespace, id).size;
  }

  async appendUpload(namespace: string, id: string, offset: number, body: Readable): Promise<number> {
    return this.#sessions.run(uploadKey(namespace, id), async () => {
      const session = this.#session(namespace, id);
      if (session.size !== offset) throw new OffsetMismatchError(offset, session.size);
      const chunksBefore = session.chunks.length;
      try {
        // Each chunk is kept as it arrives: if `body` fails midway, what arrived stays.
        for await (const chunk of body) {
          const bytes =
            typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk as Uint8Array);
          session.chunks.push(bytes);
          session.size += bytes.length;
        }
      } catch (error) {
        // Except a body that belied its declared length: none of it is part of the session (as on fs).
        if (error instanceof BodyLengthError) {
          session.chunks.length = chunksBefore;
          session.size = offset;
        }
        throw error;
      }
      return session.size;
    });
  }

  async readUpload(namespace: string, id: string): Promise<Readable> {
    const { chunks } = this.#session(namespace, id);
    return Readable.from(chunks.slice(), { objectMode: false });
  }

  async commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void> {
    const key = uploadKey(namespace, id);
    return this.#sessions.run(key, async () => {
      const session = this.#session(namespace, id);
      this.#uploads.delete(key);
      const blobKey = keyFor({ kind: 'blob', digest });
      if (!this.#blobs.has(blobKey)) {
        this.#blobs.set(blobKey, {
          digest: copyDigest(digest),
          bytes: Buffer.concat(session.chunks, session.size),
        });
      }
    });
  }

  async deleteUpload(namespace: string, id: string): Promise<boolean> {
    return this.#uploads.delete(uploadKey(namespace, id));
  }

  #blob(digest: DigestParts): Buffer {
    const key = keyFor({ kind: 'blob', digest });
    const blob = this.#blobs.get(key);
    if (blob === undefined) throw new NotFoundError(key);
    return blob.bytes;
  }

  #session(namespace: string, id: string): UploadSession {
    const key = uploadKey(namespace, id);
    const session = this.#uploads.get(key);
    if (session === undefined) throw new NotFoundError(key);
    return session;
  }
}

/** Streams a blob in the same chunk size the fs driver reads with. */
function* inChunks(bytes: Buffer): Generator<Buffer> {
  for (let start = 0; start < bytes.length; start += STREAM_CHUNK_BYTES) {
    yield bytes.subarray(start, start + STREAM_CHUNK_BYTES);
  }
}

function uploadKey(namespace: string, id: string): string {
  return keyFor({ kind: 'uploadData', namespace, id });
}

function copyDigest({ algorithm, hex }: DigestParts): DigestParts {
  return { algorithm, hex };
}
