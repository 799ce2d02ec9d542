import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type DigestParts, keyFor, legacyKeyFor } from '../keys.js';
import { type BlobStore, type MetadataStore, NotFoundError } from '../types.js';
import { bodyOf, digestOf, readAll, type StoreFactory, useFreshStore } from './harness.js';

/**
 * A backend's stores over one root (fs directory, S3 key prefix), and direct access to that
 * root, below the stores: to write what a store of the flat layout left there, and to see
 * which keys exist.
 */
export interface LayoutUnderTest {
  /** Absent to check the metadata store alone (a decorator over the memory store). */
  readonly blobs?: BlobStore | undefined;
  readonly metadata: MetadataStore;
  /** Writes `data` at `path` of the root, as an older version of the registry did. */
  writeRaw(path: string, data: string): Promise<void>;
  /** Whether `path` of the root holds a value (a file, an object). */
  existsRaw(path: string): Promise<boolean>;
}

/**
 * A store written before blob directories fanned out (`_blobs/<alg>/<hex>`,
 * `_blob_index/<alg>/<hex>`: keys.ts) keeps working: every blob and index entry is still
 * readable, listable and deletable, and nothing new is written in the flat layout. Each test
 * must leave the root empty (the factory's cleanup checks).
 */
export function describeLegacyLayoutContract(name: string, factory: StoreFactory<LayoutUnderTest>): void {
  describe(`legacy flat layout: ${name}`, () => {
    const layout = useFreshStore(factory, async () => {});

    /** The blob store; the test is skipped when the layout under test has none. */
    function blobsOrSkip(context: { skip(): never }): BlobStore {
      return layout().blobs ?? context.skip();
    }

    /** Writes a blob where the flat layout kept it. */
    async function writeLegacyBlob(content: string): Promise<DigestParts> {
      const digest = digestOf(content);
      await layout().writeRaw(legacyKeyFor({ kind: 'blob', digest }), content);
      return digest;
    }

    async function listed(): Promise<string[]> {
      const hexes: string[] = [];
      for await (const digest of layout().blobs!.listBlobs()) hexes.push(`${digest.algorithm}:${digest.hex}`);
      return hexes.sort();
    }

    it('writes new blobs and index entries fanned out by the first two hex characters', async (context) => {
      const blobs = blobsOrSkip(context);
      const { metadata, existsRaw } = layout();
      const digest = digestOf('fanned out');
      await blobs.putBlob(digest, Buffer.from('fanned out'));
      const index = keyFor({ kind: 'blobIndex', digest });
      await metadata.put(index, '{}');
      expect(keyFor({ kind: 'blob', digest })).toBe(`_blobs/sha256/${digest.hex.slice(0, 2)}/${digest.hex}`);
      expect(index).toBe(`_blob_index/sha256/${digest.hex.slice(0, 2)}/${digest.hex}`);
      expect(await existsRaw(keyFor({ kind: 'blob', digest }))).toBe(true);
      expect(await existsRaw(index)).toBe(true);
      expect(await existsRaw(legacyKeyFor({ kind: 'blob', digest }))).toBe(false);
      expect(await existsRaw(legacyKeyFor({ kind: 'blobIndex', digest }))).toBe(false);
      expect(await blobs.deleteBlob(digest)).toBe(true);
      expect(await metadata.delete(index)).toBe(true);
    });

    it('reads, copies and lists blobs of the flat layout beside fanned-out ones, then deletes them', async (context) => {
      const blobs = blobsOrSkip(context);
      const { existsRaw } = layout();
      const legacy = await writeLegacyBlob('written by an older registry');
      const legacy512 = digestOf('sha512 in the flat layout', 'sha512');
      await layout().writeRaw(legacyKeyFor({ kind: 'blob', digest: legacy512 }), 'sha512 in the flat layout');
      const current = digestOf('written now');
      await blobs.putBlob(current, Buffer.from('written now'));

      expect(await blobs.statBlob(legacy)).toEqual({ size: 28 });
      expect((await readAll(await blobs.readBlob(legacy))).toString()).toBe('written by an older registry');
      expect((await readAll(await blobs.readBlob(legacy, { start: 8, end: 9 }))).toString()).toBe('by');
      expect((await readAll(await blobs.readBlob(legacy512))).toString()).toBe('sha512 in the flat layout');
      if (blobs.openBlobCopy) {
        const chunks: Buffer[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, done) {
            chunks.push(Buffer.from(chunk));
            done();
          },
        });
        await (await blobs.openBlobCopy(legacy, { start: 0, end: 6 })).copyTo(sink);
        expect(Buffer.concat(chunks).toString()).toBe('written');
      }
      if (blobs.presignBlob) {
        const reply = await fetch(await blobs.presignBlob(legacy, { expiresInSecs: 60 }));
        expect(reply.status).toBe(200);
        expect(await reply.text()).toBe('written by an older registry');
      }
      expect(await listed()).toEqual(
        [`sha256:${legacy.hex}`, `sha256:${current.hex}`, `sha512:${legacy512.hex}`].sort(),
      );

      // Content-addressed: the blob exists, so neither a put nor a commit writes it again.
      await blobs.putBlob(legacy, Buffer.from('written by an older registry'));
      await blobs.createUpload('library/app', 'session');
      await blobs.appendUpload('library/app', 'session', 0, bodyOf('written by an older registry'));
      await blobs.commitUpload('library/app', 'session', legacy);
      await expect(blobs.uploadSize('library/app', 'session')).rejects.toBeInstanceOf(NotFoundError);
      expect(await existsRaw(keyFor({ kind: 'blob', digest: legacy }))).toBe(false);
      expect(await listed()).toHaveLength(3);

      for (const digest of [legacy, legacy512, current]) {
        expect(await blobs.deleteBlob(digest)).toBe(true);
        await expect(blobs.statBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
        await expect(blobs.readBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
        expect(await blobs.deleteBlob(digest)).toBe(false);
      }
      expect(await existsRaw(legacyKeyFor({ kind: 'blob', digest: legacy }))).toBe(false);
      expect(await listed()).toEqual([]);
    });

    it('deletes a blob present in both layouts from both', async (context) => {
      const blobs = blobsOrSkip(context);
      const { existsRaw } = layout();
      const digest = await writeLegacyBlob('in both layouts');
      await layout().writeRaw(keyFor({ kind: 'blob', digest }), 'in both layouts');
      expect(await blobs.deleteBlob(digest)).toBe(true);
      expect(await existsRaw(legacyKeyFor({ kind: 'blob', digest }))).toBe(false);
      expect(await existsRaw(keyFor({ kind: 'blob', digest }))).toBe(false);
      await expect(blobs.statBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
    });

    it('reads an index entry of the flat layout, writes its update fanned out, and deletes both', async () => {
      const { metadata, writeRaw, existsRaw } = layout();
      const digest = digestOf('indexed');
      const key = keyFor({ kind: 'blobIndex', digest });
      const legacy = legacyKeyFor({ kind: 'blobIndex', digest });
      await writeRaw(legacy, '{"library/app":["layer"]}');

      expect((await metadata.get(key)).toString()).toBe('{"library/app":["layer"]}');
      expect(await metadata.putIfAbsent(key, '{}')).toBe(false);
      await metadata.put(key, '{"library/app":["layer","manifest"]}');
      expect((await metadata.get(key)).toString()).toBe('{"library/app":["layer","manifest"]}');
      expect(await existsRaw(key)).toBe(true);

      expect(await metadata.delete(key)).toBe(true);
      expect(await existsRaw(key)).toBe(false);
      expect(await existsRaw(legacy)).toBe(false);
      await expect(metadata.get(key)).rejects.toMatchObject({ name: 'NotFoundError', path: key });
      expect(await metadata.delete(key)).toBe(false);

      // Never rewritten: the delete removes the legacy entry alone.
      await writeRaw(legacy, '{"library/app":["layer"]}');
      expect(await metadata.delete(key)).toBe(true);
      expect(await existsRaw(legacy)).toBe(false);
    });

    it('compares and swaps over an index entry of the flat layout: of two writers one wins', async (context) => {
      const cas = layout().metadata.conditional;
      if (!cas) {
        context.skip();
        return;
      }
      const { metadata, writeRaw, existsRaw } = layout();
      const digest = digestOf('contended');
      const key = keyFor({ kind: 'blobIndex', digest });
      const legacy = legacyKeyFor({ kind: 'blobIndex', digest });
      await writeRaw(legacy, 'v0');

      // Absent means absent in both layouts.
      expect(await cas.putIfVersion(key, 'created', undefined)).toBe(false);
      const read = await cas.getVersioned(key);
      expect(read?.data.toString()).toBe('v0');
      const [first, second] = await Promise.all([
        cas.putIfVersion(key, 'v1 (first)', read!.version),
        cas.putIfVersion(key, 'v1 (second)', read!.version),
      ]);
      expect([first, second].filter(Boolean)).toHaveLength(1);
      const winner = first ? 'v1 (first)' : 'v1 (second)';
      expect((await metadata.get(key)).toString()).toBe(winner);
      // The legacy version is stale from then on; the fanned-out one is current.
      expect(await cas.putIfVersion(key, 'stale', read!.version)).toBe(false);
      const updated = await cas.getVersioned(key);
      expect(updated?.data.toString()).toBe(winner);
      expect(await cas.putIfVersion(key, 'v2', updated!.version)).toBe(true);

      if (cas.deleteIfVersion) {
        const latest = await cas.getVersioned(key);
        expect(await cas.deleteIfVersion(key, read!.version)).toBe(false);
        expect(await cas.deleteIfVersion(key, latest!.version)).toBe(true);
        expect(await existsRaw(legacy)).toBe(false);
        // An entry still in the flat layout alone, deleted by its version.
        await writeRaw(legacy, 'v0');
        const old = await cas.getVersioned(key);
        expect(await cas.deleteIfVersion(key, old!.version)).toBe(true);
        expect(await cas.getVersioned(key)).toBeUndefined();
      } else {
        expect(await metadata.delete(key)).toBe(true);
      }
      expect(await existsRaw(legacy)).toBe(false);
      expect(await existsRaw(key)).toBe(false);
    });
  });
}
