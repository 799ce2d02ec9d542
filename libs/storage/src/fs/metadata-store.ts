import { readdir, readFile, rm, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isTempName } from '../key-rules.js';
import { pageOf } from '../paging.js';
import { InvalidKeyError, type ListPageOptions, type MetadataStore, NotFoundError } from '../types.js';
import { createFileIfAbsent, replaceFile } from './atomic-file.js';
import { asStorageFailure, errnoCode, isMissing } from './errors.js';
import { FsRoot } from './root.js';

export interface FsStoreOptions {
  /** fsync files and directories after writes (`sync_to_disk`): slower, survives power loss. */
  readonly syncToDisk: boolean;
}

/**
 * Metadata as small files under a root directory, one file per key. Writes are
 * atomic (temp file + rename/link). Trusts its keys beyond staying inside the
 * root: use it through withMetadataKeyValidation() (createStores() does).
 *
 * A resource error of the filesystem (full, out of descriptors, failing disk, read-only) fails
 * the operation with a transient StorageError (503 at the HTTP edge); see errors.ts.
 *
 * A key is a value or a prefix, never both: writing a value where a prefix
 * exists (or under a value) throws InvalidKeyError. The layout never does that.
 */
export class FsMetadataStore implements MetadataStore {
  readonly backend = 'fs';
  readonly #root: FsRoot;
  readonly #syncToDisk: boolean;

  constructor(rootDir: string, options: FsStoreOptions) {
    this.#root = new FsRoot(rootDir);
    this.#syncToDisk = options.syncToDisk;
  }

  async get(path: string): Promise<Buffer> {
    return asStorageFailure('get', path, async () => {
      try {
        return await readFile(this.#root.pathOf(path));
      } catch (error) {
        // EISDIR: the key is a prefix, which holds no value.
        if (isMissing(error) || errnoCode(error) === 'EISDIR') throw new NotFoundError(path);
        throw error;
      }
    });
  }

  async put(path: string, data: Uint8Array | string): Promise<void> {
    return asStorageFailure('put', path, async () => {
      const file = this.#root.pathOf(path);
      try {
        await replaceFile(file, data, this.#syncToDisk);
      } catch (error) {
        // A write that failed (a full disk…) leaves no directory it created on the way.
        await this.#root.pruneEmptyDirectories(dirname(file));
        throw asConflict(error, path);
      }
    });
  }

  async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    return asStorageFailure('putIfAbsent', path, async () => {
      const file = this.#root.pathOf(path);
      try {
        return await createFileIfAbsent(file, data, this.#syncToDisk);
      } catch (error) {
        // A write that failed (a full disk…) leaves no directory it created on the way.
        await this.#root.pruneEmptyDirectories(dirname(file));
        throw asConflict(error, path);
      }
    });
  }

  async delete(path: string): Promise<boolean> {
    return asStorageFailure('delete', path, async () => {
      const file = this.#root.pathOf(path);
      try {
        await unlink(file);
      } catch (error) {
        // EISDIR (Linux) / EPERM (macOS): the key is a prefix, not a value.
        const code = errnoCode(error);
        if (isMissing(error) || code === 'EISDIR' || code === 'EPERM') return false;
        throw error;
      }
      await this.#root.pruneEmptyDirectories(dirname(file));
      return true;
    });
  }

  async list(prefix: string): Promise<string[]> {
    return asStorageFailure('list', prefix, async () => {
      let names: string[];
      try {
        names = await readdir(this.#root.pathOf(prefix, true));
      } catch (error) {
        if (isMissing(error)) return [];
        throw error;
      }
      const children = names.filter((name) => !isTempName(name));
      // Default sort compares UTF-16 code units, as `a < b` does: byte order for
      // the ASCII names of the layout, and the same order S3 lists in.
      return children.sort();
    });
  }

  /** A directory has no order on disk: the whole of it is read and sorted, then sliced (no I/O per name). */
  async listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    return pageOf(await this.list(prefix), options);
  }

  async deletePrefix(prefix: string): Promise<void> {
    return asStorageFailure('deletePrefix', prefix, async () => {
      const path = this.#root.pathOf(prefix);
      // maxRetries: a concurrent writer may add a file while the tree is removed (ENOTEMPTY).
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
      await this.#root.pruneEmptyDirectories(dirname(path));
    });
  }
}

/** A value where a prefix is (EISDIR), under a value (ENOTDIR) or as a parent directory name (EEXIST from mkdir). */
function asConflict(error: unknown, path: string): unknown {
  const code = errnoCode(error);
  return code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST' ? new InvalidKeyError(path) : error;
}
