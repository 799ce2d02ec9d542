import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type BlobStore, BodyLengthError, keyFor, type MetadataStore, StorageError } from '../src/index.js';
import { openS3MultipartCleanup, probeCapabilities, S3Bucket } from '../src/s3/index.js';
import { bodyOf, digestOf, failingBodyOf, readAll } from '../src/testing/harness.js';
import {
  blobOptions,
  connection,
  freshPrefix,
  leftovers,
  MiB,
  metadataOptions,
  openBlobs,
  openMetadata,
  rawBucket,
  s3,
  wipe,
} from './s3-helpers.js';

const NS = 'library/app';
const ID = '3f1b9a2c-0000-4000-8000-000000000001';

/** Deterministic bytes: byte i of the stream is (i * 7 + seed) % 251. */
function pattern(size: number, seed = 0, from = 0): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = ((from + i) * 7 + seed) % 251;
  return bytes;
}

/** A body without a declared length, in 1 MiB chunks (as a chunked PATCH arrives). */
function chunked(bytes: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += MiB) chunks.push(bytes.subarray(at, at + MiB));
  return Readable.from(chunks, { objectMode: false });
}

interface SessionState {
  multipart?: { parts: Array<{ size: number }> };
  tail?: { size: number };
}

let prefixes: string[] = [];
let opened: Array<BlobStore | MetadataStore> = [];

function prefix(): string {
  const created = freshPrefix();
  prefixes.push(created);
  return created;
}

async function track<Store extends BlobStore | MetadataStore>(store: Promise<Store>): Promise<Store> {
  const created = await store;
  opened.push(created);
  return created;
}

afterEach(async () => {
  for (const store of opened) await store.close?.();
  for (const created of prefixes) await wipe(created);
  opened = [];
  prefixes = [];
});

/** The session's persisted state: where its parts and tail are. */
async function stateOf(keyPrefix: string): Promise<{ parts: number[]; tail: number | undefined }> {
  const bucket = rawBucket(keyPrefix);
  try {
    const found = await bucket.getBuffer(keyFor({ kind: 'uploadState', namespace: NS, id: ID }));
    const state = JSON.parse(found!.data.toString()) as SessionState;
    return {
      parts: (state.multipart?.parts ?? []).map((part) => part.size / MiB),
      tail: state.tail && state.tail.size / MiB,
    };
  } finally {
    bucket.destroy();
  }
}

