import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureDirectory, replaceFile } from '../src/fs/atomic-file.js';
import {
  blobCopyStream,
  createBlobStore,
  createMetadataStore,
  type DigestParts,
  FsBlobStore,
  FsMetadataStore,
  InvalidKeyError,
  keyFor,
  NotFoundError,
} from '../src/index.js';
import {
  describeBlobStoreContract,
  describeLegacyLayoutContract,
  describeMetadataStoreContract,
} from '../src/testing/contract.js';
import { bodyOf, digestOf, failingBodyOf, readAll } from '../src/testing/harness.js';

/** Every file and directory under `dir`, relative to it. */
async function treeOf(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

/** A store over a fresh temp directory, which must be empty (no temp files, no empty directories) at the end. */
function inTempDir<Store>(create: (rootDir: string) => Store) {
  return async () => {
    const rootDir = await mkdtemp(join(tmpdir(), 'angos-storage-'));
    return {
      store: create(rootDir),
      async cleanup() {
        try {
          expect(await treeOf(rootDir), 'files or directories left on disk').toEqual([]);
        } finally {
          await rm(rootDir, { recursive: true, force: true });
        }
      },
    };
  };
}

describeLegacyLayoutContract('fs', async () => {
  const rootDir = await mkdtemp(join(tmpdir(), 'angos-storage-legacy-'));
  const existsRaw = (path: string) =>
    stat(join(rootDir, path)).then(
      (stats) => stats.isFile(),
      () => false,
    );
  return {
    store: {
      blobs: createBlobStore({ kind: 'fs', rootDir, syncToDisk: false }),
      metadata: createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false }),
      async writeRaw(path, data) {
        await mkdir(dirname(join(rootDir, path)), { recursive: true });
        await writeFile(join(rootDir, path), data);
      },
      existsRaw,
    },
    async cleanup() {
      try {
        expect(await treeOf(rootDir), 'files or directories left on disk').toEqual([]);
      } finally {
        await rm(rootDir, { recursive: true, force: true });
      }
    },
  };
});

for (const syncToDisk of [false, true]) {
  const name = `fs (sync_to_disk = ${syncToDisk})`;
  describeMetadataStoreContract(
    name,
    inTempDir((rootDir) => createMetadataStore({ kind: 'fs', rootDir, syncToDisk })),
  );
  describeBlobStoreContract(
    name,
    inTempDir((rootDir) => createBlobStore({ kind: 'fs', rootDir, syncToDisk })),
  );
}

