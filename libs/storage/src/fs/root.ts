import { rmdir } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { InvalidKeyError } from '../types.js';

/**
 * A storage root directory: turns keys into paths that provably stay inside it,
 * and removes directories that deletes leave empty.
 */
export class FsRoot {
  readonly dir: string;
  readonly #dirWithSep: string;

  constructor(rootDir: string) {
    this.dir = resolve(rootDir);
    this.#dirWithSep = this.dir.endsWith(sep) ? this.dir : this.dir + sep;
  }

  /**
   * The path of a key. Keys are validated before they reach a driver; this is
   * the second line of defence for a driver used unwrapped: whatever the key,
   * the result is inside the root (the root itself only when `allowRoot`).
   */
  pathOf(key: string, allowRoot = false): string {
    const path = join(this.dir, key);
    if (
      path.startsWith(this.#dirWithSep)
        ? path.length > this.#dirWithSep.length
        : allowRoot && path === this.dir
    ) {
      return path;
    }
    throw new InvalidKeyError(key);
  }

  /**
   * Removes `dir` and its ancestors while they are empty, stopping below the
   * root. Best effort and race-tolerant: a directory that another writer just
   * filled (ENOTEMPTY/EEXIST) or another delete just removed (ENOENT) ends the
   * walk, and no error here can fail the delete that already succeeded.
   */
  async pruneEmptyDirectories(dir: string): Promise<void> {
    let current = dir;
    while (current.length > this.#dirWithSep.length && current.startsWith(this.#dirWithSep)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
      current = dirname(current);
    }
  }
}