describe.skipIf(!s3)('S3 blob store uploads', () => {
  it('non-uniform: known lengths become parts of their own size, chunked bodies coalesce into part-size parts', async () => {
    const keyPrefix = prefix();
    const store = await track(openBlobs(blobOptions(keyPrefix, { multipartPartSize: 10 * MiB })));
    const data = pattern(31 * MiB);
    await store.createUpload(NS, ID);
    // 3 MiB stays staged (below S3's 5 MiB part minimum)…
    expect(await store.appendUpload(NS, ID, 0, bodyOf(data.subarray(0, 3 * MiB)), 3 * MiB)).toBe(3 * MiB);
    expect(await stateOf(keyPrefix)).toEqual({ parts: [], tail: 3 });
    // …and streams out again with the next 4 MiB as one 7 MiB part.
    await store.appendUpload(NS, ID, 3 * MiB, bodyOf(data.subarray(3 * MiB, 7 * MiB)), 4 * MiB);
    expect(await stateOf(keyPrefix)).toEqual({ parts: [7], tail: undefined });
    await store.appendUpload(NS, ID, 7 * MiB, bodyOf(data.subarray(7 * MiB, 8 * MiB)), MiB);
    // Chunked: 1 MiB staged + 23 MiB streamed = two coalesced 10 MiB parts and a 4 MiB tail.
    expect(await store.appendUpload(NS, ID, 8 * MiB, chunked(data.subarray(8 * MiB)))).toBe(31 * MiB);
    expect(await stateOf(keyPrefix)).toEqual({ parts: [7, 10, 10], tail: 4 });
    // Only the session's state, its tail and its multipart upload are left: scratch uploads are gone.
    expect((await leftovers(keyPrefix)).sort()).toEqual([
      `${NS}/_uploads/${ID}/staged/s5`,
      `${NS}/_uploads/${ID}/state`,
      `multipart upload of ${NS}/_uploads/${ID}/data`,
    ]);
    const digest = digestOf(data);
    await store.commitUpload(NS, ID, digest);
    expect((await readAll(await store.readBlob(digest))).equals(data)).toBe(true);
    expect(await leftovers(keyPrefix)).toEqual([keyFor({ kind: 'blob', digest })]);
  });

  it('uniform: every non-final part is exactly the part size, whatever the PATCH sizes', async () => {
    const keyPrefix = prefix();
    const store = await track(
      openBlobs(blobOptions(keyPrefix, { multipartPartSize: 6 * MiB, multipartUniformParts: true })),
    );
    const data = pattern(21 * MiB, 3);
    await store.createUpload(NS, ID);
    await store.appendUpload(NS, ID, 0, bodyOf(data.subarray(0, 4 * MiB)), 4 * MiB);
    expect(await stateOf(keyPrefix)).toEqual({ parts: [], tail: 4 });
    await store.appendUpload(NS, ID, 4 * MiB, bodyOf(data.subarray(4 * MiB, 14 * MiB)), 10 * MiB);
    expect(await stateOf(keyPrefix)).toEqual({ parts: [6, 6], tail: 2 });
    await store.appendUpload(NS, ID, 14 * MiB, chunked(data.subarray(14 * MiB)));
    expect(await stateOf(keyPrefix)).toEqual({ parts: [6, 6, 6], tail: 3 });
    const digest = digestOf(data);
    await store.commitUpload(NS, ID, digest);
    expect((await readAll(await store.readBlob(digest))).equals(data)).toBe(true);
  });

  it('5 MiB parts: a chunked body streams plain 5 MiB parts, no coalescing', async () => {
    const keyPrefix = prefix();
    const store = await track(openBlobs(blobOptions(keyPrefix, { multipartPartSize: 5 * MiB })));
    await store.createUpload(NS, ID);
    await store.appendUpload(NS, ID, 0, chunked(pattern(12 * MiB)));
    expect(await stateOf(keyPrefix)).toEqual({ parts: [5, 5], tail: 2 });
    await store.deleteUpload(NS, ID);
    expect(await leftovers(keyPrefix)).toEqual([]);
  });

  it('continues a session on another instance (a restart, another replica), read back in between', async () => {
    const keyPrefix = prefix();
    const options = blobOptions(keyPrefix, { multipartPartSize: 10 * MiB });
    const first = await track(openBlobs(options));
    const second = await track(openBlobs(options));
    const data = pattern(26 * MiB, 5);
    await first.createUpload(NS, ID);
    await first.appendUpload(NS, ID, 0, chunked(data.subarray(0, 12 * MiB)));
    expect(await second.uploadSize(NS, ID)).toBe(12 * MiB);
    await second.appendUpload(NS, ID, 12 * MiB, bodyOf(data.subarray(12 * MiB, 20 * MiB)), 8 * MiB);
    // Reading back seals the session into one object; appending continues from it.
    expect((await readAll(await first.readUpload(NS, ID))).equals(data.subarray(0, 20 * MiB))).toBe(true);
    await first.appendUpload(NS, ID, 20 * MiB, chunked(data.subarray(20 * MiB)));
    const digest = digestOf(data);
    await second.commitUpload(NS, ID, digest);
    expect((await readAll(await first.readBlob(digest))).equals(data)).toBe(true);
    expect(await leftovers(keyPrefix)).toEqual([keyFor({ kind: 'blob', digest })]);
  });

  it('leaves the session as it was when a body fails or belies its length, and resumes', async () => {
    const keyPrefix = prefix();
    const store = await track(openBlobs(blobOptions(keyPrefix, { multipartPartSize: 10 * MiB })));
    const data = pattern(8 * MiB, 9);
    await store.createUpload(NS, ID);
    await store.appendUpload(NS, ID, 0, bodyOf(data.subarray(0, 2 * MiB)), 2 * MiB);
    const short = store.appendUpload(NS, ID, 2 * MiB, bodyOf(data.subarray(2 * MiB, 7 * MiB)), 6 * MiB);
    await expect(short).rejects.toBeInstanceOf(BodyLengthError);
    const failure = new Error('client went away');
    const broken = store.appendUpload(
      NS,
      ID,
      2 * MiB,
      failingBodyOf([data.subarray(2 * MiB, 8 * MiB).toString('latin1')], failure),
    );
    await expect(broken).rejects.toBe(failure);
    expect(await store.uploadSize(NS, ID)).toBe(2 * MiB);
    expect(await stateOf(keyPrefix)).toEqual({ parts: [], tail: 2 });
    // No scratch upload or staged object of the failed appends is left.
    expect((await leftovers(keyPrefix)).sort()).toEqual([
      `${NS}/_uploads/${ID}/staged/s1`,
      `${NS}/_uploads/${ID}/state`,
    ]);
    await store.appendUpload(NS, ID, 2 * MiB, chunked(data.subarray(2 * MiB)));
    expect((await readAll(await store.readUpload(NS, ID))).equals(data)).toBe(true);
    await store.deleteUpload(NS, ID);
    expect(await leftovers(keyPrefix)).toEqual([]);
  });

  it('serves a presigned URL that honours Range and the given Content-Type', async () => {
    const keyPrefix = prefix();
    const store = await track(openBlobs(blobOptions(keyPrefix)));
    const bytes = Buffer.from('0123456789abcdef');
    const digest = digestOf(bytes);
    await store.putBlob(digest, bytes);
    const url = await store.presignBlob!(digest, {
      expiresInSecs: 60,
      contentType: 'application/vnd.test+json',
    });
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('application/vnd.test+json');
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    const range = await fetch(url, { headers: { Range: 'bytes=2-5' } });
    expect(range.status).toBe(206);
    expect(await range.text()).toBe('2345');
    expect((await fetch(`${url}x`)).status).toBe(403);
  });
});

