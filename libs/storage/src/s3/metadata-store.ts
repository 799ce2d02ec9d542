import { assertValidPageOptions } from '../paging.js';
import type { ConditionalWrites, ListPageOptions, MetadataStore, VersionedValue } from '../types.js';
import { NotFoundError } from '../types.js';
import type { S3Bucket } from './bucket.js';
import type { S3Capabilities } from './options.js';

/**
 * How often putIfAbsent retries when its conditional write was refused but
 * the key turns out absent (a concurrent conditional write that then failed:
 * AWS answers 409 to the loser of such a race).
 */
const CREATE_ATTEMPTS = 5;
/** The most keys one ListObjectsV2 returns. */
const MAX_KEYS_PER_LIST = 1000;

/**
 * Metadata as one S3 object per key, under the bucket's key prefix. S3 has no
 * directories: a "prefix" exists while some key lies below it, so deletes
 * leave no empty parents by construction.
 *
 * Atomicity comes from S3 itself: a PUT replaces an object whole. putIfAbsent
 * is atomic when the provider honours `If-None-Match: *` (capability
 * `put_if_none_match`); without it, it is a HEAD then a PUT, which two
 * replicas can race. `conditional` (compare-and-swap) is offered only when
 * both `put_if_none_match` and `put_if_match` hold.
 */
export class S3MetadataStore implements MetadataStore {
  readonly backend = 's3';
  readonly conditional: ConditionalWrites | undefined;
  readonly #bucket: S3Bucket;
  readonly #capabilities: S3Capabilities;

  constructor(bucket: S3Bucket, capabilities: S3Capabilities) {
    this.#bucket = bucket;
    this.#capabilities = capabilities;
    if (capabilities.putIfNoneMatch && capabilities.putIfMatch) {
      const cas: ConditionalWrites = {
        getVersioned: (path) => this.#getVersioned(path),
        putIfVersion: (path, data, version) =>
          bucket.put(
            path,
            toBuffer(data),
            version === undefined ? { ifNoneMatch: '*' } : { ifMatch: version },
          ),
      };
      if (capabilities.deleteIfMatch) {
        cas.deleteIfVersion = (path, version) => this.#deleteIfVersion(path, version);
      }
      this.conditional = cas;
    }
  }

  async get(path: string): Promise<Buffer> {
    const found = await this.#bucket.getBuffer(path);
    if (found === undefined) throw new NotFoundError(path);
    return found.data;
  }

  async put(path: string, data: Uint8Array | string): Promise<void> {
    await this.#bucket.put(path, toBuffer(data));
  }

  async putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    const bytes = toBuffer(data);
    if (!this.#capabilities.putIfNoneMatch) {
      if ((await this.#bucket.head(path)) !== undefined) return false;
      await this.#bucket.put(path, bytes);
      return true;
    }
    for (let attempt = 1; ; attempt++) {
      if (await this.#bucket.put(path, bytes, { ifNoneMatch: '*' })) return true;
      if (attempt >= CREATE_ATTEMPTS || (await this.#bucket.head(path)) !== undefined) return false;
    }
  }

  async delete(path: string): Promise<boolean> {
    // S3 answers a DELETE the same whether the key existed or not.
    if ((await this.#bucket.head(path)) === undefined) return false;
    await this.#bucket.delete(path);
    return true;
  }

  async list(prefix: string): Promise<string[]> {
    const listed = prefix === '' ? '' : `${prefix}/`;
    const names = new Set<string>();
    let continuationToken: string | undefined;
    do {
      const page = await this.#bucket.listPage(listed, { delimiter: '/', continuationToken });
      for (const key of page.keys) names.add(key.slice(listed.length));
      for (const sub of page.prefixes) names.add(sub.slice(listed.length, -1));
      continuationToken = page.next;
    } while (continuationToken !== undefined);
    // S3 lists in UTF-8 byte order; the contract (and fs) say UTF-16 code unit order.
    return [...names].sort();
  }

  /**
   * ListObjectsV2 from `StartAfter` `<prefix>/<after>` with `MaxKeys` one more than the page: a
   * prefix `after/` sorts after that key and comes back as a common prefix, which is dropped. One
   * request for a page of up to 999 names, plus one per name that S3 orders after the page
   * although it belongs in it (`#withPrefixesListedLater`).
   */
  async listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    assertValidPageOptions(options);
    const { after, limit } = options;
    const listed = prefix === '' ? '' : `${prefix}/`;
    const names = new Set<string>();
    const keep = (name: string) => {
      if (after === undefined || name > after) names.add(name);
    };
    let continuationToken: string | undefined;
    do {
      const page = await this.#bucket.listPage(listed, {
        delimiter: '/',
        continuationToken,
        startAfter: after === undefined ? undefined : `${listed}${after}`,
        maxKeys: Math.min(limit + 1, MAX_KEYS_PER_LIST),
      });
      for (const key of page.keys) keep(key.slice(listed.length));
      for (const sub of page.prefixes) keep(sub.slice(listed.length, -1));
      continuationToken = page.next;
    } while (continuationToken !== undefined && names.size < limit);
    // S3 lists in UTF-8 byte order; the contract (and fs) say UTF-16 code unit order.
    const sorted = [...names].sort().slice(0, limit);
    if (continuationToken === undefined || sorted.length < limit) return sorted;
    return (await this.#withPrefixesListedLater(listed, sorted, after)).slice(0, limit);
  }

  /**
   * S3 orders a "directory" by its key prefix, `name/`, not by its name: `v1/` comes after `v1-rc/`
   * and `v1.0/` (`-` and `.` sort before `/`), where the contract puts `v1` first. A listing cut
   * short therefore holds every name that sorts before the last one it returned, `last`, except
   * the directories whose name is a proper prefix of `last` followed there by a character below
   * `/`: any other name below `last` also sorts below it as S3 orders keys, so it came back
   * earlier. Those few (one per `-` or `.` in a tag) are looked for one by one.
   */
  async #withPrefixesListedLater(
    listed: string,
    sorted: readonly string[],
    after: string | undefined,
  ): Promise<string[]> {
    const last = sorted.at(-1)!;
    const found = [...sorted];
    for (let length = 1; length < last.length; length++) {
      if (last[length]! >= '/') continue;
      const name = last.slice(0, length);
      if ((after !== undefined && name <= after) || sorted.includes(name)) continue;
      const page = await this.#bucket.listPage(`${listed}${name}/`, { maxKeys: 1 });
      if (page.keys.length > 0) found.push(name);
    }
    return found.sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    const keys = [prefix];
    for await (const key of this.#bucket.listKeys(`${prefix}/`)) keys.push(key);
    await this.#bucket.deleteMany(keys);
  }

  async check(): Promise<void> {
    await this.#bucket.probeAccess();
  }

  async close(): Promise<void> {
    this.#bucket.destroy();
  }

  async #getVersioned(path: string): Promise<VersionedValue | undefined> {
    const found = await this.#bucket.getBuffer(path);
    return found && { data: found.data, version: found.etag };
  }

  async #deleteIfVersion(path: string, version: string): Promise<boolean> {
    // A DELETE of an absent key succeeds on S3; the version cannot match nothing.
    if ((await this.#bucket.head(path)) === undefined) return false;
    return this.#bucket.delete(path, version);
  }
}

function toBuffer(data: Uint8Array | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
}
