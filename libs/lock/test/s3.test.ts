import { randomUUID } from 'node:crypto';
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
