import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mountTmpfs } from '@angos/storage/tmpfs';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Api, FS, OCI_MANIFEST, pushBlob, pushImage, sha256, startApi } from './harness.js';

const MiB = 1024 * 1024;

// fs storage on a 2 MiB tmpfs: a real ENOSPC (root only; skipped with a warning elsewhere, fails under CI).
const tmpfs = await mountTmpfs(2 * MiB);

/** Temp files anywhere in the store: a failed write must remove its own. */
async function tempFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((path) =>
    path.split('/').pop()!.startsWith('.tmp-'),
  );
}

/** Takes every free byte of the filesystem with one file outside the store; returns its removal. */
async function fillUp(dir: string): Promise<() => Promise<void>> {
  const filler = join(dir, 'filler');
  const handle = await open(filler, 'w');
  try {
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (;;) {
      const written = await handle.write(chunk).then(
        (result) => result.bytesWritten,
        (error: { code?: string }) => {
          if (error.code === 'ENOSPC') return 0;
          throw error;
        },
      );
      if (written < chunk.length) break;
    }
  } finally {
    await handle.close();
  }
  return () => rm(filler, { force: true });
}

describe.skipIf(!tmpfs)('fs storage on a full filesystem', () => {
  let api: Api;
  let storeDir: string;

  beforeEach(async () => {
    storeDir = join(tmpfs!.dir, 'store');
    api = await startApi('', undefined, [], FS, undefined, storeDir);
  });

  afterEach(async () => {
    await api.close();
  });

  afterAll(async () => {
    await tmpfs?.unmount();
  });

  it('answers 503 UNAVAILABLE to a blob that does not fit, keeps no partial blob, and pushes again once space is free', async () => {
    const big = Buffer.alloc(3 * MiB);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i, i);
    const digest = sha256(big);

    const start = await api.send('POST', '/v2/t/img/blobs/uploads/');
    expect(start.status).toBe(202);
    const location = String(start.headers.location);
    const put = await api.send('PUT', `${location}?digest=${digest}`, {
      body: big,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(503);
    expect(put.json().errors[0].code).toBe('UNAVAILABLE');

    expect((await api.send('HEAD', `/v2/t/img/blobs/${digest}`)).status).toBe(404);
    expect(await api.blobHexes()).toEqual([]);
    expect(await tempFilesIn(storeDir)).toEqual([]);

    // The client gives the session up; its bytes go, and a push that fits succeeds.
    expect((await api.send('DELETE', location)).status).toBe(204);
    const image = await pushImage(api, 't/img', 'v1');
    expect((await api.send('GET', `/v2/t/img/manifests/${image.digest}`)).status).toBe(200);
  });

  it('answers 503 UNAVAILABLE to a manifest PUT on a full disk, leaving no tag and no temp file', async () => {
    const configBody = JSON.stringify({ architecture: 'amd64', os: 'linux' });
    const config = await pushBlob(api, 't/img', configBody);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: config,
        size: configBody.length,
      },
      layers: [],
      annotations: { padding: 'x'.repeat(32 * 1024) },
    });
    const release = await fillUp(tmpfs!.dir);
    try {
      const put = await api.send('PUT', '/v2/t/img/manifests/v1', {
        body: manifest,
        headers: { 'Content-Type': OCI_MANIFEST },
      });
      expect(put.status).toBe(503);
      expect(put.json().errors[0].code).toBe('UNAVAILABLE');
      expect((await api.send('GET', '/v2/t/img/manifests/v1')).status).toBe(404);
      expect(await tempFilesIn(storeDir)).toEqual([]);
    } finally {
      await release();
    }
    const again = await api.send('PUT', '/v2/t/img/manifests/v1', {
      body: manifest,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    expect(again.status).toBe(201);
    expect((await api.send('GET', '/v2/t/img/tags/list')).json().tags).toEqual(['v1']);
  });
});
