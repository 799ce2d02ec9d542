import { createHash, randomUUID } from 'node:crypto';
import { JobQueue } from '@angos/jobs';
import { keyFor, openMetadataStore } from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import { type S3TestServer, startS3ForTests } from '@angos/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  configOnlyManifest,
  freePort,
  fresh,
  killAll,
  runAngos,
  startAngos,
  type Workspace,
  waitForHttp,
  waitForRecord,
  workspace,
} from './helpers.js';

let ws: Workspace;
let s3: S3TestServer | null = null;

// A real S3 server (Ceph RGW): installed from Debian's packages on first use, so allow for that.
beforeAll(async () => {
  ws = await workspace();
  s3 = await startS3ForTests();
}, 15 * 60_000);
afterEach(() => killAll());
afterAll(async () => {
  await s3?.stop();
  await ws?.remove();
}, 60_000);

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';

function s3Table(section: string, keyPrefix: string, overrides: Record<string, string> = {}): string {
  const options = {
    access_key_id: s3!.accessKeyId,
    secret_key: s3!.secretAccessKey,
    endpoint: s3!.endpoint,
    bucket: s3!.bucket,
    region: s3!.region,
    key_prefix: keyPrefix,
    ...overrides,
  };
  return `[${section}]\n${Object.entries(options)
    .map(([key, value]) => `${key} = ${JSON.stringify(value)}`)
    .join('\n')}\n`;
}

function serverConfig(port: number, storage: string): string {
  return `[server]\nbind_address = "127.0.0.1"\nport = ${port}\n${ALLOW}${storage}`;
}

function bucketAt(keyPrefix: string): S3Bucket {
  return new S3Bucket({
    ...s3!,
    keyPrefix,
    maxAttempts: 3,
    operationTimeoutSecs: 30,
    operationAttemptTimeoutSecs: 10,
  });
}

describe('angos on S3 (spawned)', () => {
  it('refuses to start with a wrong secret or a missing bucket, saying which', async (context) => {
    if (!s3) return context.skip();
    await ws.writeConfig(serverConfig(8000, s3Table('blob_store.s3', 'p', { secret_key: 'wrong' })));
    const badSecretMessage =
      /^blob_store\.s3: S3 bucket "test-bucket" at http:\/\/127\.0\.0\.1:\d+: the secret key does not match the access key id \(check secret_key\)/m;
    const badSecret = await runAngos(['-c', ws.configPath, 'server']);
    expect(badSecret.code).toBe(1);
    expect(badSecret.stderr).toMatch(badSecretMessage);
    // The same from a serving thread: the main thread reports it and the process ends.
    const badSecretThreads = await runAngos(['-c', ws.configPath, 'server', '--workers', '2']);
    expect(badSecretThreads.code).toBe(1);
    expect(badSecretThreads.stderr).toMatch(badSecretMessage);
    await ws.writeConfig(
      serverConfig(
        8000,
        `${s3Table('blob_store.s3', 'p')}${s3Table('metadata_store.s3', 'p', { bucket: 'missing' })}`,
      ),
    );
    const noBucket = await runAngos(['-c', ws.configPath, 'server']);
    expect(noBucket.code).toBe(1);
    expect(noBucket.stderr).toMatch(
      /^metadata_store\.s3: S3 bucket "missing" at .*: the bucket does not exist/m,
    );
  }, 60_000);

  it('serves a push and a redirected pull with blobs and metadata on S3', async (context) => {
    if (!s3) return context.skip();
    const port = await freePort();
    const keyPrefix = `angos-cli-test/${randomUUID()}`;
    await ws.writeConfig(serverConfig(port, s3Table('blob_store.s3', keyPrefix)));
    const server = startAngos(['-c', ws.configPath, 'server']);
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/readyz`, server);
    const data = Buffer.from('a layer stored in S3');
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const pushed = await fetch(`${url}/v2/t/img/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: data,
    });
    expect(pushed.status).toBe(201);
    const redirected = await fetch(`${url}/v2/t/img/blobs/${digest}`, { redirect: 'manual' });
    expect(redirected.status).toBe(307);
    expect(redirected.headers.get('location')).toMatch(
      new RegExp(`^${s3!.endpoint}/${s3!.bucket}/${keyPrefix}/_blobs/sha256/`),
    );
    const pulled = await fetch(`${url}/v2/t/img/blobs/${digest}`, { headers: { Range: 'bytes=2-6' } });
    expect(pulled.status).toBe(206);
    expect(await pulled.text()).toBe('layer');
    expect(await server.stop()).toBe(0);
    const bucket = bucketAt(keyPrefix);
    try {
      const keys: string[] = [];
      for await (const key of bucket.listKeys('')) keys.push(key);
      expect(keys.sort()).toEqual([
        keyFor({ kind: 'blobIndex', digest: { algorithm: 'sha256', hex: digest.slice(7) } }),
        keyFor({ kind: 'blob', digest: { algorithm: 'sha256', hex: digest.slice(7) } }),
        `t/img/_layers/sha256/${digest.slice(7)}/link`,
      ]);
      await bucket.deleteMany(keys);
    } finally {
      bucket.destroy();
    }
  }, 60_000);
});

