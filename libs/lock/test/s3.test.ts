import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type S3TestServer, skipWithoutS3, startS3TestServer } from '@angos/test-support';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockUnsupportedError } from '../src/index.js';
import { S3LockManager, type S3LockOptions } from '../src/s3/s3-lock.js';
import { describeLockContract } from '../src/testing/contract.js';
import { HeldReplyProxy } from './held-reply-proxy.js';

let server: S3TestServer;
let admin: S3Client;

// A Ceph RGW; without Ceph installed the suites skip with a warning (under CI they fail).
const skip = skipWithoutS3('the S3 lock tests');

beforeAll(async () => {
  if (skip) return;
  server = await startS3TestServer();
  admin = new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}, 180_000);

afterAll(async () => {
  admin?.destroy();
  await server?.stop();
}, 60_000);

/** The reference's minimum TTL; max_hold_secs at its minimum too. */
const TTL_SECS = 9;
const MAX_HOLD_SECS = 10;

function lockOptions(
  keyPrefix: string,
  overrides: Partial<S3LockOptions> = {},
): Omit<S3LockOptions, 'logger'> {
  return {
    endpoint: server.endpoint,
    region: server.region,
    bucket: server.bucket,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    keyPrefix,
    ttlSecs: TTL_SECS,
    maxRetries: 100,
    retryDelayMs: 50,
    maxHoldSecs: MAX_HOLD_SECS,
    operationTimeoutSecs: 15,
    operationAttemptTimeoutSecs: 1,
    maxAttempts: 2,
    ...overrides,
  };
}

const objectKey = (keyPrefix: string, key: string) => `${keyPrefix}/_locks/${encodeURIComponent(key)}`;

async function objectsUnder(prefix: string): Promise<string[]> {
  const listed = await admin.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((object) => object.Key!);
}

/** Whether `request` is the conditional create (`If-None-Match: *`) of the lock object of `key`. */
function isCreateOf(request: IncomingMessage, key: string): boolean {
  const path = (request.url ?? '').split('?')[0] ?? '';
  return (
    request.method === 'PUT' &&
    request.headers['if-none-match'] === '*' &&
    path.endsWith(`/_locks/${encodeURIComponent(key)}`)
  );
}

/** Runs `test` with a proxy in front of RGW holding back the answers `hold` selects. */
async function behindProxy(
  hold: (request: IncomingMessage) => boolean,
  test: (proxy: HeldReplyProxy) => Promise<void>,
): Promise<void> {
  const proxy = new HeldReplyProxy(server.endpoint, hold);
  await proxy.start();
  try {
    await test(proxy);
  } finally {
    await proxy.stop();
  }
}

/** Whether another caller takes `key` at its first try (no lock object left in the way). */
async function takenAtOnce(keyPrefix: string, key: string): Promise<boolean> {
  const locks = new S3LockManager(lockOptions(keyPrefix, { maxRetries: 0 }));
  try {
    return await locks.withLocks([key], async () => true);
  } finally {
    await locks.close();
  }
}

