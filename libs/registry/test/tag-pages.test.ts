import { randomUUID } from 'node:crypto';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { OciError } from '@angos/oci';
import { keyFor, MemoryBlobStore, type MetadataStore, withMetadataKeyValidation } from '@angos/storage';
import { probeCapabilities, S3Bucket, S3MetadataStore } from '@angos/storage/s3';
import { configOf, s3Connection, wipeBucket } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry, type Registry } from '../src/index.js';
import { tagListingStart } from '../src/tag-pages.js';
import {
  manifestOf,
  putManifest,
  type StoreKind,
  s3Server,
  type TestRegistry,
  testRegistry,
  upload,
} from './support.js';

const NS = 't/app';

/** Tags that sort close to each other and to the `last` values below, across the whole tag alphabet. */
const TAGS = [
  '0',
  '9z',
  'A',
  'V1',
  'Z_',
  '_x',
  'a',
  'latest',
  'v1',
  'v1--x',
  'v1-rc',
  'v1-rc.2',
  'v1.0',
  'v1.0-1',
  'v10',
  'v1_9',
  'v1a',
  'z'.repeat(128),
];

/** `?last=` as clients may send it: tags, their prefixes, and what no tag can be. */
const LASTS = [
  undefined,
  '',
  'v1',
  'v1-',
  'v1.0',
  'v1/',
  'v1/zzz',
  'v1 ',
  'v1,',
  'v1~',
  'v1\u00e9',
  'v1\u0000',
  'v1\u{1F600}',
  '\u{1F600}',
  '/',
  '~',
  '-',
  '.',
  '_',
  'V',
  'a'.repeat(300),
  'z'.repeat(128),
  'z'.repeat(129),
  'zzzz',
];

/** Put straight into the store: the listing reads names only. */
async function seedTags(metadata: MetadataStore, namespace: string, tags: readonly string[], link: Buffer) {
  for (let start = 0; start < tags.length; start += 16) {
    await Promise.all(
      tags
        .slice(start, start + 16)
        .map((tag) => metadata.put(keyFor({ kind: 'tagLink', namespace, tag }), link)),
    );
  }
}

async function tagLink(registry: Registry, metadata: MetadataStore): Promise<Buffer> {
  await upload(registry, NS, 'config');
  await putManifest(registry, NS, 'base', manifestOf('config', []));
  return metadata.get(keyFor({ kind: 'tagLink', namespace: NS, tag: 'base' }));
}

/** Every tag, page by page as a client follows the Link header: a page of `n` after the last one seen. */
async function walk(registry: Registry, n: number): Promise<string[][]> {
  const pages: string[][] = [];
  let last: string | undefined;
  for (;;) {
    const { tags, more } = await registry.manifests.listTags(NS, { limit: n, last });
    pages.push(tags);
    if (!more) return pages;
    last = tags.at(-1);
  }
}

describe('tagListingStart', () => {
  it('stands for `last` among every valid tag, and is a plain key segment', () => {
    const candidates = [...TAGS, 'v1-', 'v1-rc', 'v1.', 'v1.0.0', 'v1_', 'v1z', 'zz', 'z'.repeat(127)];
    for (const last of LASTS) {
      const start = tagListingStart(last);
      if (start !== undefined) expect(start).toMatch(/^[-.0-9A-Z_a-z~]{1,129}$/);
      for (const tag of candidates) {
        const after = last === undefined || tag > last;
        expect({ last, tag, after: start === undefined || tag > start }).toEqual({ last, tag, after });
      }
    }
  });
});

let current: TestRegistry | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const KINDS: readonly StoreKind[] = s3Server ? ['memory', 'fs', 's3'] : ['memory', 'fs'];
describe.each(KINDS)('tag list pages on %s storage', (kind) => {
  it('answers every page as the whole sorted listing cut after `last` would', async () => {
    current = await testRegistry(kind);
    const { registry, metadata } = current;
    await seedTags(metadata.store, NS, TAGS, await tagLink(registry, metadata.store));
    const all = [...TAGS, 'base'].sort();
    expect((await registry.manifests.listTags(NS, {})).tags).toEqual(all);
    for (const last of LASTS) {
      const after = last === undefined ? all : all.filter((tag) => tag > last);
      for (const limit of [undefined, 0, 1, 3, 100]) {
        const expected = {
          tags: after.slice(0, limit ?? after.length),
          more: after.length > (limit ?? Infinity),
        };
        expect({ last, limit, ...(await registry.manifests.listTags(NS, { limit, last })) }).toEqual({
          last,
          limit,
          ...expected,
        });
      }
    }
    expect((await walk(registry, 4)).flat()).toEqual(all);
  });

  it('answers NAME_UNKNOWN for a namespace without tags or manifests, whatever the page', async () => {
    current = await testRegistry(kind);
    const { registry } = current;
    for (const options of [{}, { limit: 0 }, { limit: 5, last: 'v1' }, { last: 'v1' }]) {
      const error = await registry.manifests.listTags('no/such', options).catch((e: unknown) => e);
      expect(error instanceof OciError && error.code).toBe('NAME_UNKNOWN');
    }
    // Past its last tag, a namespace that exists answers an empty page.
    await tagLink(registry, current.metadata.store);
    expect(await registry.manifests.listTags(NS, { limit: 5, last: 'zzz' })).toEqual({
      tags: [],
      more: false,
    });
  });
});

describe.skipIf(!s3Server)('tag list pages on S3 (Ceph RGW)', () => {
  it('lists each page from the last tag of the one before, never from the first tag', async () => {
    const keyPrefix = `angos-registry-test/${randomUUID()}`;
    const bucket = new S3Bucket(s3Connection(s3Server!, keyPrefix));
    // Every ListObjectsV2 the store sends, as the options of the bucket's one listing call.
    const listings: Array<{ prefix: string; startAfter: string | undefined; maxKeys: number | undefined }> =
      [];
    const listPage = bucket.listPage.bind(bucket);
    bucket.listPage = (prefix, options) => {
      listings.push({ prefix, startAfter: options.startAfter, maxKeys: options.maxKeys });
      return listPage(prefix, options);
    };
    try {
      const metadata = withMetadataKeyValidation(
        new S3MetadataStore(bucket, await probeCapabilities(bucket)),
      );
      const config = configOf();
      const registry = createRegistry({
        blobs: new MemoryBlobStore(),
        metadata,
        locks: new MemoryLockManager(),
        config: () => config,
        logger: silentLogger,
      });
      const tags = Array.from({ length: 299 }, (_, i) => `t${String(i).padStart(3, '0')}`);
      await seedTags(metadata, NS, tags, await tagLink(registry, metadata));
      const directory = `${keyFor({ kind: 'tags', namespace: NS })}/`;

      listings.length = 0;
      const pages = await walk(registry, 25);
      expect(pages.flat()).toEqual(['base', ...tags]);
      expect(pages).toHaveLength(12);
      // One request per page, from where the page before ended, for no more than a page (25 tags,
      // one to know whether more follow, one for the last tag itself, which S3 lists again).
      expect(listings).toHaveLength(12);
      expect(listings.map((listing) => listing.prefix)).toEqual(Array(12).fill(directory));
      expect(listings.map((listing) => listing.startAfter)).toEqual([
        undefined,
        ...pages.slice(0, -1).map((page) => `${directory}${page.at(-1)}`),
      ]);
      for (const listing of listings) expect(listing.maxKeys).toBe(27);
    } finally {
      bucket.destroy();
      await wipeBucket(new S3Bucket(s3Connection(s3Server!, keyPrefix)));
    }
  });
});