describe('fs driver', () => {
  let parentDir: string;
  let rootDir: string;

  beforeEach(async () => {
    parentDir = await mkdtemp(join(tmpdir(), 'angos-storage-fs-'));
    rootDir = join(parentDir, 'root');
  });

  afterEach(async () => {
    await rm(parentDir, { recursive: true, force: true });
  });

  it('never writes outside its root for hostile keys, even used without the validating wrapper', async () => {
    const metadata = new FsMetadataStore(rootDir, { syncToDisk: false });
    const blobs = new FsBlobStore(rootDir, { syncToDisk: false });
    const hostile = ['../escape', '../../escape', 'a/../../escape', '../root-sibling/link', 'a/../..'];
    for (const key of hostile) {
      await expect(metadata.put(key, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(metadata.putIfAbsent(key, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(metadata.deletePrefix(key)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(blobs.createUpload(key, 'id')).rejects.toBeInstanceOf(InvalidKeyError);
    }
    const escaping: DigestParts = { algorithm: 'sha256', hex: '../../../escape' };
    await expect(blobs.putBlob(escaping, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
    await blobs.createUpload('ns', 'id');
    await expect(blobs.commitUpload('ns', 'id', escaping)).rejects.toBeInstanceOf(InvalidKeyError);
    await blobs.deleteUpload('ns', 'id');
    // Only the root itself (created by the legitimate upload) exists, and it is empty again.
    expect(await treeOf(parentDir)).toEqual(['root']);
  });

  it('reads a blob in chunks no larger than the bytes asked for, at most 1 MiB', async () => {
    // A 1 MiB buffer per read of a 4 KiB config blob made small GETs allocation-bound (7× slower).
    const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
    const small = Buffer.alloc(4096, 1);
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 2);
    await blobs.putBlob(digestOf(small), small);
    await blobs.putBlob(digestOf(big), big);
    const whole = await blobs.readBlob(digestOf(small));
    expect(whole.readableHighWaterMark).toBe(4096);
    expect(await readAll(whole)).toEqual(small);
    const range = await blobs.readBlob(digestOf(big), { start: 10, end: 109 });
    expect(range.readableHighWaterMark).toBe(100);
    expect(await readAll(range)).toEqual(big.subarray(10, 110));
    const large = await blobs.readBlob(digestOf(big));
    expect(large.readableHighWaterMark).toBe(1024 * 1024);
    expect(await readAll(large)).toEqual(big);
  });

  it('settles a failed append only once the write in flight has landed', async () => {
    // The body hands over 32 MiB and fails at once: the write is still running when the failure
    // arrives. Returning then would report a size the file has already outgrown.
    const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
    for (let round = 0; round < 3; round++) {
      const id = `failing-${round}`;
      await blobs.createUpload('library/app', id);
      // Fails once the store has started pulling (so its pipeline is listening for the error).
      let pulled = false;
      const body = new Readable({
        read() {
          if (pulled) return;
          pulled = true;
          this.push(Buffer.alloc(32 * 1024 * 1024, 1));
          setImmediate(() => this.destroy(new Error('client went away')));
        },
      });
      await expect(blobs.appendUpload('library/app', id, 0, body)).rejects.toThrow('client went away');
      const reported = await blobs.uploadSize('library/app', id);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await blobs.uploadSize('library/app', id)).toBe(reported);
      await blobs.deleteUpload('library/app', id);
    }
  });

  describe('openBlobCopy', () => {
    /** A destination that takes its time: it copies each chunk only when it acknowledges it. */
    function slowSink(delayMs: number) {
      const received: Buffer[] = [];
      const sink = new Writable({
        highWaterMark: 1,
        write(chunk: Buffer, _encoding, done) {
          setTimeout(() => {
            received.push(Buffer.from(chunk)); // the bytes as they are when acknowledged
            done();
          }, delayMs);
        },
      });
      return { sink, bytes: () => Buffer.concat(received) };
    }

    it('copies a blob, or a range of it, intact through reused buffers to a slow destination', async () => {
      const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
      // Distinct bytes in every chunk: a buffer reused before its write was acknowledged shows.
      const big = Buffer.alloc(5 * 1024 * 1024 + 123);
      for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(i, i);
      const digest = digestOf(big);
      await blobs.putBlob(digest, big);
      const whole = slowSink(2);
      await (await blobs.openBlobCopy!(digest)).copyTo(whole.sink);
      expect(whole.bytes().equals(big)).toBe(true);
      const part = slowSink(1);
      await (await blobs.openBlobCopy!(digest, { start: 1_000_000, end: 3_500_000 })).copyTo(part.sink);
      expect(part.bytes().equals(big.subarray(1_000_000, 3_500_001))).toBe(true);
      // An end past the blob reads to its end, as readBlob does.
      const tail = slowSink(0);
      await (await blobs.openBlobCopy!(digest, { start: big.length - 10, end: big.length + 100 })).copyTo(
        tail.sink,
      );
      expect(tail.bytes().equals(big.subarray(big.length - 10))).toBe(true);
      const empty = digestOf('');
      await blobs.putBlob(empty, Buffer.alloc(0));
      const none = slowSink(0);
      await (await blobs.openBlobCopy!(empty)).copyTo(none.sink);
      expect(none.bytes().length).toBe(0);
    });

    it('reaches an in-memory consumer intact through blobCopyStream, however long it holds each chunk', async () => {
      const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
      const big = Buffer.alloc(5 * 1024 * 1024 + 123);
      for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(i, i);
      const digest = digestOf(big);
      await blobs.putBlob(digest, big);
      // Keeps every chunk it is given, by reference, the way a response queued behind a slow
      // client does: a buffer the copy reused meanwhile would change under it.
      const held: Buffer[] = [];
      const keeper = new Writable({
        highWaterMark: 1,
        write(chunk: Buffer, _encoding, done) {
          held.push(chunk);
          setTimeout(done, 2);
        },
      });
      await pipeline(blobCopyStream(await blobs.openBlobCopy!(digest)), keeper);
      expect(Buffer.concat(held).equals(big)).toBe(true);
    });

    // Their memory goes back when the copy ends, not at the next collection; a buffer is freed only
    // once the destination has acknowledged it.
    it('frees its read buffers when the copy ends, and none the destination has not acknowledged', async () => {
      const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
      const big = Buffer.alloc(3 * 1024 * 1024 + 5, 3);
      const digest = digestOf(big);
      await blobs.putBlob(digest, big);
      const given: Buffer[] = [];
      const acknowledging = new Writable({
        write(chunk: Buffer, _encoding, done) {
          given.push(chunk);
          done();
        },
      });
      await (await blobs.openBlobCopy!(digest)).copyTo(acknowledging);
      expect(given.length).toBe(4);
      expect(given.map((chunk) => chunk.buffer.byteLength)).toEqual([0, 0, 0, 0]);

      let held: Buffer | undefined;
      const holding = new Writable({
        write(chunk: Buffer) {
          held = chunk; // never acknowledged
        },
      });
      setTimeout(() => holding.destroy(), 20);
      await expect((await blobs.openBlobCopy!(digest)).copyTo(holding)).rejects.toThrow();
      expect(held?.length).toBe(1024 * 1024);
      expect(held?.equals(big.subarray(0, 1024 * 1024))).toBe(true);
    });

    it('fails before writing for an absent blob, and stops when the destination goes away', async () => {
      const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
      await expect(blobs.openBlobCopy!(digestOf('absent'))).rejects.toBeInstanceOf(NotFoundError);
      const big = Buffer.alloc(8 * 1024 * 1024, 7);
      await blobs.putBlob(digestOf(big), big);
      const descriptorsBefore = (await readdir('/proc/self/fd')).length;
      const { sink } = slowSink(5);
      setTimeout(() => sink.destroy(), 12);
      await expect((await blobs.openBlobCopy!(digestOf(big))).copyTo(sink)).rejects.toThrow();
      expect((await readdir('/proc/self/fd')).length).toBe(descriptorsBefore);
      // Opened and never copied: close() releases the file.
      await (await blobs.openBlobCopy!(digestOf(big))).close();
      expect((await readdir('/proc/self/fd')).length).toBe(descriptorsBefore);
    });
  });

  it('lays files out exactly as keyFor() says', async () => {
    const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
    const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
    const digest = digestOf('layer');
    await blobs.createUpload('library/app', 'session');
    await blobs.appendUpload('library/app', 'session', 0, bodyOf('layer'));
    expect(
      (await stat(join(rootDir, keyFor({ kind: 'uploadData', namespace: 'library/app', id: 'session' }))))
        .size,
    ).toBe(5);
    await blobs.commitUpload('library/app', 'session', digest);
    expect(await readFile(join(rootDir, keyFor({ kind: 'blob', digest }), ''), 'utf8')).toBe('layer');
    const tag = keyFor({ kind: 'tagLink', namespace: 'library/app', tag: 'latest' });
    await metadata.put(tag, 'sha256:abc');
    expect(await readFile(join(rootDir, tag), 'utf8')).toBe('sha256:abc');
    expect(await treeOf(rootDir)).toEqual(
      [
        '_blobs',
        '_blobs/sha256',
        `_blobs/sha256/${digest.hex.slice(0, 2)}`,
        `_blobs/sha256/${digest.hex.slice(0, 2)}/${digest.hex}`,
        'library',
        'library/app',
        'library/app/_manifests',
        'library/app/_manifests/tags',
        'library/app/_manifests/tags/latest',
        'library/app/_manifests/tags/latest/link',
      ].sort(),
    );
  });

  it('leaves no file at the final path, and no temp file, when a write’s source fails midway', async () => {
    const target = join(rootDir, 'ns', 'link');
    const failure = new Error('source failed');
    await expect(replaceFile(target, failingBodyOf(['partial ', 'bytes'], failure), false)).rejects.toBe(
      failure,
    );
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await treeOf(rootDir)).toEqual(['ns']);

    await replaceFile(target, Buffer.from('complete'), false);
    await expect(replaceFile(target, failingBodyOf(['partial'], failure, 10), true)).rejects.toBe(failure);
    expect(await readFile(target, 'utf8')).toBe('complete');
    expect(await treeOf(rootDir)).toEqual(['ns', 'ns/link']);
  });

  it('keeps exactly the bytes that reached an upload before its body failed, and makes no blob', async () => {
    const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: true });
    await blobs.createUpload('ns', 'upload');
    const failure = new Error('client went away');
    await expect(
      blobs.appendUpload('ns', 'upload', 0, failingBodyOf(['aaaa', 'bbbb'], failure, 20)),
    ).rejects.toBe(failure);
    expect(await blobs.uploadSize('ns', 'upload')).toBe(8);
    expect((await readAll(await blobs.readUpload('ns', 'upload'))).toString()).toBe('aaaabbbb');
    await blobs.deleteUpload('ns', 'upload');
    expect(await treeOf(rootDir)).toEqual([]);
  });

  it('does not list temp files a crash left behind', async () => {
    const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
    const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
    await mkdir(join(rootDir, 'ns'), { recursive: true });
    await writeFile(join(rootDir, 'ns', '.tmp-deadbeef-1'), 'half a value');
    await metadata.put('ns/link', 'x');
    expect(await metadata.list('ns')).toEqual(['link']);
    expect(await metadata.listPage('ns', { limit: 1 })).toEqual(['link']);
    expect(await metadata.listPage('ns', { after: '.tmp-deadbeef-0', limit: 5 })).toEqual(['link']);
    const digest = digestOf('blob');
    await blobs.putBlob(digest, Buffer.from('blob'));
    await writeFile(join(rootDir, '_blobs', 'sha256', '.tmp-deadbeef-2'), 'half a blob');
    await writeFile(
      join(rootDir, '_blobs', 'sha256', digest.hex.slice(0, 2), '.tmp-deadbeef-3'),
      'half a blob',
    );
    const listed: DigestParts[] = [];
    for await (const found of blobs.listBlobs()) listed.push(found);
    expect(listed).toEqual([digest]);
  });

  it.each([false, true])(
    'never fails a write racing a delete that prunes its directories (sync_to_disk = %s)',
    async (syncToDisk) => {
      const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk });
      for (let i = 0; i < 300; i++) {
        await metadata.put('ns/t/a/link', 'x');
        // The delete prunes ns/t/a and ns/t whenever it sees them empty, which is
        // exactly where the two writers are about to create their files.
        await Promise.all([
          metadata.delete('ns/t/a/link'),
          metadata.put('ns/t/a/other', 'y'),
          metadata.putIfAbsent('ns/t/sibling', 'z'),
        ]);
        expect((await metadata.get('ns/t/a/other')).toString()).toBe('y');
        expect((await metadata.get('ns/t/sibling')).toString()).toBe('z');
        await Promise.all([metadata.delete('ns/t/a/other'), metadata.delete('ns/t/sibling')]);
      }
      expect(await treeOf(rootDir)).toEqual([]);
    },
  );

  it('creates a directory while a prune removes it and its parents (mkdir -p answers ENOTDIR then)', async () => {
    // Node's recursive mkdir stats a directory it found existing; pruned in between, it answers
    // ENOTDIR (an upload start answered 500 under load). The race is timing-bound: 1.5 s of it
    // hit it tens of times on the 2-core development machine before the fix.
    const target = join(rootDir, 'ns', 'app', '_uploads');
    const prunable = [target, dirname(target), dirname(dirname(target))];
    const failures: string[] = [];
    let created = 0;
    const stopAt = Date.now() + 1500;
    const makers = Array.from({ length: 4 }, async () => {
      while (Date.now() < stopAt) {
        await ensureDirectory(target, false).then(
          () => created++,
          (error: NodeJS.ErrnoException) => failures.push(String(error.code)),
        );
      }
    });
    const pruners = Array.from({ length: 3 }, async () => {
      while (Date.now() < stopAt) {
        for (const dir of prunable) await rmdir(dir).catch(() => undefined);
      }
    });
    await Promise.all([...makers, ...pruners]);
    expect(failures).toEqual([]);
    expect(created).toBeGreaterThan(0);
  });

  it('shares one root between blob and metadata stores without either deleting the other’s files', async () => {
    const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
    const blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: false });
    const startedAt = keyFor({ kind: 'uploadStartedAt', namespace: 'ns', id: 'session' });
    await blobs.createUpload('ns', 'session');
    await metadata.put(startedAt, '2024-01-01T00:00:00Z');
    expect(await metadata.list(keyFor({ kind: 'upload', namespace: 'ns', id: 'session' }))).toEqual([
      'data',
      'startedat',
    ]);
    await blobs.deleteUpload('ns', 'session');
    expect((await metadata.get(startedAt)).toString()).toBe('2024-01-01T00:00:00Z');
    await metadata.delete(startedAt);
    expect(await treeOf(rootDir)).toEqual([]);
  });

  it('refuses a value where a prefix is, or under a value, with InvalidKeyError', async () => {
    const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
    await metadata.put('a/b', 'value');
    await expect(metadata.put('a/b/c', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(metadata.put('a', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await metadata.putIfAbsent('a', 'x')).toBe(false);
    expect(await treeOf(rootDir)).toEqual(['a', 'a/b']);
  });
});
