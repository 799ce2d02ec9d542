import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { DigestParts } from '../keys.js';
import {
  type BlobStore,
  BodyLengthError,
  type ByteRange,
  InvalidKeyError,
  NotFoundError,
  OffsetMismatchError,
} from '../types.js';
import {
  bodyOf,
  digestOf,
  failingBodyOf,
  hashStream,
  patternBody,
  readAll,
  type StoreFactory,
  slowBodyOf,
  useFreshStore,
} from './harness.js';

const MiB = 1024 * 1024;
const NAMESPACE = 'library/app';

/**
 * Passes everything through and remembers the upload sessions a test created,
 * so the suite can check that each test removed them (BlobStore cannot list uploads).
 */
class UploadTrackingBlobStore implements BlobStore {
  readonly backend: string;
  readonly created: Array<{ namespace: string; id: string }> = [];

  constructor(private readonly inner: BlobStore) {
    this.backend = inner.backend;
  }

  statBlob(digest: DigestParts) {
    return this.inner.statBlob(digest);
  }
  readBlob(digest: DigestParts, range?: ByteRange) {
    return this.inner.readBlob(digest, range);
  }
  putBlob(digest: DigestParts, data: Uint8Array) {
    return this.inner.putBlob(digest, data);
  }
  deleteBlob(digest: DigestParts) {
    return this.inner.deleteBlob(digest);
  }
  listBlobs() {
    return this.inner.listBlobs();
  }
  async createUpload(namespace: string, id: string) {
    await this.inner.createUpload(namespace, id);
    this.created.push({ namespace, id });
  }
  uploadSize(namespace: string, id: string) {
    return this.inner.uploadSize(namespace, id);
  }
  appendUpload(namespace: string, id: string, offset: number, body: Readable, length?: number) {
    return this.inner.appendUpload(namespace, id, offset, body, length);
  }
  readUpload(namespace: string, id: string) {
    return this.inner.readUpload(namespace, id);
  }
  commitUpload(namespace: string, id: string, digest: DigestParts) {
    return this.inner.commitUpload(namespace, id, digest);
  }
  deleteUpload(namespace: string, id: string) {
    return this.inner.deleteUpload(namespace, id);
  }
}

async function listAll(store: BlobStore): Promise<DigestParts[]> {
  const digests: DigestParts[] = [];
  for await (const digest of store.listBlobs()) digests.push(digest);
  return digests.sort((a, b) => (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0));
}

async function assertNothingLeft(store: UploadTrackingBlobStore): Promise<void> {
  expect(await listAll(store), 'the test left blobs behind').toEqual([]);
  for (const { namespace, id } of store.created) {
    await expect(store.uploadSize(namespace, id), `the test left upload ${id} behind`).rejects.toBeInstanceOf(
      NotFoundError,
    );
  }
}

/**
 * The behaviour every BlobStore backend must have. Each test gets a fresh store
 * from `factory` and must remove every blob and upload session it created.
 */
