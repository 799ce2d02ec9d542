import { opendir, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { isTempName } from '../key-rules.js';
import { type Algorithm, type DigestParts, keyFor } from '../keys.js';
import { KeyedSerializer } from '../serial.js';
import { type BlobCopy, type BlobStore, type ByteRange, NotFoundError } from '../types.js';
import { createFileIfAbsent, linkIfAbsent, openCreatingDirectory, syncDirectory } from './atomic-file.js';
import { isMissing } from './errors.js';
import { appendToFile, openFileCopy, openReadStream } from './file-streams.js';
import type { FsStoreOptions } from './metadata-store.js';
import { FsRoot } from './root.js';

const ALGORITHMS: readonly Algorithm[] = ['sha256', 'sha512'];

/**
 * Blobs as files under `_blobs/<alg>/<hex>`, upload sessions as one growing
 * `data` file each. A blob file appears only complete: small blobs via temp
 * file + link, uploads by linking the finished session file into place.
 * Trusts its keys beyond staying inside the root: use it through
 * withBlobKeyValidation() (createStores() does).
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
    const size = await this.#fileSize(this.#blobPath(digest));
    if (size === undefined) throw new NotFoundError(keyFor({ kind: 'blob', digest }));
    return { size };
  }

  async readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable> {
    return openReadStream(this.#blobPath(digest), () => keyFor({ kind: 'blob', digest }), range);
  }

  async openBlobCopy(digest: DigestParts, range?: ByteRange): Promise<BlobCopy> {
    return openFileCopy(this.#blobPath(digest), () => keyFor({ kind: 'blob', digest }), range);
  }

  async putBlob(digest: DigestParts, data: Uint8Array): Promise<void> {
    const path = this.#blobPath(digest);
    // Re-pushes of the same manifest are common: one stat spares the write.
    if ((await this.#fileSize(path)) !== undefined) return;
    await createFileIfAbsent(path, data, this.#syncToDisk);
  }

  async deleteBlob(digest: DigestParts): Promise<boolean> {
    return this.#deleteFile(this.#blobPath(digest));
  }

  async *listBlobs(): AsyncIterable<DigestParts> {
    for (const algorithm of ALGORITHMS) {
      const dir = this.#root.pathOf(`_blobs/${algorithm}`);
      let entries: AsyncIterable<{ name: string }>;
      try {
        // opendir streams the directory: millions of blobs never sit in one array.
        entries = await opendir(dir, { bufferSize: 1024 });
      } catch (error) {
        if (isMissing(error)) continue;
        throw error;
      }
      for await (const entry of entries) {
        if (!isTempName(entry.name)) yield { algorithm, hex: entry.name };
      }
    }
  }

  async createUpload(namespace: string, id: string): Promise<void> {
    const path = this.#uploadPath(namespace, id);
    // 'wx' (O_EXCL): an id is fresh; reusing one is a caller bug and throws EEXIST.
    const handle = await openCreatingDirectory(path, 'wx', this.#syncToDisk);
    await handle.close();
    if (this.#syncToDisk) await syncDirectory(dirname(path));
  }

  async uploadSize(namespace: string, id: string): Promise<number> {
    const size = await this.#fileSize(this.#uploadPath(namespace, id));
    if (size === undefined) throw new NotFoundError(uploadKey(namespace, id));
    return size;
  }

  async appendUpload(namespace: string, id: string, offset: number, body: Readable): Promise<number> {
    const path = this.#uploadPath(namespace, id);
    // The file is the session's state: uploadSize() reports exactly the bytes that reached it.
    return this.#sessions.run(path, () =>
      appendToFile(path, () => uploadKey(namespace, id), offset, body, this.#syncToDisk),
    );
  }

  async readUpload(namespace: string, id: string): Promise<Readable> {
    return openReadStream(this.#uploadPath(namespace, id), () => uploadKey(namespace, id));
  }

  async commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void> {
    const path = this.#uploadPath(namespace, id);
    return this.#sessions.run(path, async () => {
      // No fsync of the data here: with syncToDisk every append already did it.
      // link() never replaces: if the blob exists it is kept and the session's
      // bytes are dropped with the session below.
      let linked: boolean;
      try {
        linked = await linkIfAbsent(path, this.#blobPath(digest), this.#syncToDisk);
      } catch (error) {
        if (isMissing(error)) throw new NotFoundError(uploadKey(namespace, id));
        throw error;
      }
      const removed = await this.#deleteFile(path);
      // The blob existed (no link made) and there was no session either.
      if (!linked && !removed) throw new NotFoundError(uploadKey(namespace, id));
    });
  }

  async deleteUpload(namespace: string, id: string): Promise<boolean> {
    return this.#deleteFile(this.#uploadPath(namespace, id));
  }

  #blobPath(digest: DigestParts): string {
    return this.#root.pathOf(keyFor({ kind: 'blob', digest }));
  }

  #uploadPath(namespace: string, id: string): string {
    return this.#root.pathOf(uploadKey(namespace, id));
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

function uploadKey(namespace: string, id: string): string {
  return keyFor({ kind: 'uploadData', namespace, id });
}
