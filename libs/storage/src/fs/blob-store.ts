import type { Dirent } from 'node:fs';
import { type FileHandle, opendir, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { isTempName } from '../key-rules.js';
import { type Algorithm, type DigestParts, keyFor, legacyKeyFor } from '../keys.js';
import { KeyedSerializer } from '../serial.js';
import { type BlobCopy, type BlobStore, type ByteRange, NotFoundError } from '../types.js';
import { createFileIfAbsent, linkIfAbsent, openCreatingDirectory, syncDirectory } from './atomic-file.js';
import { asStorageFailure, errnoCode, isMissing, toStorageError } from './errors.js';
import { appendToFile, openFileCopy, openReadStream } from './file-streams.js';
import type { FsStoreOptions } from './metadata-store.js';
import { FsRoot } from './root.js';

const ALGORITHMS: readonly Algorithm[] = ['sha256', 'sha512'];
/** `_blobs/<alg>/<hex[0:2]>/`: the name length of a fan-out directory (a digest's hex is far longer). */
const FAN_OUT_LENGTH = 2;

/**
 * Blobs as files under `_blobs/<alg>/<hex[0:2]>/<hex>`, upload sessions as one growing `data`
 * file each. A blob file appears only complete: small blobs via temp file + link, uploads by
 * linking the finished session file into place. Blobs a store wrote before the fan-out, at
 * `_blobs/<alg>/<hex>`, are read, listed and deleted in place (keys.ts says why).
 *
 * A resource error of the filesystem (full, out of descriptors, failing disk, read-only) fails
 * the operation with a transient StorageError (503 at the HTTP edge); see errors.ts.
 *
 * Trusts its keys beyond staying inside the root: use it through withBlobKeyValidation()
 * (createStores() does).
 */
export class FsBlobStore implements BlobStore {
  readonly backend = 'fs';
  readonly #root: FsRoot;
  readonly #syncToDisk: boolean;
  /** Appends and commits of one session never overlap in this process. */
  readonly #sessions = new KeyedSerializer();

  constructor(rootDir: string, options: FsStoreOptions) {
    this.#root = new FsRoot(rootDir);
    this.#syncToDisk = options.syncToDisk;
  }

  async statBlob(digest: DigestParts): Promise<{ size: number }> {
    return asStorageFailure('statBlob', blobKey(digest), async () => {
      const size =
        (await this.#fileSize(this.#blobPath(digest))) ?? (await this.#fileSize(this.#legacyPath(digest)));
      if (size === undefined) throw new NotFoundError(blobKey(digest));
      return { size };
    });
  }

  async readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable> {
    return asStorageFailure('readBlob', blobKey(digest), () =>
      this.#openEitherLayout(digest, (path) => openReadStream(path, () => blobKey(digest), range)),
    );
  }

  async openBlobCopy(digest: DigestParts, range?: ByteRange): Promise<BlobCopy> {
    const key = blobKey(digest);
    const copy = await asStorageFailure('openBlobCopy', key, () =>
      this.#openEitherLayout(digest, (path) => openFileCopy(path, () => key, range)),
    );
    return {
      close: () => copy.close(),
      copyTo: (destination) => asStorageFailure('openBlobCopy', key, () => copy.copyTo(destination)),
    };
  }

  async putBlob(digest: DigestParts, data: Uint8Array): Promise<void> {
    return asStorageFailure('putBlob', blobKey(digest), async () => {
      // Re-pushes of the same manifest are common: one stat spares the write.
      if (await this.#exists(digest)) return;
      const path = this.#blobPath(digest);
      try {
        await createFileIfAbsent(path, data, this.#syncToDisk);
      } catch (error) {
        // A write that failed (a full disk…) leaves no directory it created on the way.
        await this.#root.pruneEmptyDirectories(dirname(path));
        throw error;
      }
    });
  }

  async deleteBlob(digest: DigestParts): Promise<boolean> {
    return asStorageFailure('deleteBlob', blobKey(digest), async () => {
      const legacy = await this.#deleteFile(this.#legacyPath(digest));
      const current = await this.#deleteFile(this.#blobPath(digest));
      return legacy || current;
    });
  }

  /**
   * Walks `_blobs/<alg>/`: each two-character directory holds blobs of the fanned-out layout,
   * each other entry is a blob of the legacy flat layout (keys.ts). A blob present in both (only
   * an earlier version writing beside this one makes that) is listed twice.
   */
  async *listBlobs(): AsyncIterable<DigestParts> {
    for (const algorithm of ALGORITHMS) {
      const dir = `_blobs/${algorithm}`;
      for await (const entry of this.#listDirectory('listBlobs', dir)) {
        if (isTempName(entry.name)) continue;
        // Told apart by name, not by file type: some filesystems (XFS without ftype, some NFS
        // servers) report every entry's type as unknown.
        if (entry.name.length !== FAN_OUT_LENGTH) {
          yield { algorithm, hex: entry.name };
          continue;
        }
        for await (const blob of this.#listDirectory('listBlobs', `${dir}/${entry.name}`)) {
          if (!isTempName(blob.name)) yield { algorithm, hex: blob.name };
        }
      }
    }
  }

  async createUpload(namespace: string, id: string): Promise<void> {
    const path = this.#uploadPath(namespace, id);
    return asStorageFailure('createUpload', uploadKey(namespace, id), async () => {
      // 'wx' (O_EXCL): an id is fresh; reusing one is a caller bug and throws EEXIST.
      let handle: FileHandle;
      try {
        handle = await openCreatingDirectory(path, 'wx', this.#syncToDisk);
      } catch (error) {
        // Nothing of the session stays behind a failed create (a full disk…).
        if (errnoCode(error) !== 'EEXIST') await this.#root.pruneEmptyDirectories(dirname(path));
        throw error;
      }
      await handle.close();
      if (this.#syncToDisk) await syncDirectory(dirname(path));
    });
  }

  async uploadSize(namespace: string, id: string): Promise<number> {
    return asStorageFailure('uploadSize', uploadKey(namespace, id), async () => {
      const size = await this.#fileSize(this.#uploadPath(namespace, id));
      if (size === undefined) throw new NotFoundError(uploadKey(namespace, id));
      return size;
    });
  }

  async appendUpload(namespace: string, id: string, offset: number, body: Readable): Promise<number> {
    const path = this.#uploadPath(namespace, id);
    // The file is the session's state: uploadSize() reports exactly the bytes that reached it.
    return asStorageFailure('appendUpload', uploadKey(namespace, id), () =>
      this.#sessions.run(path, () =>
        appendToFile(path, () => uploadKey(namespace, id), offset, body, this.#syncToDisk),
      ),
    );
  }

  async readUpload(namespace: string, id: string): Promise<Readable> {
    return asStorageFailure('readUpload', uploadKey(namespace, id), () =>
      openReadStream(this.#uploadPath(namespace, id), () => uploadKey(namespace, id)),
    );
  }

  async commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void> {
    const path = this.#uploadPath(namespace, id);
    const commit = async () => {
      // No fsync of the data here: with syncToDisk every append already did it.
      // link() never replaces: if the blob exists (in either layout) it is kept and the
      // session's bytes are dropped with the session below.
      let linked = false;
      try {
        if ((await this.#fileSize(this.#legacyPath(digest))) === undefined) {
          linked = await linkIfAbsent(path, this.#blobPath(digest), this.#syncToDisk);
        }
      } catch (error) {
        await this.#root.pruneEmptyDirectories(dirname(this.#blobPath(digest)));
        if (isMissing(error)) throw new NotFoundError(uploadKey(namespace, id));
        throw error;
      }
      const removed = await this.#deleteFile(path);
      // The blob existed (no link made) and there was no session either.
      if (!linked && !removed) throw new NotFoundError(uploadKey(namespace, id));
    };
    return asStorageFailure('commitUpload', uploadKey(namespace, id), () => this.#sessions.run(path, commit));
  }

  async deleteUpload(namespace: string, id: string): Promise<boolean> {
    return asStorageFailure('deleteUpload', uploadKey(namespace, id), () =>
      this.#deleteFile(this.#uploadPath(namespace, id)),
    );
  }

  #blobPath(digest: DigestParts): string {
    return this.#root.pathOf(blobKey(digest));
  }

  #legacyPath(digest: DigestParts): string {
    return this.#root.pathOf(legacyKeyFor({ kind: 'blob', digest }));
  }

  #uploadPath(namespace: string, id: string): string {
    return this.#root.pathOf(uploadKey(namespace, id));
  }

  async #exists(digest: DigestParts): Promise<boolean> {
    return (
      (await this.#fileSize(this.#blobPath(digest))) !== undefined ||
      (await this.#fileSize(this.#legacyPath(digest))) !== undefined
    );
  }

  /** Opens the blob where it is: its fanned-out path, else its legacy one (NotFoundError from `open` if neither). */
  async #openEitherLayout<T>(digest: DigestParts, open: (path: string) => Promise<T>): Promise<T> {
    try {
      return await open(this.#blobPath(digest));
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
    return open(this.#legacyPath(digest));
  }

  /** Streams a directory's entries (none if it is absent): millions of blobs never sit in one array. */
  async *#listDirectory(operation: string, key: string): AsyncIterable<Dirent> {
    let entries: AsyncIterable<Dirent>;
    try {
      entries = await opendir(this.#root.pathOf(key), { bufferSize: 1024 });
    } catch (error) {
      if (isMissing(error)) return;
      throw toStorageError(error, operation, key);
    }
    try {
      yield* entries;
    } catch (error) {
      // The directory went away while listed (pruned once its last blob was deleted).
      if (isMissing(error)) return;
      throw toStorageError(error, operation, key);
    }
  }

  async #fileSize(path: string): Promise<number | undefined> {
    try {
      const stats = await stat(path);
      return stats.isFile() ? stats.size : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /**
   * Unlinks one file and prunes the directories it leaves empty. Only the file:
   * when blob and metadata stores share a root, an upload session directory also
   * holds the metadata store's `startedat`, which is that store's to delete.
   */
  async #deleteFile(path: string): Promise<boolean> {
    try {
      await unlink(path);
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
    await this.#root.pruneEmptyDirectories(dirname(path));
    return true;
  }
}

function blobKey(digest: DigestParts): string {
  return keyFor({ kind: 'blob', digest });
}

function uploadKey(namespace: string, id: string): string {
  return keyFor({ kind: 'uploadData', namespace, id });
}