export function describeBlobStoreContract(name: string, factory: StoreFactory<BlobStore>): void {
  describe(`BlobStore contract: ${name}`, () => {
    const store = useFreshStore(async () => {
      const underTest = await factory();
      return { store: new UploadTrackingBlobStore(underTest.store), cleanup: () => underTest.cleanup() };
    }, assertNothingLeft);

    /** A new upload session holding `chunks`. */
    async function uploadOf(id: string, ...chunks: string[]): Promise<void> {
      await store().createUpload(NAMESPACE, id);
      let offset = 0;
      for (const chunk of chunks) offset = await store().appendUpload(NAMESPACE, id, offset, bodyOf(chunk));
    }

    async function uploadContent(id: string): Promise<string> {
      return (await readAll(await store().readUpload(NAMESPACE, id))).toString();
    }

    describe('blobs', () => {
      it('throws NotFoundError for an absent blob, from statBlob and readBlob alike', async () => {
        const digest = digestOf('absent');
        await expect(store().statBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
        await expect(store().readBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
        await expect(store().readBlob(digest, { start: 0, end: 0 })).rejects.toBeInstanceOf(NotFoundError);
      });

      it('stores a blob that statBlob sizes and readBlob streams back, for sha256 and sha512', async () => {
        for (const algorithm of ['sha256', 'sha512'] as const) {
          const bytes = Buffer.from(`{"schemaVersion":2,"alg":"${algorithm}"}`);
          const digest = digestOf(bytes, algorithm);
          await store().putBlob(digest, bytes);
          expect(await store().statBlob(digest)).toEqual({ size: bytes.length });
          expect((await readAll(await store().readBlob(digest))).equals(bytes)).toBe(true);
          expect(await store().deleteBlob(digest)).toBe(true);
        }
      });

      it('stores an empty blob', async () => {
        const digest = digestOf('');
        await store().putBlob(digest, new Uint8Array(0));
        expect(await store().statBlob(digest)).toEqual({ size: 0 });
        expect((await readAll(await store().readBlob(digest))).length).toBe(0);
        await store().deleteBlob(digest);
      });

      it('keeps the first bytes when putBlob is called again for the same digest', async () => {
        const digest = digestOf('first');
        await store().putBlob(digest, Buffer.from('first'));
        await store().putBlob(digest, Buffer.from('second!'));
        expect((await readAll(await store().readBlob(digest))).toString()).toBe('first');
        await store().deleteBlob(digest);
      });

      it('keeps its own copy of the bytes given to putBlob', async () => {
        const bytes = Buffer.from('manifest');
        const digest = digestOf(bytes);
        await store().putBlob(digest, bytes);
        bytes.fill(0);
        expect((await readAll(await store().readBlob(digest))).toString()).toBe('manifest');
        await store().deleteBlob(digest);
      });

      it('reads inclusive byte ranges: first byte, last byte, middle, whole, and an end past the blob', async () => {
        const bytes = Buffer.from('0123456789abcdefghij');
        const digest = digestOf(bytes);
        await store().putBlob(digest, bytes);
        const read = async (range: ByteRange) =>
          (await readAll(await store().readBlob(digest, range))).toString();
        expect(await read({ start: 0, end: 0 })).toBe('0');
        expect(await read({ start: 19, end: 19 })).toBe('j');
        expect(await read({ start: 5, end: 12 })).toBe('56789abc');
        expect(await read({ start: 0, end: 19 })).toBe(bytes.toString());
        expect(await read({ start: 15, end: 100 })).toBe('fghij');
        await store().deleteBlob(digest);
      });

      it('rejects a malformed range with RangeError', async () => {
        const digest = digestOf('x');
        await store().putBlob(digest, Buffer.from('x'));
        await expect(store().readBlob(digest, { start: 1, end: 0 })).rejects.toBeInstanceOf(RangeError);
        await expect(store().readBlob(digest, { start: -1, end: 0 })).rejects.toBeInstanceOf(RangeError);
        await store().deleteBlob(digest);
      });

      it('deletes a blob: true, then false, and it is gone', async () => {
        const digest = digestOf('doomed');
        await store().putBlob(digest, Buffer.from('doomed'));
        expect(await store().deleteBlob(digest)).toBe(true);
        expect(await store().deleteBlob(digest)).toBe(false);
        await expect(store().statBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
      });

      it('lists exactly the committed blobs', async () => {
        const digests = [digestOf('a'), digestOf('b'), digestOf('c', 'sha512')];
        for (const [i, digest] of digests.entries()) await store().putBlob(digest, Buffer.from('abc'[i]!));
        await uploadOf('listed', 'from an upload');
        const uploaded = digestOf('from an upload');
        await store().commitUpload(NAMESPACE, 'listed', uploaded);
        const expected = [...digests, uploaded].sort((a, b) => (a.hex < b.hex ? -1 : 1));
        expect(await listAll(store())).toEqual(expected);
        for (const digest of expected) await store().deleteBlob(digest);
        expect(await listAll(store())).toEqual([]);
      });

      it.each([
        ['traversal in hex', { algorithm: 'sha256', hex: '../../../escape' }],
        ['an unknown algorithm', { algorithm: 'md5', hex: 'abcd' }],
        ['a slash in the algorithm', { algorithm: 'sha256/..', hex: 'abcd' }],
        ['upper-case hex', { algorithm: 'sha256', hex: 'ABCD' }],
        ['empty hex', { algorithm: 'sha256', hex: '' }],
      ])('rejects a digest with %s with InvalidKeyError', async (_label, digest) => {
        const bad = digest as DigestParts;
        await expect(store().statBlob(bad)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store().readBlob(bad)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store().putBlob(bad, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store().deleteBlob(bad)).rejects.toBeInstanceOf(InvalidKeyError);
        await uploadOf('valid-session', 'x');
        await expect(store().commitUpload(NAMESPACE, 'valid-session', bad)).rejects.toBeInstanceOf(
          InvalidKeyError,
        );
        await store().deleteUpload(NAMESPACE, 'valid-session');
      });
    });

    describe('uploads', () => {
      it('starts a session empty', async () => {
        await store().createUpload(NAMESPACE, 'fresh');
        expect(await store().uploadSize(NAMESPACE, 'fresh')).toBe(0);
        expect(await uploadContent('fresh')).toBe('');
        await store().deleteUpload(NAMESPACE, 'fresh');
      });

      it('appends chunks at the current size, returning the new size each time', async () => {
        await store().createUpload(NAMESPACE, 'chunks');
        expect(await store().appendUpload(NAMESPACE, 'chunks', 0, bodyOf('hello, '))).toBe(7);
        expect(await store().appendUpload(NAMESPACE, 'chunks', 7, bodyOf('chunked ', 'world'))).toBe(20);
        expect(await store().appendUpload(NAMESPACE, 'chunks', 20, bodyOf())).toBe(20);
        expect(await store().appendUpload(NAMESPACE, 'chunks', 20, bodyOf('!'))).toBe(21);
        expect(await store().uploadSize(NAMESPACE, 'chunks')).toBe(21);
        expect(await uploadContent('chunks')).toBe('hello, chunked world!');
        await store().deleteUpload(NAMESPACE, 'chunks');
      });

      it('rejects an append at any other offset with OffsetMismatchError, changing nothing', async () => {
        await uploadOf('mismatch', 'abc');
        for (const offset of [0, 2, 4]) {
          const error = await store()
            .appendUpload(NAMESPACE, 'mismatch', offset, bodyOf('zzz'))
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(OffsetMismatchError);
          expect(error).toMatchObject({ expected: offset, actual: 3 });
        }
        expect(await uploadContent('mismatch')).toBe('abc');
        await store().deleteUpload(NAMESPACE, 'mismatch');
      });

      it('keeps a consistent, resumable session when the body fails midway, and rethrows', async () => {
        await uploadOf('broken', 'start:');
        const failure = new Error('client went away');
        const appended = store().appendUpload(
          NAMESPACE,
          'broken',
          6,
          failingBodyOf(['aaaa', 'bbbb', 'cccc'], failure),
        );
        await expect(appended).rejects.toBe(failure);
        const size = await store().uploadSize(NAMESPACE, 'broken');
        const content = await uploadContent('broken');
        // What was kept is exactly what uploadSize reports: a prefix of what was sent.
        expect(content.length).toBe(size);
        expect('start:aaaabbbbcccc'.startsWith(content)).toBe(true);
        expect(size).toBeGreaterThanOrEqual(6);
        expect(await store().appendUpload(NAMESPACE, 'broken', size, bodyOf('|resumed'))).toBe(size + 8);
        expect(await uploadContent('broken')).toBe(`${content}|resumed`);
        await store().deleteUpload(NAMESPACE, 'broken');
      });

      it.each([
        ['longer', ['aaaa', 'bbbb', 'cc']],
        ['shorter', ['aaaa']],
      ])(
        'keeps none of a body %s than its declared length: BodyLengthError, session at its offset',
        async (_label, chunks) => {
          await uploadOf('belied', 'start:');
          const appended = store().appendUpload(NAMESPACE, 'belied', 6, bodyOf(...chunks), 8);
          await expect(appended).rejects.toBeInstanceOf(BodyLengthError);
          expect(await store().uploadSize(NAMESPACE, 'belied')).toBe(6);
          expect(await uploadContent('belied')).toBe('start:');
          expect(await store().appendUpload(NAMESPACE, 'belied', 6, bodyOf('12345678'), 8)).toBe(14);
          expect(await uploadContent('belied')).toBe('start:12345678');
          await store().deleteUpload(NAMESPACE, 'belied');
        },
      );

      it('never interleaves concurrent appends: one wins whole, the other gets OffsetMismatchError', async () => {
        await store().createUpload(NAMESPACE, 'contended');
        const results = await Promise.allSettled([
          store().appendUpload(NAMESPACE, 'contended', 0, slowBodyOf('a1', 'a2', 'a3')),
          store().appendUpload(NAMESPACE, 'contended', 0, slowBodyOf('b1', 'b2', 'b3')),
        ]);
        expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
        const rejected = results.find((result) => result.status === 'rejected') as PromiseRejectedResult;
        expect(rejected.reason).toBeInstanceOf(OffsetMismatchError);
        expect(['a1a2a3', 'b1b2b3']).toContain(await uploadContent('contended'));
        await store().deleteUpload(NAMESPACE, 'contended');
      });

      it('commits a session into a blob and removes the session', async () => {
        await uploadOf('commit', 'layer ', 'bytes');
        const digest = digestOf('layer bytes');
        await store().commitUpload(NAMESPACE, 'commit', digest);
        expect(await store().statBlob(digest)).toEqual({ size: 11 });
        expect((await readAll(await store().readBlob(digest))).toString()).toBe('layer bytes');
        await expect(store().uploadSize(NAMESPACE, 'commit')).rejects.toBeInstanceOf(NotFoundError);
        await expect(store().readUpload(NAMESPACE, 'commit')).rejects.toBeInstanceOf(NotFoundError);
        await store().deleteBlob(digest);
      });

      it('keeps the existing blob when committing to a digest that exists, and removes the session', async () => {
        const digest = digestOf('existing');
        await store().putBlob(digest, Buffer.from('existing'));
        await uploadOf('duplicate', 'session bytes');
        await store().commitUpload(NAMESPACE, 'duplicate', digest);
        expect((await readAll(await store().readBlob(digest))).toString()).toBe('existing');
        await expect(store().uploadSize(NAMESPACE, 'duplicate')).rejects.toBeInstanceOf(NotFoundError);
        await store().deleteBlob(digest);
      });

      it('throws NotFoundError for every operation on an unknown session', async () => {
        const digest = digestOf('x');
        await expect(store().uploadSize(NAMESPACE, 'unknown')).rejects.toBeInstanceOf(NotFoundError);
        await expect(store().readUpload(NAMESPACE, 'unknown')).rejects.toBeInstanceOf(NotFoundError);
        await expect(store().appendUpload(NAMESPACE, 'unknown', 0, bodyOf('x'))).rejects.toBeInstanceOf(
          NotFoundError,
        );
        await expect(store().commitUpload(NAMESPACE, 'unknown', digest)).rejects.toBeInstanceOf(
          NotFoundError,
        );
        await store().putBlob(digest, Buffer.from('x'));
        await expect(store().commitUpload(NAMESPACE, 'unknown', digest)).rejects.toBeInstanceOf(
          NotFoundError,
        );
        expect(await store().deleteUpload(NAMESPACE, 'unknown')).toBe(false);
        await store().deleteBlob(digest);
      });

      it('deletes a session: true, then false, and it is gone', async () => {
        await uploadOf('cancelled', 'partial');
        expect(await store().deleteUpload(NAMESPACE, 'cancelled')).toBe(true);
        expect(await store().deleteUpload(NAMESPACE, 'cancelled')).toBe(false);
        await expect(store().uploadSize(NAMESPACE, 'cancelled')).rejects.toBeInstanceOf(NotFoundError);
      });

      it('refuses to create a session that exists, leaving it untouched', async () => {
        await uploadOf('taken', 'bytes');
        await expect(store().createUpload(NAMESPACE, 'taken')).rejects.toThrow();
        expect(await uploadContent('taken')).toBe('bytes');
        await store().deleteUpload(NAMESPACE, 'taken');
      });

      it('keeps sessions apart by namespace and by id', async () => {
        await store().createUpload('a', 'same-id');
        await store().createUpload('a/nested', 'same-id');
        await store().createUpload('a', 'other-id');
        await store().appendUpload('a', 'same-id', 0, bodyOf('one'));
        await store().appendUpload('a/nested', 'same-id', 0, bodyOf('two!'));
        expect(await store().uploadSize('a', 'same-id')).toBe(3);
        expect(await store().uploadSize('a/nested', 'same-id')).toBe(4);
        expect(await store().uploadSize('a', 'other-id')).toBe(0);
        await store().deleteUpload('a', 'same-id');
        expect(await store().uploadSize('a/nested', 'same-id')).toBe(4);
        await store().deleteUpload('a/nested', 'same-id');
        await store().deleteUpload('a', 'other-id');
      });

      it.each([
        ['../escape', 'id'],
        ['/abs', 'id'],
        ['', 'id'],
        ['a//b', 'id'],
        ['_blobs', 'id'],
        ['ns/_uploads', 'id'],
        ['ns', ''],
        ['ns', '..'],
        ['ns', 'a/b'],
        ['ns', '../../../escape'],
        ['ns', 'a\0b'],
      ])('rejects namespace %j with id %j with InvalidKeyError', async (namespace, id) => {
        await expect(store().createUpload(namespace, id)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store().uploadSize(namespace, id)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store().appendUpload(namespace, id, 0, bodyOf('x'))).rejects.toBeInstanceOf(
          InvalidKeyError,
        );
        await expect(store().readUpload(namespace, id)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store().commitUpload(namespace, id, digestOf('x'))).rejects.toBeInstanceOf(
          InvalidKeyError,
        );
        await expect(store().deleteUpload(namespace, id)).rejects.toBeInstanceOf(InvalidKeyError);
      });

      it('streams a 64 MiB append through without holding it, then commits and range-reads it', async () => {
        const chunkCount = 64;
        const payload = patternBody(chunkCount, MiB);
        await store().createUpload(NAMESPACE, 'big');
        expect(await store().appendUpload(NAMESPACE, 'big', 0, payload.body)).toBe(64 * MiB);
        expect(await store().uploadSize(NAMESPACE, 'big')).toBe(64 * MiB);

        const uploaded = await hashStream(await store().readUpload(NAMESPACE, 'big'));
        expect(uploaded).toMatchObject({ hex: payload.sha256(), size: 64 * MiB });
        expect(uploaded.largestChunk).toBeLessThanOrEqual(16 * MiB);

        const digest: DigestParts = { algorithm: 'sha256', hex: payload.sha256() };
        await store().commitUpload(NAMESPACE, 'big', digest);
        expect(await store().statBlob(digest)).toEqual({ size: 64 * MiB });
        const blob = await hashStream(await store().readBlob(digest));
        expect(blob.hex).toBe(payload.sha256());
        expect(blob.largestChunk).toBeLessThanOrEqual(16 * MiB);
        // Chunk i is filled with byte i: a range across a chunk boundary shows the order is right.
        const boundary = await readAll(await store().readBlob(digest, { start: MiB - 2, end: MiB + 1 }));
        expect([...boundary]).toEqual([0, 0, 1, 1]);
        const last = await readAll(
          await store().readBlob(digest, { start: 64 * MiB - 1, end: 64 * MiB - 1 }),
        );
        expect([...last]).toEqual([chunkCount - 1]);
        await store().deleteBlob(digest);
      }, 60_000);
    });
  });
}