describe('angos scrub', () => {
  it('answers a tag moved through one serving thread with its new manifest on the other (memory lock)', async (context) => {
    if (!s3) return context.skip();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const prefix = `threads-${randomUUID()}`;
    // The default link_cache_ttl (30 s): a cache per thread would answer the old digest.
    await ws.writeConfig(serverConfig(port, s3Table('blob_store.s3', prefix)));
    const server = startAngos(['-c', ws.configPath, 'server', '--workers', '2']);
    await waitForRecord(server, (record) => record['message'] === 'serving threads started');
    const config = Buffer.from('{}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const pushed = await fresh(`${url}/v2/threads/app/blobs/uploads/?digest=${configDigest}`, {
      method: 'POST',
      body: config,
    });
    expect(pushed.status).toBe(201);
    for (let round = 0; round < 6; round += 1) {
      const manifest = configOnlyManifest({ digest: configDigest, size: 2 }, { round: String(round) });
      const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
      const put = await fresh(`${url}/v2/threads/app/manifests/latest`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: manifest,
      });
      expect(put.status).toBe(201);
      for (let read = 0; read < 4; read += 1) {
        const head = await fresh(`${url}/v2/threads/app/manifests/latest`, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        });
        expect(head.headers['docker-content-digest']).toBe(digest);
      }
    }
    expect(await server.stop()).toBe(0);
  }, 120_000);

  it('angos worker drains a job queued in S3 metadata, under S3 locks', async (context) => {
    if (!s3) return context.skip();
    const prefix = `worker-${randomUUID()}`;
    const port = await freePort();
    await ws.writeConfig(
      `${serverConfig(0, `${s3Table('blob_store.s3', prefix)}${s3Table('metadata_store.s3', prefix)}`)}` +
        '[metadata_store.s3.lock_strategy.s3]\n[global.job_queue]\n',
    );
    const store = await openMetadataStore({
      kind: 's3',
      ...s3,
      keyPrefix: prefix,
      maxAttempts: 3,
      operationTimeoutSecs: 30,
      operationAttemptTimeoutSecs: 10,
      linkCacheTtlSecs: 0,
      accessTimeDebounceSecs: 0,
    });
    const queue = new JobQueue({ store });
    const { id } = await queue.enqueue('replication', 'from-the-future', 'on-s3', {});
    const worker = startAngos(['-c', ws.configPath, 'worker', '--listen', `127.0.0.1:${port}`]);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, worker);
    const deadline = Date.now() + 60_000;
    let failed: string | undefined;
    while (failed === undefined && Date.now() < deadline) {
      failed = (await queue.listFailed('replication')).items.find((job) => job.id === id)?.lastError;
      if (failed === undefined) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(failed, worker.output()).toBe('unknown job kind "from-the-future"');
    expect(await worker.stop(30_000)).toBe(0);
    await queue.deleteFailed('replication', id);
    await store.close?.();
  }, 120_000);

  it('needs a check', async () => {
    await ws.writeConfig(serverConfig(8000, `[blob_store.fs]\nroot_dir = ${JSON.stringify(ws.dir)}\n`));
    const none = await runAngos(['-c', ws.configPath, 'scrub']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('specify which checks to run');
    const badDuration = await runAngos(['-c', ws.configPath, 'scrub', '--multipart', '1 hour']);
    expect(badDuration.code).toBe(1);
    expect(badDuration.stderr).toContain(
      '--multipart: invalid duration "1 hour" (expected e.g. 500ms, 30m, 1h, 2d)',
    );
  });

  it('has nothing to do for --multipart on a filesystem blob store', async () => {
    await ws.writeConfig(serverConfig(8000, `[blob_store.fs]\nroot_dir = ${JSON.stringify(ws.dir)}\n`));
    const result = await runAngos(['-c', ws.configPath, 'scrub', '--multipart', '1h'], {
      env: { RUST_LOG: 'info' },
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('the blob store is not S3');
  });

  it('aborts orphan S3 multipart uploads older than the duration; --dry-run only lists them', async (context) => {
    if (!s3) return context.skip();
    const keyPrefix = `angos-cli-test/${randomUUID()}`;
    await ws.writeConfig(serverConfig(8000, s3Table('blob_store.s3', keyPrefix)));
    const bucket = bucketAt(keyPrefix);
    try {
      const orphanKey = `t/img/_uploads/${randomUUID()}/data`;
      const uploadId = await bucket.createMultipartUpload(orphanKey);
      const uploads = async () => {
        const found: string[] = [];
        for await (const upload of bucket.listMultipartUploads('')) found.push(upload.uploadId);
        return found;
      };
      const env = { RUST_LOG: 'info' };
      const young = await runAngos(['-c', ws.configPath, 'scrub', '--multipart', '1h'], { env });
      expect(young.code).toBe(0);
      expect(young.stderr).toMatch(/"found":0/);
      const dryRun = await runAngos(['-c', ws.configPath, 'scrub', '-d', '-p', '0s'], { env });
      expect(dryRun.code).toBe(0);
      expect(dryRun.stderr).toContain('orphan multipart upload (dry run: kept)');
      expect(await uploads()).toEqual([uploadId]);
      const real = await runAngos(['-c', ws.configPath, 'scrub', '-p', '0s'], { env });
      expect(real.code).toBe(0);
      expect(real.stderr).toContain('orphan multipart upload aborted');
      expect(real.stderr).toContain(orphanKey);
      expect(await uploads()).toEqual([]);
    } finally {
      bucket.destroy();
    }
  }, 60_000);
});
