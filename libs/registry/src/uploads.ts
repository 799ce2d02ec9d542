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
  BodyLengthError,
  keyFor,
  type MetadataStore,
  NotFoundError,
  OffsetMismatchError,
  passesChunksOf,
} from '@angos/storage';
import type { Grants } from './grants.js';
import { type SessionClaim, SessionClaims } from './session-claims.js';
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
  readonly #claims: SessionClaims;

  constructor(
    private readonly deps: {
      blobs: BlobStore;
      metadata: MetadataStore;
      locks: LockManager;
      grants: Grants;
      settings: (namespace: string) => NamespaceSettings;
      logger: Logger;
    },
  ) {
    this.#claims = new SessionClaims(deps.metadata);
  }

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

  /**
   * Appends one chunk (PATCH). Returns the session's new size. The session's lock is held only
   * to check the offset and claim the session, and to drop the claim: never while the body streams.
   */
  async append(namespace: string, id: string, body: Readable, chunk: ChunkHeaders): Promise<number> {
    assertUploadId(id);
    const claim = await this.#claim(namespace, id, chunk);
    let size: number;
    try {
      size = await this.#stream(namespace, id, claim.offset, body, chunk);
    } catch (error) {
      await this.#releaseQuietly(namespace, id, claim);
      throw error;
    }
    await this.deps.locks.withLocks([uploadLockKey(namespace, id)], async (signal) => {
      if (!(await this.#claims.holds(namespace, id, claim)))
        await this.#removedWhileStreaming(namespace, id, signal);
      await this.#claims.release(namespace, id, claim, signal);
    });
    return size;
  }

  /**
   * Completes a session (PUT ?digest=): appends the final chunk if any,
   * verifies the digest of everything received, then commits the blob and
   * grants it to the namespace. The body and the re-hash of a large session
   * run under the session's claim only; the lock is held to claim and to
   * commit. On a digest mismatch the session is removed (as distribution
   * does): its final chunk would make every retry of the PUT mismatch, so the
   * client starts again with a new session.
   */
  async complete(
    namespace: string,
    id: string,
    expected: DigestParts,
    body: Readable | undefined,
    chunk: ChunkHeaders,
  ): Promise<void> {
    assertUploadId(id);
    // Without a body there is no chunk whose range to check.
    const claim = await this.#claim(namespace, id, body ? chunk : {});
    let ended = false;
    try {
      if (body) await this.#stream(namespace, id, claim.offset, body, chunk);
      const actual = await this.#digestOf(namespace, id, expected.algorithm);
      if (actual.hex !== expected.hex) {
        await this.#remove(namespace, id);
        ended = true;
        throw new OciError('DIGEST_INVALID', {
          expected: formatDigest(expected),
          actual: formatDigest(actual),
        });
      }
      await this.deps.locks.withLocks([uploadLockKey(namespace, id)], async (signal) => {
        if (!(await this.#claims.holds(namespace, id, claim))) {
          ended = true;
          await this.#removedWhileStreaming(namespace, id, signal);
        }
        signal.throwIfAborted();
        await this.#commit(namespace, id, expected);
        // The session is gone: nothing left to release.
        ended = true;
        signal.throwIfAborted();
        await this.deps.metadata.delete(keyFor({ kind: 'uploadStartedAt', namespace, id }));
        await this.#claims.clear(namespace, id, signal);
        this.#hashes.delete(sessionKey(namespace, id));
      });
    } catch (error) {
      if (!ended) await this.#releaseQuietly(namespace, id, claim);
      throw error;
    }
    this.deps.logger.debug('upload completed', { namespace, digest: formatDigest(expected) });
  }

  async cancel(namespace: string, id: string): Promise<void> {
    assertUploadId(id);
    if (!(await this.#remove(namespace, id))) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
  }

  /** Moves the verified bytes of a session into the blob store and grants the blob to the namespace. */
  async #commit(namespace: string, id: string, expected: DigestParts): Promise<void> {
    await this.deps.grants.commitAndGrant(namespace, expected, () =>
      this.deps.blobs.commitUpload(namespace, id, expected),
    );
  }

  /**
   * A DELETE of the session while this request's body streamed dropped its claim. The store may
   * have saved the session's state again after the DELETE (S3 writes its state object at the end
   * of an append): remove what the append left, and answer as for any unknown session.
   */
  async #removedWhileStreaming(namespace: string, id: string, signal: AbortSignal): Promise<never> {
    signal.throwIfAborted();
    await this.deps.blobs.deleteUpload(namespace, id);
    this.#hashes.delete(sessionKey(namespace, id));
    throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
  }

  /** Removes a session, its start time and its claim; false if it did not exist. */
  async #remove(namespace: string, id: string): Promise<boolean> {
    return this.deps.locks.withLocks([uploadLockKey(namespace, id)], async (signal) => {
      signal.throwIfAborted();
      const removed = await this.deps.blobs.deleteUpload(namespace, id);
      signal.throwIfAborted();
      await this.deps.metadata.delete(keyFor({ kind: 'uploadStartedAt', namespace, id }));
      await this.#claims.clear(namespace, id, signal);
      this.#hashes.delete(sessionKey(namespace, id));
      return removed;
    });
  }

  /**
   * Under the session's lock, briefly: checks the chunk against the session's size and
   * `max_blob_size`, and claims the session for this request (RANGE_INVALID while another holds it).
   */
  async #claim(namespace: string, id: string, chunk: ChunkHeaders): Promise<SessionClaim> {
    let claim: SessionClaim | undefined;
    try {
      return await this.deps.locks.withLocks([uploadLockKey(namespace, id)], async (signal) => {
        const offset = await this.size(namespace, id);
        checkChunk(offset, chunk, this.deps.settings(namespace).maxBlobSize);
        claim = SessionClaims.create(offset);
        if (!(await this.#claims.take(namespace, id, claim, signal))) {
          claim = undefined;
          throw new OciError('RANGE_INVALID', { offset, reason: 'another request is writing this session' });
        }
        return claim;
      });
    } catch (error) {
      // The lock was lost around the claim: do not leave it behind.
      if (claim) await this.#releaseQuietly(namespace, id, claim);
      throw error;
    }
  }

  /** Drops a claim after a failure; a failure to do so leaves the session refusing writers (see SessionClaims). */
  async #releaseQuietly(namespace: string, id: string, claim: SessionClaim): Promise<void> {
    try {
      await this.deps.locks.withLocks([uploadLockKey(namespace, id)], (signal) =>
        this.#claims.release(namespace, id, claim, signal),
      );
    } catch (error) {
      this.deps.logger.warn('upload session claim not released', { namespace, id, error: String(error) });
    }
  }

  /** Streams a chunk into the session at `offset`, under the session's claim. Returns the new size. */
  async #stream(
    namespace: string,
    id: string,
    offset: number,
    body: Readable,
    chunk: ChunkHeaders,
  ): Promise<number> {
    const { maxBlobSize } = this.deps.settings(namespace);
    const key = sessionKey(namespace, id);
    const hash = this.#hashes.get(key);
    // The running hash is only usable if it has seen every stored byte. From offset 0 a new one
    // always is: the session began on another serving thread or replica, or its hash was evicted,
    // and hashing the body as it streams spares reading it back at the PUT.
    const usableHash =
      hash && hash.digester.bytes === offset ? hash : offset === 0 ? newSessionHash('sha256') : undefined;
    if (!usableHash) this.#hashes.delete(key);
    const guard = new ChunkGuard(offset, maxBlobSize, usableHash?.digester);
    // The declared length lets the store stream a known-length chunk straight into place (S3
    // UploadPart), and makes it keep none of a body that belies it. A chunked body (no
    // Content-Length) is held to its Content-Range.
    const length = declaredLength(chunk);
    try {
      const size = await this.deps.blobs.appendUpload(namespace, id, offset, guard.wrap(body), length);
      if (usableHash) {
        // Move to the end: the map iterates least recently used first.
        this.#hashes.delete(key);
        this.#hashes.set(key, usableHash);
        this.#evictOldHashes();
      }
      return size;
    } catch (error) {
      // Some bytes may have been stored without being hashed or vice versa.
      this.#hashes.delete(key);
      if (guard.failure) throw guard.failure;
      if (error instanceof OffsetMismatchError) throw new OciError('RANGE_INVALID', { offset: error.actual });
      if (error instanceof BodyLengthError) {
        throw new OciError('RANGE_INVALID', { declared: error.declared, received: error.received });
      }
      if (error instanceof NotFoundError) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
      throw error;
    }
  }

  async #digestOf(namespace: string, id: string, algorithm: Algorithm): Promise<DigestParts> {
    const key = sessionKey(namespace, id);
    const hash = this.#hashes.get(key);
    this.#hashes.delete(key);
    // A DELETE may have ended the session since it was claimed.
    const size = await this.size(namespace, id);
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

