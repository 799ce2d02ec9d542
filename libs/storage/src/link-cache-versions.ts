/** Slots of the version table, a power of two: 64 Ki slots take 256 KiB. */
const SLOTS = 1 << 16;

/** FNV-1a: spreads keys over the slots; two keys sharing a slot only invalidate each other more often. */
function slotOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) & (SLOTS - 1);
}

/** `a/b/` names the same directory as `a/b`: one slot for both. */
const withoutTrailingSlash = (prefix: string) => prefix.replace(/\/+$/, '');

/** `a/b/c` → `a`, `a/b`, `a/b/c`. */
function selfAndAncestors(key: string): string[] {
  const keys: string[] = [];
  for (let slash = key.indexOf('/'); slash !== -1; slash = key.indexOf('/', slash + 1)) {
    keys.push(key.slice(0, slash));
  }
  if (key !== '') keys.push(key);
  return keys;
}

/** The parent prefixes whose listing a write of `key` may change, the root (`''`) included. */
function parents(key: string): string[] {
  const prefixes = [''];
  for (let slash = key.indexOf('/'); slash !== -1; slash = key.indexOf('/', slash + 1)) {
    prefixes.push(key.slice(0, slash));
  }
  return prefixes;
}

/**
 * The version counters a link cache checks its entries against, in memory the serving threads of
 * one process share (a SharedArrayBuffer handed to each thread): a write through any thread's
 * cache bumps the counters of what it changes, before and after the write, and every thread's
 * cache compares an entry's counters on each hit. A value another thread overwrote is never
 * answered after that write was acknowledged, and no message has to arrive first.
 *
 * An entry watches its own slot and the "removed" slot of each of its ancestors (deletePrefix);
 * a listing watches its listing slot and the same "removed" slots. Its stamp is the sum of those
 * counters: they only grow, so the sum changes whenever one of them does.
 */
export class LinkCacheVersions {
  readonly buffer: SharedArrayBuffer;
  readonly #versions: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT)) {
    if (buffer.byteLength !== SLOTS * Int32Array.BYTES_PER_ELEMENT) {
      throw new Error(`a link cache version table takes ${SLOTS * Int32Array.BYTES_PER_ELEMENT} bytes`);
    }
    this.buffer = buffer;
    this.#versions = new Int32Array(buffer);
  }

  /** The slots a cached value of `path` depends on. */
  linkSlots(path: string): number[] {
    return [slotOf(`link:${path}`), ...selfAndAncestors(path).map((key) => slotOf(`removed:${key}`))];
  }

  /** The slots a cached listing of `prefix` depends on. */
  listingSlots(prefix: string): number[] {
    const key = withoutTrailingSlash(prefix);
    return [slotOf(`list:${key}`), ...selfAndAncestors(key).map((key) => slotOf(`removed:${key}`))];
  }

  stamp(slots: readonly number[]): number {
    let sum = 0;
    for (const slot of slots) sum = (sum + Atomics.load(this.#versions, slot)) | 0;
    return sum;
  }

  /** `path` is being (or was) written or deleted: its value and its parents' listings change. */
  written(path: string): void {
    this.#bump(`link:${path}`);
    for (const prefix of parents(path)) this.#bump(`list:${prefix}`);
  }

  /** Everything under `prefix` is being (or was) removed. */
  removed(prefix: string): void {
    const key = withoutTrailingSlash(prefix);
    this.#bump(`removed:${key}`);
    for (const parent of parents(key)) this.#bump(`list:${parent}`);
  }

  #bump(key: string): void {
    Atomics.add(this.#versions, slotOf(key), 1);
  }
}
