import { keyFor, type MetadataStore } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { listNamespaces } from '../src/catalog.js';
import { encodeLink } from '../src/links.js';
import { digestOf, type StoreKind, s3Server, type TestRegistry, testRegistry } from './support.js';

/**
 * Namespaces whose paths sort otherwise than a plain walk of the tree visits them: `a-b` and `a.c`
 * come between `a` and `a/x`, `team-x/app` between `team` and `team/app`.
 */
const NAMESPACES = [
  'a',
  'a-b',
  'a.c',
  'a/x',
  'a/x-y',
  'a/x/z',
  'a0',
  'a_b',
  'b/c/d',
  'lib/app',
  'team-x/app',
  'team/app',
  'team/app-2',
  'team/app/sub',
  'z',
];

/** A manifest revision link in each namespace; `empty` holds only an upload, `gone` a pull time. */
async function seed(metadata: MetadataStore): Promise<void> {
  const digest = digestOf('manifest');
  const link = encodeLink({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 });
  await Promise.all(
    NAMESPACES.map((namespace) => metadata.put(keyFor({ kind: 'revisionLink', namespace, digest }), link)),
  );
  await metadata.put(keyFor({ kind: 'uploadStartedAt', namespace: 'empty', id: 'u1' }), '0');
  await metadata.put(keyFor({ kind: 'pulledAt', namespace: 'a/gone', digest }), '0');
}

const LASTS = [
  undefined,
  '',
  ...NAMESPACES,
  'a/',
  'a/x/',
  'a/x/zz',
  'a-',
  'team',
  'team/',
  'team/app/',
  'team/zzz',
  'zz',
  '~',
  '\u{1F600}',
];

let current: TestRegistry | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

const KINDS: readonly StoreKind[] = s3Server ? ['memory', 'fs', 's3'] : ['memory', 'fs'];
describe.each(KINDS)('_catalog pages on %s storage', (kind) => {
  it('answers every page as the whole sorted list cut after `last` would', async () => {
    current = await testRegistry(kind);
    const metadata = current.metadata.store;
    await seed(metadata);
    const all = [...NAMESPACES].sort();
    expect(await listNamespaces(metadata, {})).toEqual({ namespaces: all, more: false });
    // Every `last` and page size on memory and fs; on S3 (each page a few dozen requests) fewer.
    const lasts = kind === 's3' ? [undefined, 'a', 'a/x', 'team', 'team-x/app', '~'] : LASTS;
    const limits = kind === 's3' ? [1, 4] : [0, 1, 2, 3, 5, 100, undefined];
    for (const last of lasts) {
      const after = last === undefined ? all : all.filter((name) => name > last);
      for (const limit of limits) {
        const expected = {
          namespaces: after.slice(0, limit ?? after.length),
          more: after.length > (limit ?? Infinity),
        };
        expect({ last, limit, ...(await listNamespaces(metadata, { limit, last })) }).toEqual({
          last,
          limit,
          ...expected,
        });
      }
    }
  });

  it('reads only the directories a page passes, not the whole tree', async () => {
    current = await testRegistry(kind);
    const metadata = current.metadata;
    await seed(metadata.store);
    metadata.calls.length = 0;
    expect(await listNamespaces(metadata.store, { limit: 1, last: 'lib/app' })).toEqual({
      namespaces: ['team-x/app'],
      more: true,
    });
    const listed = metadata.calls.filter((call) => call.startsWith('list ')).map((call) => call.slice(5));
    // The way down to `lib/app`, then on to the page's name and the one after it (for `more`):
    // nothing that sorts before `lib/` (`a…`, `b/c/d`), nor past `team/app` (`team/app/sub`,
    // `team/app-2`) but `z`, which the top directory's walk checks ahead of its turn (at most as
    // many names as the page still wants).
    expect(listed).toContain('lib');
    expect(listed).toContain('team/app');
    for (const path of listed) {
      expect(path === '' || path >= 'lib', path).toBe(true);
      expect(path.startsWith('team/app/sub') || path.startsWith('team/app-2'), path).toBe(false);
    }
  });

  // A page of a thousand on S3 was three thousand requests one after another (5 s on RGW).
  it('checks several namespaces at once, no more than it runs ahead', async () => {
    current = await testRegistry(kind);
    const names = Array.from({ length: 60 }, (_, i) => `many/app-${String(i).padStart(2, '0')}`);
    const digest = digestOf('manifest');
    const link = encodeLink({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 8 });
    const store = current.metadata.store;
    await Promise.all(
      names.map((namespace) => store.put(keyFor({ kind: 'revisionLink', namespace, digest }), link)),
    );
    let inFlight = 0;
    let most = 0;
    const slowed = new Proxy(store, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          inFlight += 1;
          most = Math.max(most, inFlight);
          try {
            await new Promise((resolve) => setTimeout(resolve, 2));
            return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          } finally {
            inFlight -= 1;
          }
        };
      },
    });
    expect(await listNamespaces(slowed, { limit: 40 })).toEqual({
      namespaces: names.slice(0, 40),
      more: true,
    });
    expect(most).toBeGreaterThan(4);
    expect(most).toBeLessThanOrEqual(16);
  });
});
