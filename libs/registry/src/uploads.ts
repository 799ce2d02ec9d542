import { randomUUID } from 'node:crypto';
import { pipeline as pipeStreams, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import {
  type Algorithm,
  createDigester,
  type Digester,
  type DigestParts,
  formatDigest,
  OciError,
} from '@angos/oci';
import {
  type BlobStore,
  keyFor,
  type MetadataStore,
  NotFoundError,
  OffsetMismatchError,
} from '@angos/storage';
import type { BlobLocks } from './blob-locks.js';
import type { Grants } from './grants.js';
import type { NamespaceSettings } from './settings.js';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Where a chunk claims to start and end (Content-Range), and how long it says it is (Content-Length). */
export interface ChunkHeaders {
  readonly range?: { start: number; end: number } | undefined;
  readonly contentLength?: number | undefined;
}

/**
 * The running hash of a session, valid while it has seen exactly the bytes
 * stored so far. It lives in memory only: after a restart, on another
 * replica, or after a failed append, completion re-reads the stored bytes.
 */
interface SessionHash {
  readonly algorithm: Algorithm;
  readonly digester: Digester;
}

// Bounds the memory abandoned sessions can pin (about 2.3 KiB each): the least
// recently used running hashes are dropped first (their sessions still
// complete, by re-hashing). The map is kept in use order, so eviction is O(1).
const MAX_TRACKED_HASHES = 10_000;

export class Uploads {
  readonly #hashes = new Map<string, SessionHash>();

  constructor(
    private readonly deps: {
      blobs: BlobStore;
      metadata: MetadataStore;
      locks: LockManager;
      blobLocks: BlobLocks;
      grants: Grants;
      settings: (namespace: string) => NamespaceSettings;
      logger: Logger;
    },
  ) {}

  async start(namespace: string): Promise<string> {
    const id = randomUUID();
    await this.deps.blobs.createUpload(namespace, id);
    await this.deps.metadata.put(
      keyFor({ kind: 'uploadStartedAt', namespace, id }),
      new Date().toISOString(),
    );
    this.#hashes.set(sessionKey(namespace, id), newSessionHash('sha256'));
    this.#evictOldHashes();
    return id;
  }

  async size(namespace: string, id: string): Promise<number> {
    assertUploadId(id);
    try {
      return await this.deps.blobs.uploadSize(namespace, id);
    } catch (error) {
      if (error instanceof NotFoundError) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
      throw error;
    }
  }

  /** Appends one chunk (PATCH). Returns the session's new size. */
  async append(namespace: string, id: string, body: Readable, chunk: ChunkHeaders): Promise<number> {
    assertUploadId(id);
    return this.deps.locks.withLocks([uploadLockKey(namespace, id)], () =>
      this.#appendLocked(namespace, id, body, chunk),
    );
  }

  /**
   * Completes a session (PUT ?digest=): appends the final chunk if any,
   * verifies the digest of everything received, then commits the blob and
   * grants it to the namespace. On a digest mismatch the session stays, so a
   * client may retry.
   */
  async complete(
    namespace: string,
    id: string,
    expected: DigestParts,
    body: Readable | undefined,
    chunk: ChunkHeaders,
  ): Promise<void> {
    assertUploadId(id);
    await this.deps.locks.withLocks([uploadLockKey(namespace, id)], async () => {
      if (body) await this.#appendLocked(namespace, id, body, chunk);
      else await this.size(namespace, id);
      const actual = await this.#digestOf(namespace, id, expected.algorithm);
      if (actual.hex !== expected.hex) {
        throw new OciError('DIGEST_INVALID', {
          expected: formatDigest(expected),
          actual: formatDigest(actual),
        });
      }
      await this.deps.grants.commitAndGrant(namespace, expected, () =>
        this.deps.blobs.commitUpload(namespace, id, expected),
      );
      await this.deps.metadata.delete(keyFor({ kind: 'uploadStartedAt', namespace, id }));
      this.#hashes.delete(sessionKey(namespace, id));
      this.deps.logger.debug('upload completed', { namespace, digest: formatDigest(expected) });
    });
  }

  async cancel(namespace: string, id: string): Promise<void> {
    assertUploadId(id);
    await this.deps.locks.withLocks([uploadLockKey(namespace, id)], async () => {
      const removed = await this.deps.blobs.deleteUpload(namespace, id);
      await this.deps.metadata.delete(keyFor({ kind: 'uploadStartedAt', namespace, id }));
      this.#hashes.delete(sessionKey(namespace, id));
      if (!removed) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
    });
  }

  async #appendLocked(namespace: string, id: string, body: Readable, chunk: ChunkHeaders): Promise<number> {
    const offset = await this.size(namespace, id);
    if (chunk.range) {
      if (chunk.range.start !== offset) {
        throw new OciError('RANGE_INVALID', { offset, range: `${chunk.range.start}-${chunk.range.end}` });
      }
      const rangeLength = chunk.range.end - chunk.range.start + 1;
      if (chunk.contentLength !== undefined && chunk.contentLength !== rangeLength) {
        throw new OciError('RANGE_INVALID', { contentLength: chunk.contentLength, range: rangeLength });
      }
    }
    const { maxBlobSize } = this.deps.settings(namespace);
    if (chunk.contentLength !== undefined && offset + chunk.contentLength > maxBlobSize) {
      throw new OciError('BLOB_TOO_LARGE', { limit: maxBlobSize });
    }
    const key = sessionKey(namespace, id);
    const hash = this.#hashes.get(key);
    // The running hash is only usable if it has seen every stored byte.
    const usableHash = hash && hash.digester.bytes === offset ? hash : undefined;
    if (!usableHash) this.#hashes.delete(key);
    const guard = new ChunkGuard(offset, maxBlobSize, usableHash?.digester);
    try {
      // The declared length lets the store stream a known-length chunk straight into place (S3 UploadPart).
      const size = await this.deps.blobs.appendUpload(
        namespace,
        id,
        offset,
        guard.wrap(body),
        chunk.contentLength,
      );
      if (usableHash) {
        // Move to the end: the map iterates least recently used first.
        this.#hashes.delete(key);
        this.#hashes.set(key, usableHash);
      }
      return size;
    } catch (error) {
      // Some bytes may have been stored without being hashed or vice versa.
      this.#hashes.delete(key);
      if (error instanceof OffsetMismatchError) throw new OciError('RANGE_INVALID', { offset: error.actual });
      if (error instanceof NotFoundError) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
      throw guard.failure ?? error;
    }
  }

  async #digestOf(namespace: string, id: string, algorithm: Algorithm): Promise<DigestParts> {
    const key = sessionKey(namespace, id);
    const hash = this.#hashes.get(key);
    this.#hashes.delete(key);
    const size = await this.deps.blobs.uploadSize(namespace, id);
    if (hash && hash.algorithm === algorithm && hash.digester.bytes === size) return hash.digester.digest();
    // Re-hash what is stored: after a restart, a failed chunk, or for sha512.
    const digester = createDigester(algorithm);
    await pipeline(await this.deps.blobs.readUpload(namespace, id), async (source: AsyncIterable<Buffer>) => {
      for await (const data of source) digester.update(data);
    });
    return digester.digest();
  }

  #evictOldHashes(): void {
    for (const key of this.#hashes.keys()) {
      if (this.#hashes.size <= MAX_TRACKED_HASHES) return;
      this.#hashes.delete(key);
    }
  }
}

