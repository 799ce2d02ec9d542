import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BlobStore,
  createBlobStore,
  createMetadataStore,
  keyFor,
  type MetadataStore,
  NotFoundError,
  StorageError,
} from '../src/index.js';
import { bodyOf, digestOf, patternBody, readAll } from '../src/testing/harness.js';
import { mountTmpfs } from '../src/testing/tmpfs.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

/** Every file and directory under `dir`, relative to it. */
async function treeOf(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

/** The error a promise rejects with. */
async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

/** A transient StorageError of the fs backend naming the operation, the key and the errno code. */
function expectStorageError(error: unknown, operation: string, key: string, code: string): void {
  expect(error).toBeInstanceOf(StorageError);
  const failure = error as StorageError;
  expect(failure.transient).toBe(true); // 503 UNAVAILABLE at the HTTP edge
  expect(failure.details).toMatchObject({ backend: 'fs', operation, key, code });
  expect(failure.message).toContain(operation);
  expect(failure.message).toContain(key);
}

// 1 MiB of tmpfs: a real ENOSPC, and EROFS once remounted read-only (root only: skipped elsewhere).
const tmpfs = await mountTmpfs(MiB);

describe.skipIf(!tmpfs)('fs store on a full or read-only filesystem', () => {
  let rootDir: string;
  let metadata: MetadataStore;
  let blobs: BlobStore;

  afterAll(async () => {
    await tmpfs?.unmount();
  });

  beforeEach(async () => {
    rootDir = join(tmpfs!.dir, 'store');
    metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: true });
    blobs = createBlobStore({ kind: 'fs', rootDir, syncToDisk: true });
  });

  afterEach(async () => {
    await tmpfs!.setReadOnly(false);
    await rm(rootDir, { recursive: true, force: true });
  });

  /** Takes every free byte of the filesystem with one file outside the store. */
  async function fillUp(): Promise<() => Promise<void>> {
    const filler = join(tmpfs!.dir, 'filler');
    const handle = await open(filler, 'w');
    try {
      const chunk = Buffer.alloc(64 * 1024, 1);
      for (;;) {
        const { bytesWritten } = await handle.write(chunk).catch((error: unknown) => {
          if ((error as { code?: string }).code === 'ENOSPC') return { bytesWritten: 0 };
          throw error;
        });
        if (bytesWritten < chunk.length) break;
      }
    } finally {
      await handle.close();
    }
    return () => rm(filler, { force: true });
  }

  it('fails a blob write or upload larger than the free space with a transient StorageError, leaving nothing', async () => {
    const big = Buffer.alloc(2 * MiB, 7);
    const digest = digestOf(big);
    expectStorageError(
      await failureOf(blobs.putBlob(digest, big)),
      'putBlob',
      keyFor({ kind: 'blob', digest }),
      'ENOSPC',
    );
    await expect(blobs.statBlob(digest)).rejects.toBeInstanceOf(NotFoundError);
    expect(await treeOf(rootDir)).toEqual([]);

    await blobs.createUpload('library/app', 'session');
    const { body } = patternBody(32, 64 * 1024);
    const uploadKey = keyFor({ kind: 'uploadData', namespace: 'library/app', id: 'session' });
    expectStorageError(
      await failureOf(blobs.appendUpload('library/app', 'session', 0, body)),
      'appendUpload',
      uploadKey,
      'ENOSPC',
    );
    // The session holds exactly what reached the disk, and goes whole.
    const size = await blobs.uploadSize('library/app', 'session');
    expect(size).toBeLessThan(2 * MiB);
    expect((await readAll(await blobs.readUpload('library/app', 'session'))).length).toBe(size);
    expect(await blobs.deleteUpload('library/app', 'session')).toBe(true);
    expect(await treeOf(rootDir)).toEqual([]);

    // Nothing stays broken: a blob that fits is written.
    await blobs.putBlob(digestOf('fits'), Buffer.from('fits'));
    expect(await blobs.deleteBlob(digestOf('fits'))).toBe(true);
  });

  it('fails metadata writes on a full filesystem with a transient StorageError, leaving no temp file or directory', async () => {
    await metadata.put('library/app/_manifests/tags/old/link', 'sha256:old');
    const release = await fillUp();
    try {
      const tag = 'library/app/_manifests/tags/new/link';
      const putError = await failureOf(metadata.put(tag, 'x'.repeat(64 * 1024)));
      expectStorageError(putError, 'put', tag, 'ENOSPC');
      expectStorageError(
        await failureOf(metadata.putIfAbsent(tag, 'x'.repeat(64 * 1024))),
        'putIfAbsent',
        tag,
        'ENOSPC',
      );
      // The replaced value stays whole.
      expectStorageError(
        await failureOf(metadata.put('library/app/_manifests/tags/old/link', 'y'.repeat(64 * 1024))),
        'put',
        'library/app/_manifests/tags/old/link',
        'ENOSPC',
      );
      expect((await metadata.get('library/app/_manifests/tags/old/link')).toString()).toBe('sha256:old');
      expect(await metadata.list('library/app/_manifests/tags')).toEqual(['old']);
      expect(await treeOf(rootDir)).toEqual([
        'library',
        'library/app',
        'library/app/_manifests',
        'library/app/_manifests/tags',
        'library/app/_manifests/tags/old',
        'library/app/_manifests/tags/old/link',
      ]);
    } finally {
      await release();
    }
    await metadata.put('library/app/_manifests/tags/new/link', 'sha256:new');
    await metadata.deletePrefix('library');
  });

  it('fails every write on a read-only filesystem with a transient StorageError; reads still work', async () => {
    const digest = digestOf('kept');
    await blobs.putBlob(digest, Buffer.from('kept'));
    await metadata.put('library/app/_manifests/tags/v1/link', 'sha256:kept');
    await blobs.createUpload('library/app', 'session');
    await tmpfs!.setReadOnly(true);

    const tag = 'library/app/_manifests/tags/v2/link';
    expectStorageError(await failureOf(metadata.put(tag, 'x')), 'put', tag, 'EROFS');
    expectStorageError(
      await failureOf(metadata.delete('library/app/_manifests/tags/v1/link')),
      'delete',
      'library/app/_manifests/tags/v1/link',
      'EROFS',
    );
    const other = digestOf('other');
    expectStorageError(
      await failureOf(blobs.putBlob(other, Buffer.from('other'))),
      'putBlob',
      keyFor({ kind: 'blob', digest: other }),
      'EROFS',
    );
    expectStorageError(
      await failureOf(blobs.appendUpload('library/app', 'session', 0, bodyOf('bytes'))),
      'appendUpload',
      keyFor({ kind: 'uploadData', namespace: 'library/app', id: 'session' }),
      'EROFS',
    );
    expectStorageError(
      await failureOf(blobs.createUpload('library/app', 'another')),
      'createUpload',
      keyFor({ kind: 'uploadData', namespace: 'library/app', id: 'another' }),
      'EROFS',
    );
    expect((await readAll(await blobs.readBlob(digest))).toString()).toBe('kept');
    expect((await metadata.get('library/app/_manifests/tags/v1/link')).toString()).toBe('sha256:kept');
  });
});