describe.skipIf(!s3)('S3 metadata store', () => {
  it('probes RGW: conditional puts work, conditional deletes are ignored (so not offered)', async () => {
    const bucket = rawBucket(prefix());
    try {
      expect(await probeCapabilities(bucket)).toEqual({
        putIfNoneMatch: true,
        putIfMatch: true,
        deleteIfMatch: false,
      });
    } finally {
      bucket.destroy();
    }
    const store = await track(openMetadata(metadataOptions(prefix())));
    expect(store.conditional).toBeDefined();
    expect(store.conditional?.deleteIfVersion).toBeUndefined();
  });

  it('uses declared capabilities without probing; all false means no compare-and-swap', async () => {
    const keyPrefix = prefix();
    const none = { putIfNoneMatch: false, putIfMatch: false, deleteIfMatch: false };
    const store = await track(openMetadata(metadataOptions(keyPrefix, { capabilities: none })));
    expect(store.conditional).toBeUndefined();
    expect(await store.putIfAbsent('ns/link', 'one')).toBe(true);
    expect(await store.putIfAbsent('ns/link', 'two')).toBe(false);
    expect((await store.get('ns/link')).toString()).toBe('one');
    // Nothing was probed: the only key ever written is ours.
    expect(await leftovers(keyPrefix)).toEqual(['ns/link']);
  });

  it('serves links from its cache for link_cache_ttl; its own writes show at once', async () => {
    const keyPrefix = prefix();
    const cached = await track(openMetadata(metadataOptions(keyPrefix, { linkCacheTtlSecs: 30 })));
    const uncached = await track(openMetadata(metadataOptions(keyPrefix, { linkCacheTtlSecs: 0 })));
    await cached.put('ns/_manifests/tags/v1/link', 'one');
    await cached.put('ns/other', 'one');
    expect((await cached.get('ns/_manifests/tags/v1/link')).toString()).toBe('one');
    // Another replica moves the tag: this one keeps the cached link until the TTL; other keys are read through.
    await uncached.put('ns/_manifests/tags/v1/link', 'two');
    await uncached.put('ns/other', 'two');
    expect((await cached.get('ns/_manifests/tags/v1/link')).toString()).toBe('one');
    expect((await cached.get('ns/other')).toString()).toBe('two');
    expect((await uncached.get('ns/_manifests/tags/v1/link')).toString()).toBe('two');
    await cached.put('ns/_manifests/tags/v1/link', 'three');
    expect((await cached.get('ns/_manifests/tags/v1/link')).toString()).toBe('three');
    await uncached.delete('ns/_manifests/tags/v1/link');
    await cached.deletePrefix('ns');
    await expect(cached.get('ns/_manifests/tags/v1/link')).rejects.toThrow();
  });

  it('batches deferred writes: nothing reaches S3 until the interval, close() writes the rest', async () => {
    const keyPrefix = prefix();
    const key = 'ns/_manifests/revisions/sha256/ab/pulledat';
    const store = await openMetadata(metadataOptions(keyPrefix, { accessTimeDebounceSecs: 1 }));
    store.putDeferred!(key, 'first');
    store.putDeferred!(key, 'second');
    expect((await store.get(key)).toString()).toBe('second');
    expect(await leftovers(keyPrefix)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const bucket = rawBucket(keyPrefix);
    try {
      expect((await bucket.getBuffer(key))?.data.toString()).toBe('second');
      store.putDeferred!(key, 'third');
      await store.close!();
      expect((await bucket.getBuffer(key))?.data.toString()).toBe('third');
    } finally {
      bucket.destroy();
    }
  });
});

describe.skipIf(!s3)('scrub --multipart', () => {
  it('finds multipart uploads no live session owns, older than the cut-off, and aborts them', async () => {
    const keyPrefix = prefix();
    const store = await track(openBlobs(blobOptions(keyPrefix, { multipartPartSize: 5 * MiB })));
    await store.createUpload(NS, ID);
    await store.appendUpload(NS, ID, 0, bodyOf(pattern(6 * MiB)), 6 * MiB);
    const bucket = rawBucket(keyPrefix);
    const cleanup = await openS3MultipartCleanup(blobOptions(keyPrefix));
    try {
      const orphanId = '3f1b9a2c-0000-4000-8000-000000000002';
      const abandoned = await bucket.createMultipartUpload(
        keyFor({ kind: 'uploadData', namespace: NS, id: orphanId }),
      );
      const scratch = await bucket.createMultipartUpload(`${NS}/_uploads/${ID}/staged/s99`);
      const foreign = await bucket.createMultipartUpload('not/a/registry/key');
      const list = async (olderThan: Date) => {
        const found: string[] = [];
        for await (const orphan of cleanup.orphans(olderThan)) found.push(orphan.uploadId);
        return found.sort();
      };
      // Nothing is old enough yet.
      expect(await list(new Date(Date.now() - 3_600_000))).toEqual([]);
      const orphans = await list(new Date(Date.now() + 60_000));
      expect(orphans).toEqual([abandoned, scratch].sort());
      for await (const orphan of cleanup.orphans(new Date(Date.now() + 60_000))) await cleanup.abort(orphan);
      expect(await list(new Date(Date.now() + 60_000))).toEqual([]);
      // The live session still completes; the foreign upload is not ours to touch.
      const digest = digestOf(pattern(6 * MiB));
      await store.commitUpload(NS, ID, digest);
      expect((await store.statBlob(digest)).size).toBe(6 * MiB);
      await bucket.abortMultipartUpload('not/a/registry/key', foreign);
    } finally {
      cleanup.close();
      bucket.destroy();
    }
  });
});

describe.skipIf(!s3)('S3 streamed bodies over a slow link', () => {
  it('are bounded by inactivity, not by operation_timeout_secs or operation_attempt_timeout_secs', async () => {
    const keyPrefix = prefix();
    const bucket = new S3Bucket(
      connection(keyPrefix, { operationTimeoutSecs: 1, operationAttemptTimeoutSecs: 1, maxAttempts: 1 }),
    );
    try {
      const uploadId = await bucket.createMultipartUpload('slow');
      // 8 × 64 KiB, 0.4 s apart: the body takes three times both timeouts, but bytes keep moving.
      const bytes = pattern(8 * 64 * 1024);
      async function* trickle() {
        for (let at = 0; at < bytes.length; at += 64 * 1024) {
          if (at > 0) await new Promise((resolve) => setTimeout(resolve, 400));
          yield bytes.subarray(at, at + 64 * 1024);
        }
      }
      const etag = await bucket.uploadPart('slow', uploadId, 1, {
        stream: Readable.from(trickle()),
        length: bytes.length,
      });
      await bucket.completeMultipartUpload('slow', uploadId, [{ number: 1, etag }]);
      expect((await bucket.getBuffer('slow'))?.data.equals(bytes)).toBe(true);
    } finally {
      bucket.destroy();
    }
  });
});

describe.skipIf(!s3)('S3 failures', () => {
  it('says which credential is wrong, or that the bucket is missing, at startup', async () => {
    const keyPrefix = freshPrefix();
    const attempt = (overrides: object) =>
      openBlobs({ ...blobOptions(keyPrefix), ...overrides }).catch((error: unknown) => error);
    const badSecret = await attempt({ secretAccessKey: 'not-the-secret' });
    expect(badSecret).toBeInstanceOf(StorageError);
    expect((badSecret as Error).message).toMatch(/secret key does not match.*check secret_key/);
    expect(((await attempt({ accessKeyId: 'UNKNOWNACCESSKEY0000' })) as Error).message).toMatch(
      /access key id is not known.*check access_key_id/,
    );
    const noBucket = (await attempt({ bucket: 'no-such-bucket' })) as Error;
    expect(noBucket.message).toMatch(/S3 bucket "no-such-bucket" at .*: the bucket does not exist/);
    const metadata = await openMetadata(metadataOptions(keyPrefix, { bucket: 'no-such-bucket' })).catch(
      (error: unknown) => error,
    );
    expect((metadata as Error).message).toMatch(/the bucket does not exist/);
  });

  describe('against a server that misbehaves', () => {
    let server: Server | undefined;
    let requests = 0;

    afterEach(async () => {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
      requests = 0;
    });

    async function misbehaving(answer: (res: import('node:http').ServerResponse) => void): Promise<string> {
      server = createServer((req, res) => {
        requests++;
        req.resume();
        answer(res);
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }

    it('retries throttling max_attempts times, then names the bucket, key and operation', async () => {
      const endpoint = await misbehaving((res) => {
        res.writeHead(503, { 'content-type': 'application/xml' });
        res.end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      });
      const store = await openMetadata({
        ...metadataOptions('p', {
          capabilities: { putIfNoneMatch: true, putIfMatch: true, deleteIfMatch: false },
        }),
        ...connection('p', { endpoint, maxAttempts: 2 }),
      }).catch((error: unknown) => error);
      expect(store).toBeInstanceOf(StorageError);
      const error = store as StorageError;
      expect(error.transient).toBe(true); // answered 503 at the HTTP edge, not 500
      expect(requests).toBe(2);
      expect(error.message).toMatch(
        /S3 ListObjectsV2 failed on bucket "test-bucket" at http:\/\/127\.0\.0\.1:\d+ after 2 attempts: SlowDown \(HTTP 503\): Please reduce your request rate/,
      );
      expect(error.details).toMatchObject({
        operation: 'ListObjectsV2',
        code: 'SlowDown',
        status: 503,
        attempts: 2,
      });
    });

    it('gives up on an attempt after operation_attempt_timeout_secs, and on the call after operation_timeout_secs', async () => {
      const endpoint = await misbehaving(() => {
        // Never answers.
      });
      const started = Date.now();
      const perAttempt = (await openBlobs({
        ...blobOptions('p'),
        ...connection('p', {
          endpoint,
          maxAttempts: 2,
          operationAttemptTimeoutSecs: 1,
          operationTimeoutSecs: 30,
        }),
      }).catch((error: unknown) => error)) as StorageError;
      expect(perAttempt).toBeInstanceOf(StorageError);
      expect(perAttempt.details.code).toBe('TimeoutError');
      expect(perAttempt.message).toMatch(
        /after 2 attempts: an attempt timed out after 1 s \(operation_attempt_timeout_secs\)/,
      );
      expect(requests).toBe(2);
      expect(Date.now() - started).toBeLessThan(10_000);
      const total = (await openBlobs({
        ...blobOptions('p'),
        ...connection('p', {
          endpoint,
          maxAttempts: 5,
          operationAttemptTimeoutSecs: 30,
          operationTimeoutSecs: 1,
        }),
      }).catch((error: unknown) => error)) as StorageError;
      expect(total.message).toMatch(/timed out after 1 s \(operation_timeout_secs\)/);
    });

    it('says the endpoint cannot be reached', async () => {
      const endpoint = await misbehaving(() => {});
      await new Promise<void>((resolve) => server!.close(() => resolve()));
      server = undefined;
      const error = (await openBlobs({
        ...blobOptions('p'),
        ...connection('p', { endpoint, maxAttempts: 1 }),
      }).catch((failure: unknown) => failure)) as StorageError;
      expect(error.message).toMatch(/the endpoint cannot be reached \(check endpoint\)/);
      expect(error.details.code).toBe('ECONNREFUSED');
    });
  });
});
