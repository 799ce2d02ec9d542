import { pageOf } from '../paging.js';
import {
  type ConditionalWrites,
  InvalidKeyError,
  type ListPageOptions,
  type MetadataStore,
  NotFoundError,
  type VersionedValue,
} from '../types.js';

/** A prefix "directory": its direct children by name, each a value or a prefix. */
class Directory {
  readonly children = new Map<string, Directory | Buffer>();
}

/**
 * Metadata in a tree of Maps, with the fs driver's semantics: a key is a value
 * or a prefix, never both; deletes leave no empty prefixes behind. Values are
 * copied in and out, so callers can never alter what is stored.
 */
export class MemoryMetadataStore implements MetadataStore {
  readonly backend = 'memory';
  readonly #root = new Directory();
  /**
   * Every write stores a fresh Buffer, so the stored Buffer object itself
   * identifies the value's version: each gets a number when first asked.
   */
  readonly #versions = new WeakMap<Buffer, string>();
  #nextVersion = 0;
  /** Compare-and-swap is trivially atomic here: nothing awaits between the check and the write. */
  readonly conditional: ConditionalWrites = {
    getVersioned: async (path) => this.#getVersioned(path),
    putIfVersion: async (path, data, version) => this.#putIfVersion(path, data, version),
    deleteIfVersion: async (path, version) => this.#deleteIfVersion(path, version),
  };

  async get(path: string): Promise<Buffer> {
    const node = this.#find(path);
    if (!Buffer.isBuffer(node)) throw new NotFoundError(path);
    return Buffer.from(node);
  }

  async put(path: string, data: Uint8Array | string): Promise<void> {
    const { parent, name } = this.#parentFor(path);
    if (parent.children.get(name) instanceof Directory) throw new InvalidKeyError(path);
    parent.children.set(name, toBuffer(data));
  }

  async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    const { parent, name } = this.#parentFor(path);
    if (parent.children.has(name)) return false;
    parent.children.set(name, toBuffer(data));
    return true;
  }

  async delete(path: string): Promise<boolean> {
    const trail = this.#trail(path);
    const last = trail?.at(-1);
    if (last === undefined || !Buffer.isBuffer(last.directory.children.get(last.name))) return false;
    removeAndPrune(trail!);
    return true;
  }

  async list(prefix: string): Promise<string[]> {
    const node = prefix === '' ? this.#root : this.#find(prefix);
    if (!(node instanceof Directory)) return [];
    return [...node.children.keys()].sort();
  }

  async listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    return pageOf(await this.list(prefix), options);
  }

  async deletePrefix(prefix: string): Promise<void> {
    const trail = this.#trail(prefix);
    const last = trail?.at(-1);
    if (last === undefined || !last.directory.children.has(last.name)) return;
    removeAndPrune(trail!);
  }

  #getVersioned(path: string): VersionedValue | undefined {
    const node = this.#find(path);
    if (!Buffer.isBuffer(node)) return undefined;
    return { data: Buffer.from(node), version: this.#versionOf(node) };
  }

  #putIfVersion(path: string, data: Uint8Array | string, version: string | undefined): boolean {
    const current = this.#find(path);
    if (current instanceof Directory) throw new InvalidKeyError(path);
    const matches = current === undefined ? version === undefined : this.#versionOf(current) === version;
    if (!matches) return false;
    const { parent, name } = this.#parentFor(path);
    parent.children.set(name, toBuffer(data));
    return true;
  }

  #deleteIfVersion(path: string, version: string): boolean {
    const trail = this.#trail(path);
    const last = trail?.at(-1);
    const current = last?.directory.children.get(last.name);
    if (!Buffer.isBuffer(current) || this.#versionOf(current) !== version) return false;
    removeAndPrune(trail!);
    return true;
  }

  #versionOf(value: Buffer): string {
    let version = this.#versions.get(value);
    if (version === undefined) {
      version = String(++this.#nextVersion);
      this.#versions.set(value, version);
    }
    return version;
  }

  #find(path: string): Directory | Buffer | undefined {
    let node: Directory | Buffer | undefined = this.#root;
    for (const name of path.split('/')) {
      if (!(node instanceof Directory)) return undefined;
      node = node.children.get(name);
    }
    return node;
  }

  /** The directory that holds `path`, created as needed; InvalidKeyError if a value is in the way. */
  #parentFor(path: string): { parent: Directory; name: string } {
    const names = path.split('/');
    const name = names.pop()!;
    let parent = this.#root;
    for (const segment of names) {
      let child = parent.children.get(segment);
      if (child === undefined) {
        child = new Directory();
        parent.children.set(segment, child);
      }
      if (!(child instanceof Directory)) throw new InvalidKeyError(path);
      parent = child;
    }
    return { parent, name };
  }

  /** Each (directory, child name) step from the root to `path`; undefined if a directory is missing. */
  #trail(path: string): Array<{ directory: Directory; name: string }> | undefined {
    const trail: Array<{ directory: Directory; name: string }> = [];
    let directory: Directory | Buffer | undefined = this.#root;
    for (const name of path.split('/')) {
      if (!(directory instanceof Directory)) return undefined;
      trail.push({ directory, name });
      directory = directory.children.get(name);
    }
    return trail;
  }
}

/** Removes the trail's last entry, then every directory that leaves empty. */
function removeAndPrune(trail: Array<{ directory: Directory; name: string }>): void {
  for (let i = trail.length - 1; i >= 0; i--) {
    const { directory, name } = trail[i]!;
    directory.children.delete(name);
    if (directory.children.size > 0) return;
  }
}

function toBuffer(data: Uint8Array | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
}