describe.skipIf(process.platform !== 'linux')('fs store out of file descriptors', () => {
  it('fails with a transient StorageError on EMFILE, and works again once descriptors are free', async () => {
    const rootDir = join(tmpfs?.dir ?? '/tmp', `angos-emfile-${process.pid}`);
    const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
    await metadata.put('library/app/_manifests/tags/v1/link', 'sha256:abc');
    const { stdout } = await run('prlimit', [
      '--pid',
      String(process.pid),
      '--nofile',
      '--output=SOFT,HARD',
      '--noheadings',
      '--raw',
    ]);
    const [soft, hard] = stdout.trim().split(/\s+/);
    // Restoring the limit must not need a descriptor: the restorer is started first, and told
    // to go through the pipe it already has.
    const restorer = spawn(
      'sh',
      ['-c', `read go; exec prlimit --pid ${process.pid} --nofile=${soft}:${hard}`],
      {
        stdio: ['pipe', 'ignore', 'inherit'],
      },
    );
    const restored = once(restorer, 'exit');
    // A real RLIMIT_NOFILE on this process: no new descriptor at all (those open stay open).
    await run('prlimit', ['--pid', String(process.pid), `--nofile=0:${hard}`]);
    let error: unknown;
    try {
      error = await failureOf(metadata.get('library/app/_manifests/tags/v1/link'));
    } finally {
      restorer.stdin.end('go\n');
      expect(await restored).toEqual([0, null]);
    }
    expectStorageError(error, 'get', 'library/app/_manifests/tags/v1/link', 'EMFILE');
    expect((await metadata.get('library/app/_manifests/tags/v1/link')).toString()).toBe('sha256:abc');
    await rm(rootDir, { recursive: true, force: true });
  });
});

describe('fs errors that are not about resources', () => {
  it('stay what they were: NotFoundError for a missing key, the error itself for a conflict', async () => {
    const rootDir = join(tmpfs?.dir ?? '/tmp', `angos-plain-${process.pid}`);
    const metadata = createMetadataStore({ kind: 'fs', rootDir, syncToDisk: false });
    await expect(metadata.get('library/app/_manifests/tags/none/link')).rejects.toBeInstanceOf(NotFoundError);
    await writeFile(
      join(tmpfs?.dir ?? '/tmp', `angos-plain-${process.pid}`),
      'a file where the root should be',
    );
    const error = await failureOf(metadata.put('library/app/_manifests/tags/v1/link', 'x'));
    expect(error).not.toBeInstanceOf(StorageError);
    await rm(rootDir, { recursive: true, force: true });
  });
});