/** Errors reach the consumer of the piped streams; the callback has nothing left to do. */
function ignoreSettled(): void {}

/**
 * Hashes bytes as they pass and stops the stream once the blob would exceed
 * `max_blob_size`. The wrapped stream is pulled lazily, so nothing is read
 * from the client before storage is ready to take it, and a client that
 * disconnects mid-chunk fails the append instead of leaving it waiting.
 */
class ChunkGuard {
  failure: OciError | undefined;
  #total: number;

  constructor(
    offset: number,
    private readonly limit: number,
    private readonly digester: Digester | undefined,
  ) {
    this.#total = offset;
  }

  /**
   * `body` through the checks. A synchronous Transform: an async generator here cost a promise per
   * chunk and measured ~15% of push throughput. Errors travel both ways: a body that fails fails
   * the result, and a destroyed result destroys the body.
   */
  wrap(body: Readable): Readable {
    const checked = new Transform({
      transform: (data: Buffer, _encoding, done) => {
        this.#total += data.length;
        if (this.#total > this.limit) {
          this.failure = new OciError('BLOB_TOO_LARGE', { limit: this.limit });
          done(this.failure);
          return;
        }
        this.digester?.update(data);
        done(null, data);
      },
    });
    return pipeStreams(body, checked, ignoreSettled);
  }
}

function newSessionHash(algorithm: Algorithm): SessionHash {
  return { algorithm, digester: createDigester(algorithm) };
}

function sessionKey(namespace: string, id: string): string {
  return `${namespace}\n${id}`;
}

function uploadLockKey(namespace: string, id: string): string {
  return `upload:${namespace}:${id}`;
}

function assertUploadId(id: string): void {
  if (!UPLOAD_ID.test(id)) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
}