describe.skipIf(skip)('S3 locks', () => {
  describeLockContract(
    's3 (Ceph RGW)',
    async () => {
      const keyPrefix = `lock-test-${randomUUID()}`;
      const options = lockOptions(keyPrefix);
      return {
        backend: 's3',
        manager: ({ maxRetries, maxHoldMs } = {}) =>
          new S3LockManager({
            ...options,
            maxRetries: maxRetries ?? 100,
            maxHoldSecs: maxHoldMs === undefined ? options.maxHoldSecs : maxHoldMs / 1000,
          }),
        distributed: {
          ttlMs: TTL_SECS * 1000,
          maxHoldMs: MAX_HOLD_SECS * 1000,
          holder: { backend: 's3', options },
          steal: async (key) => {
            await admin.send(
              new PutObjectCommand({
                Bucket: server.bucket,
                Key: objectKey(keyPrefix, key),
                Body: JSON.stringify({ token: 'intruder', owner: 'test', renewal: 0 }),
              }),
            );
          },
          remove: async (key) => {
            await admin.send(
              new DeleteObjectCommand({ Bucket: server.bucket, Key: objectKey(keyPrefix, key) }),
            );
          },
          removedReason: 'file_disappeared',
          leftovers: () => objectsUnder(`${keyPrefix}/`),
        },
        async cleanup() {},
      };
    },
    { distributed: true, maxHold: true, timeoutMs: 60_000 },
  );

  describe('S3LockManager on Ceph RGW', () => {
    it('finds that RGW compares If-Match without quotes and ignores If-Match on delete', async () => {
      const locks = new S3LockManager({ ...lockOptions(`probe-${randomUUID()}`) });
      try {
        expect(await locks.ready()).toEqual({ etagForm: 'unquoted', deleteIfMatch: false });
      } finally {
        await locks.close();
      }
    });

    it('keeps a declared delete_if_match, probing the ETag form only', async () => {
      const locks = new S3LockManager({ ...lockOptions(`probe-${randomUUID()}`), deleteIfMatch: true });
      try {
        expect(await locks.ready()).toEqual({ etagForm: 'unquoted', deleteIfMatch: true });
      } finally {
        await locks.close();
      }
    });

    it('leaves nothing of the probe behind and writes the lock object as JSON naming its owner', async () => {
      const keyPrefix = `object-${randomUUID()}`;
      const locks = new S3LockManager(lockOptions(keyPrefix));
      try {
        await locks.withLocks(['tag:team/app:v1'], async () => {
          expect(await objectsUnder(`${keyPrefix}/`)).toEqual([`${keyPrefix}/_locks/tag%3Ateam%2Fapp%3Av1`]);
          const object = await admin.send(
            new GetObjectCommand({ Bucket: server.bucket, Key: objectKey(keyPrefix, 'tag:team/app:v1') }),
          );
          const body = JSON.parse(await object.Body!.transformToString()) as Record<string, unknown>;
          expect(body).toMatchObject({ renewal: 0, owner: expect.stringContaining(':') });
          expect(typeof body['token']).toBe('string');
        });
        expect(await objectsUnder(`${keyPrefix}/`)).toEqual([]);
      } finally {
        await locks.close();
      }
    });

    // A lock wait that gives up (the job runner's deadline, a client gone) while its create is
    // on the wire: the create lands all the same, and the object must not outlive the wait.
    it('leaves no lock object behind when the caller gives up while a create is in flight', async () => {
      const keyPrefix = `late-create-${randomUUID()}`;
      await behindProxy(
        (request) => isCreateOf(request, 'k'),
        async (proxy) => {
          const locks = new S3LockManager(lockOptions(keyPrefix, { endpoint: proxy.url }));
          try {
            await locks.ready();
            const cancel = new AbortController();
            let entered = false;
            const waiting = locks.withLocks(
              ['j', 'k'],
              async () => {
                entered = true;
              },
              { signal: cancel.signal },
            );
            const create = await proxy.nextHeld();
            expect(create.status).toBe(200); // the object is on S3; its client still waits
            cancel.abort(new Error('lock wait timed out'));
            await expect(waiting).rejects.toThrow('lock wait timed out');
            create.deliver();
            await locks.close(); // waits for the keys to be given back
            expect(entered).toBe(false);
            expect(await objectsUnder(`${keyPrefix}/`)).toEqual([]);
            expect(await takenAtOnce(keyPrefix, 'k')).toBe(true);
          } finally {
            await locks.close();
          }
        },
      );
    });

    it('removes a created lock object whose answer never came', async () => {
      const keyPrefix = `lost-answer-${randomUUID()}`;
      await behindProxy(
        (request) => isCreateOf(request, 'k'),
        async (proxy) => {
          const locks = new S3LockManager(
            lockOptions(keyPrefix, { endpoint: proxy.url, maxAttempts: 1, operationAttemptTimeoutSecs: 1 }),
          );
          try {
            await locks.ready();
            const waiting = locks.withLocks(['k'], async () => 'entered');
            expect((await proxy.nextHeld()).status).toBe(200);
            await expect(waiting).rejects.toThrow(); // the attempt timed out; the create had landed
            await locks.close();
            expect(await objectsUnder(`${keyPrefix}/`)).toEqual([]);
            expect(await takenAtOnce(keyPrefix, 'k')).toBe(true);
          } finally {
            await locks.close();
          }
        },
      );
    });

    it('takes the key when the SDK retries a create whose first attempt landed', async () => {
      const keyPrefix = `retried-create-${randomUUID()}`;
      let creates = 0;
      await behindProxy(
        (request) => isCreateOf(request, 'k') && ++creates === 1,
        async (proxy) => {
          const locks = new S3LockManager(
            lockOptions(keyPrefix, {
              endpoint: proxy.url,
              maxAttempts: 2,
              operationAttemptTimeoutSecs: 1,
              maxRetries: 3,
            }),
          );
          try {
            await locks.ready();
            // The second attempt finds the object the first wrote: ours, not a contender's.
            expect(await locks.withLocks(['k'], async () => 'entered')).toBe('entered');
            expect(creates).toBe(2);
            expect(await objectsUnder(`${keyPrefix}/`)).toEqual([]);
          } finally {
            await locks.close();
          }
        },
      );
    });

    it('reports a missing bucket as an S3 error, not as a missing capability', async () => {
      const locks = new S3LockManager({ ...lockOptions('x'), bucket: `missing-${Date.now()}` });
      try {
        const error = await locks.ready().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        expect(error).not.toBeInstanceOf(LockUnsupportedError);
      } finally {
        await locks.close();
      }
    });
  });
});
