import { describe, expect, it } from 'vitest';
import { keyFor, type StorageKey } from '../keys.js';
import { InvalidKeyError, type MetadataStore, NotFoundError } from '../types.js';
import { INVALID_KEYS, type StoreFactory, useFreshStore } from './harness.js';

async function assertNoKeysLeft(store: MetadataStore): Promise<void> {
  expect(await store.list(''), 'the test left keys behind').toEqual([]);
}

/**
 * The behaviour every MetadataStore backend must have. Each test gets a fresh
 * store from `factory` and must leave it empty.
 */
export function describeMetadataStoreContract(name: string, factory: StoreFactory<MetadataStore>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    const store = useFreshStore(factory, assertNoKeysLeft);

    describe('get and put', () => {
      it('throws NotFoundError naming the key when it is absent', async () => {
        const error = await store()
          .get('ns/_manifests/tags/missing/link')
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NotFoundError);
        expect((error as NotFoundError).path).toBe('ns/_manifests/tags/missing/link');
      });

      it('returns what was put, from a string or from bytes', async () => {
        await store().put('ns/a/link', 'sha256:abc');
        await store().put('ns/b/link', new Uint8Array([0, 1, 2, 255]));
        expect((await store().get('ns/a/link')).toString('utf8')).toBe('sha256:abc');
        expect([...(await store().get('ns/b/link'))]).toEqual([0, 1, 2, 255]);
        await store().deletePrefix('ns');
      });

      it('replaces an existing value', async () => {
        await store().put('ns/link', 'first, and longer than the second');
        await store().put('ns/link', 'second');
        expect((await store().get('ns/link')).toString()).toBe('second');
        await store().delete('ns/link');
      });

      it('stores empty and 1 MiB values byte for byte', async () => {
        const large = Buffer.alloc(1024 * 1024);
        for (let i = 0; i < large.length; i++) large[i] = (i * 31) % 251;
        await store().put('ns/empty', new Uint8Array(0));
        await store().put('ns/large', large);
        expect((await store().get('ns/empty')).length).toBe(0);
        expect((await store().get('ns/large')).equals(large)).toBe(true);
        await store().deletePrefix('ns');
      });

      it('keeps its own copy: mutating the written or the returned buffer changes nothing', async () => {
        const written = Buffer.from('original');
        await store().put('ns/link', written);
        written.fill(0);
        const read = await store().get('ns/link');
        read.fill(0);
        expect((await store().get('ns/link')).toString()).toBe('original');
        await store().delete('ns/link');
      });

      it('has no value at a prefix: get of a "directory" throws NotFoundError', async () => {
        await store().put('ns/_manifests/tags/v1/link', 'x');
        await expect(store().get('ns/_manifests/tags')).rejects.toBeInstanceOf(NotFoundError);
        await store().deletePrefix('ns');
      });

      it('leaves one whole value when 20 puts of the same key race', async () => {
        const values = Array.from({ length: 20 }, (_, i) => `writer-${i}:`.repeat(500 * (i + 1)));
        await Promise.all(values.map((value) => store().put('race/link', value)));
        expect(values).toContain((await store().get('race/link')).toString());
        await store().delete('race/link');
      });
    });

    describe('putIfAbsent', () => {
      it('creates an absent key and returns true', async () => {
        expect(await store().putIfAbsent('ns/link', 'created')).toBe(true);
        expect((await store().get('ns/link')).toString()).toBe('created');
        await store().delete('ns/link');
      });

      it('returns false and writes nothing when the key exists', async () => {
        await store().put('ns/link', 'existing');
        expect(await store().putIfAbsent('ns/link', 'intruder')).toBe(false);
        expect((await store().get('ns/link')).toString()).toBe('existing');
        await store().delete('ns/link');
      });

      it('lets exactly one of 20 concurrent creators win, and keeps the winner’s value', async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store().putIfAbsent('race/link', `writer-${i}`)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store().get('race/link')).toString()).toBe(`writer-${results.indexOf(true)}`);
        await store().delete('race/link');
      });

      it('creates again after the key was deleted', async () => {
        await store().putIfAbsent('ns/link', 'one');
        await store().delete('ns/link');
        expect(await store().putIfAbsent('ns/link', 'two')).toBe(true);
        expect((await store().get('ns/link')).toString()).toBe('two');
        await store().delete('ns/link');
      });
    });

    describe('delete', () => {
      it('returns true for a present value, then false, and the value is gone', async () => {
        await store().put('ns/link', 'x');
        expect(await store().delete('ns/link')).toBe(true);
        expect(await store().delete('ns/link')).toBe(false);
        await expect(store().get('ns/link')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('returns false for a key never written, and for a prefix (keeping what is under it)', async () => {
        expect(await store().delete('never/written')).toBe(false);
        await store().put('ns/dir/link', 'x');
        expect(await store().delete('ns/dir')).toBe(false);
        expect((await store().get('ns/dir/link')).toString()).toBe('x');
        await store().delete('ns/dir/link');
      });

      it('removes the parent prefixes it leaves empty, and only those', async () => {
        await store().put('a/b/c/link', 'x');
        await store().put('a/other', 'y');
        await store().delete('a/b/c/link');
        expect(await store().list('a')).toEqual(['other']);
        expect(await store().list('a/b')).toEqual([]);
        await store().delete('a/other');
        expect(await store().list('')).toEqual([]);
      });
    });

    describe('list', () => {
      it('returns [] for an absent prefix and for a value', async () => {
        expect(await store().list('nothing/here')).toEqual([]);
        await store().put('ns/link', 'x');
        expect(await store().list('ns/link')).toEqual([]);
        await store().delete('ns/link');
      });

      it('returns direct children only, values and prefixes alike, sorted by code point', async () => {
        // Code point order: digits < upper case < '_' < lower case, and 'a' < 'a-b'.
        // localeCompare would order these differently.
        for (const key of ['p/b/deep/link', 'p/a', 'p/a-b/x', 'p/C', 'p/_z', 'p/10', 'p/9', 'p/b/other']) {
          await store().put(key, 'x');
        }
        expect(await store().list('p')).toEqual(['10', '9', 'C', '_z', 'a', 'a-b', 'b']);
        expect(await store().list('p/b')).toEqual(['deep', 'other']);
        await store().deletePrefix('p');
      });

      it("lists the top level with the prefix ''", async () => {
        await store().put('zeta/link', 'x');
        await store().put('_blob_index/sha256/ab', 'x');
        expect(await store().list('')).toEqual(['_blob_index', 'zeta']);
        await store().deletePrefix('zeta');
        await store().deletePrefix('_blob_index');
      });
    });

    describe('listPage', () => {
      /** Every page of `prefix`, `limit` names at a time, each page starting after the last name. */
      async function pages(prefix: string, limit: number): Promise<string[][]> {
        const found: string[][] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store().listPage(prefix, { after, limit });
          expect(page.length).toBeLessThanOrEqual(limit);
          if (page.length > 0) found.push(page);
          if (page.length < limit) return found;
          after = page.at(-1);
        }
      }

      it('pages through what list returns, in the same order, whatever the page size', async () => {
        for (const key of ['p/b/deep/link', 'p/a', 'p/a-b/x', 'p/C', 'p/_z', 'p/10', 'p/9', 'p/b/other']) {
          await store().put(key, 'x');
        }
        const all = ['10', '9', 'C', '_z', 'a', 'a-b', 'b'];
        for (const limit of [1, 2, 3, 7, 1500]) {
          const found = await pages('p', limit);
          expect(found.flat(), `pages of ${limit}`).toEqual(all);
          for (const page of found.slice(0, -1)) expect(page).toHaveLength(limit);
        }
        expect(await store().listPage('p/b', { limit: 10 })).toEqual(['deep', 'other']);
        await store().deletePrefix('p');
      });

      it('puts a prefix before the longer names it begins, `-` and `.` after it included (S3 orders `v1/` after `v1-rc/`)', async () => {
        const dirs = ['v1', 'v1-rc', 'v1-rc.2', 'v1.0', 'v1.0-1', 'v10', 'v1_9'];
        for (const dir of dirs) await store().put(`r/${dir}/link`, 'x');
        await store().put('r/v1-a', 'x');
        const all = ['v1', 'v1-a', 'v1-rc', 'v1-rc.2', 'v1.0', 'v1.0-1', 'v10', 'v1_9'];
        for (const limit of [1, 2, 3, 5, 10])
          expect((await pages('r', limit)).flat(), `pages of ${limit}`).toEqual(all);
        expect(await store().listPage('r', { after: 'v1-rc', limit: 2 })).toEqual(['v1-rc.2', 'v1.0']);
        expect(await store().listPage('r', { after: 'v1-rc.1', limit: 1 })).toEqual(['v1-rc.2']);
        expect(await store().listPage('r', { after: 'v1', limit: 2 })).toEqual(['v1-a', 'v1-rc']);
        await store().deletePrefix('r');
      });

      it('starts after a name that is absent, a value or a prefix, never repeating what lies below it', async () => {
        for (const key of ['q/1-a', 'q/2-b/x', 'q/2-b/y/z', 'q/3-c', 'q/4-d/w']) await store().put(key, 'x');
        expect(await store().listPage('q', { after: '2-b', limit: 2 })).toEqual(['3-c', '4-d']);
        expect(await store().listPage('q', { after: '1-a', limit: 1 })).toEqual(['2-b']);
        expect(await store().listPage('q', { after: '1-z', limit: 5 })).toEqual(['2-b', '3-c', '4-d']);
        expect(await store().listPage('q', { after: '0', limit: 5 })).toEqual(['1-a', '2-b', '3-c', '4-d']);
        expect(await store().listPage('q', { after: '4-d', limit: 5 })).toEqual([]);
        expect(await store().listPage('q', { after: '9', limit: 5 })).toEqual([]);
        await store().deletePrefix('q');
      });

      it('returns [] for an absent prefix and for a value, and lists the top level with the prefix ""', async () => {
        expect(await store().listPage('nothing/here', { limit: 5 })).toEqual([]);
        await store().put('zeta/link', 'x');
        await store().put('alpha/link', 'x');
        expect(await store().listPage('zeta/link', { limit: 5 })).toEqual([]);
        expect(await store().listPage('', { limit: 1 })).toEqual(['alpha']);
        expect(await store().listPage('', { after: 'alpha', limit: 5 })).toEqual(['zeta']);
        await store().deletePrefix('zeta');
        await store().deletePrefix('alpha');
      });

      it('rejects a limit that is not a positive integer with a RangeError', async () => {
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await expect(store().listPage('ns', { limit })).rejects.toBeInstanceOf(RangeError);
        }
      });
    });

    describe('deletePrefix', () => {
      it('removes everything below the prefix, but not siblings that share its spelling', async () => {
        await store().put('ns/_manifests/tags/v1/link', 'x');
        await store().put('ns/_manifests/revisions/sha256/ab/link', 'x');
        await store().put('ns2/_manifests/tags/v1/link', 'x');
        await store().put('ns-other/link', 'x');
        await store().deletePrefix('ns');
        expect(await store().list('ns/_manifests')).toEqual([]);
        expect(await store().list('')).toEqual(['ns-other', 'ns2']);
        expect((await store().get('ns2/_manifests/tags/v1/link')).toString()).toBe('x');
        await store().deletePrefix('ns2');
        await store().deletePrefix('ns-other');
      });

      it('removes a value named by the prefix itself', async () => {
        await store().put('ns/link', 'x');
        await store().deletePrefix('ns/link');
        await expect(store().get('ns/link')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('succeeds when nothing is there', async () => {
        await expect(store().deletePrefix('absent/prefix')).resolves.toBeUndefined();
      });

      it('removes the parent prefixes it leaves empty', async () => {
        await store().put('a/b/c/d/link', 'x');
        await store().deletePrefix('a/b/c');
        expect(await store().list('')).toEqual([]);
      });
    });

    describe('conditional writes (when the backend offers them)', () => {
      const cas = () => store().conditional;

      it('reads no version for an absent key and creates only when told the key is absent', async (context) => {
        const conditional = cas();
        if (!conditional) return context.skip();
        expect(await conditional.getVersioned('ns/_blob_index/x')).toBeUndefined();
        expect(await conditional.putIfVersion('ns/_blob_index/x', 'first', undefined)).toBe(true);
        expect(await conditional.putIfVersion('ns/_blob_index/x', 'second', undefined)).toBe(false);
        const read = await conditional.getVersioned('ns/_blob_index/x');
        expect(read?.data.toString()).toBe('first');
        expect((await store().get('ns/_blob_index/x')).toString()).toBe('first');
        await store().deletePrefix('ns');
      });

      it('replaces only the version it read, and a stale version changes nothing', async (context) => {
        const conditional = cas();
        if (!conditional) return context.skip();
        await store().put('ns/index', 'one');
        const first = (await conditional.getVersioned('ns/index'))!;
        expect(await conditional.putIfVersion('ns/index', 'two', first.version)).toBe(true);
        expect(await conditional.putIfVersion('ns/index', 'stale', first.version)).toBe(false);
        const second = (await conditional.getVersioned('ns/index'))!;
        expect(second.data.toString()).toBe('two');
        expect(second.version).not.toBe(first.version);
        await store().delete('ns/index');
        expect(await conditional.putIfVersion('ns/index', 'gone', second.version)).toBe(false);
        expect(await store().list('')).toEqual([]);
      });

      it('loses no update when 10 writers increment one counter concurrently', async (context) => {
        const conditional = cas();
        if (!conditional) return context.skip();
        const increment = async () => {
          for (;;) {
            const current = await conditional.getVersioned('ns/counter');
            const next = Number(current?.data.toString() ?? '0') + 1;
            if (await conditional.putIfVersion('ns/counter', String(next), current?.version)) return;
          }
        };
        await Promise.all(Array.from({ length: 10 }, increment));
        expect((await store().get('ns/counter')).toString()).toBe('10');
        await store().delete('ns/counter');
      });

      it('deletes only the version it read, where the backend can', async (context) => {
        const deleteIfVersion = cas()?.deleteIfVersion;
        if (!deleteIfVersion) return context.skip();
        const conditional = cas()!;
        await store().put('ns/index', 'one');
        const first = (await conditional.getVersioned('ns/index'))!;
        await store().put('ns/index', 'two');
        expect(await deleteIfVersion.call(conditional, 'ns/index', first.version)).toBe(false);
        const second = (await conditional.getVersioned('ns/index'))!;
        expect(await deleteIfVersion.call(conditional, 'ns/index', second.version)).toBe(true);
        expect(await store().list('')).toEqual([]);
      });
    });

    describe('deferred writes (when the backend offers them)', () => {
      it('reads a deferred value back at once, and delete drops it before it is written', async (context) => {
        const s = store();
        if (!s.putDeferred) return context.skip();
        s.putDeferred('ns/_manifests/revisions/sha256/ab/pulledat', '2024-01-01T00:00:00Z');
        s.putDeferred('ns/_manifests/revisions/sha256/ab/pulledat', '2024-01-02T00:00:00Z');
        expect((await s.get('ns/_manifests/revisions/sha256/ab/pulledat')).toString()).toBe(
          '2024-01-02T00:00:00Z',
        );
        expect(await s.delete('ns/_manifests/revisions/sha256/ab/pulledat')).toBe(true);
        await expect(s.get('ns/_manifests/revisions/sha256/ab/pulledat')).rejects.toBeInstanceOf(
          NotFoundError,
        );
        s.putDeferred('ns/_manifests/revisions/sha256/cd/pulledat', 'x');
        await s.deletePrefix('ns');
        await expect(s.get('ns/_manifests/revisions/sha256/cd/pulledat')).rejects.toBeInstanceOf(
          NotFoundError,
        );
      });
    });

    describe('keys', () => {
      it.each(INVALID_KEYS.map((key) => [JSON.stringify(key).slice(0, 40), key]))(
        'rejects %s with InvalidKeyError everywhere, writing nothing',
        async (_label, key) => {
          const s = store();
          await expect(s.get(key)).rejects.toBeInstanceOf(InvalidKeyError);
          await expect(s.put(key, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
          await expect(s.putIfAbsent(key, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
          await expect(s.delete(key)).rejects.toBeInstanceOf(InvalidKeyError);
          await expect(s.deletePrefix(key)).rejects.toBeInstanceOf(InvalidKeyError);
          if (key !== '') await expect(s.list(key)).rejects.toBeInstanceOf(InvalidKeyError);
          if (key !== '') await expect(s.listPage(key, { limit: 1 })).rejects.toBeInstanceOf(InvalidKeyError);
          expect(await s.list('')).toEqual([]);
        },
      );

      it('accepts every key of the layout', async () => {
        const digest = { algorithm: 'sha256', hex: 'a'.repeat(64) } as const;
        const subject = { algorithm: 'sha512', hex: 'b'.repeat(128) } as const;
        const namespace = 'library/team.a/my_app-x';
        const keys: StorageKey[] = [
          { kind: 'blobIndex', digest },
          { kind: 'layerLink', namespace, digest },
          { kind: 'revisionLink', namespace, digest },
          { kind: 'tagLink', namespace, tag: 'V1.0_rc-1' },
          { kind: 'tagTombstone', namespace, tag: 'V1.0_rc-2' },
          { kind: 'referrerLink', namespace, subject, referrer: digest },
          { kind: 'uploadStartedAt', namespace, id: '3f2c1f9e-8d4b-4c55-9e1a-0d9b7f6f1c2a' },
        ];
        for (const key of keys) await store().put(keyFor(key), key.kind);
        for (const key of keys) expect((await store().get(keyFor(key))).toString()).toBe(key.kind);
        expect(await store().list(keyFor({ kind: 'tags', namespace }))).toEqual(['V1.0_rc-1']);
        expect(await store().list(keyFor({ kind: 'tagTombstones', namespace }))).toEqual(['V1.0_rc-2']);
        expect(
          await store().list(keyFor({ kind: 'referrers', namespace, subject, algorithm: 'sha256' })),
        ).toEqual([digest.hex]);
        for (const key of keys) expect(await store().delete(keyFor(key))).toBe(true);
      });
    });
  });
}