/** A chunk must start where the session ends, agree with its own headers, and keep the blob within `max_blob_size`. */
function checkChunk(offset: number, chunk: ChunkHeaders, maxBlobSize: number): void {
  if (chunk.range) {
    if (chunk.range.start !== offset) {
      throw new OciError('RANGE_INVALID', { offset, range: `${chunk.range.start}-${chunk.range.end}` });
    }
    const rangeLength = chunk.range.end - chunk.range.start + 1;
    if (chunk.contentLength !== undefined && chunk.contentLength !== rangeLength) {
      throw new OciError('RANGE_INVALID', { contentLength: chunk.contentLength, range: rangeLength });
    }
  }
  const length = declaredLength(chunk);
  if (length !== undefined && offset + length > maxBlobSize) {
    throw new OciError('BLOB_TOO_LARGE', { limit: maxBlobSize });
  }
}

/** How long a chunk says it is: its Content-Length, or for a chunked body its Content-Range. */
function declaredLength(chunk: ChunkHeaders): number | undefined {
  return chunk.contentLength ?? (chunk.range && chunk.range.end - chunk.range.start + 1);
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
    return passesChunksOf(body, pipeStreams(body, checked, ignoreSettled));
  }
}

function newSessionHash(algorithm: Algorithm): SessionHash {
  return { algorithm, digester: createDigester(algorithm) };
}

function sessionKey(namespace: string, id: string): string {
  return `${namespace}\n${id}`;
}

/** An upload session: held around its transitions (claim, commit, removal). */
export function uploadLockKey(namespace: string, id: string): string {
  return `upload:${namespace}:${id}`;
}

function assertUploadId(id: string): void {
  if (!UPLOAD_ID.test(id)) throw new OciError('BLOB_UPLOAD_UNKNOWN', { id });
}
