/**
 * Plain options for the storage drivers (`@angos/storage`, which this package does not depend on:
 * its own tests use this package) on the test bucket of an S3 server.
 */
import type { S3Endpoint } from './rgw.js';

/** Retries and timeouts of a test's S3 client: generous, for RGW on a loaded machine. */
export const S3_TEST_RETRIES = { maxAttempts: 3, operationTimeoutSecs: 60, operationAttemptTimeoutSecs: 30 };

/** `S3ConnectionOptions` for the test bucket under `keyPrefix`. */
export function s3Connection(s3: S3Endpoint, keyPrefix: string) {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    keyPrefix,
    ...S3_TEST_RETRIES,
  };
}

/**
 * `openStores` options for blobs and metadata on the test bucket under `keyPrefix`, as the
 * registry's tests run them: multipart parts of the smallest size S3 takes, and no link cache
 * nor access-time debounce (so that every replica sees every write at once).
 */
export function s3TestStores(s3: S3Endpoint, keyPrefix: string) {
  const connection = s3Connection(s3, keyPrefix);
  return {
    blob: {
      kind: 's3' as const,
      ...connection,
      multipartPartSize: 5 * 1024 * 1024,
      multipartCopyThreshold: 5 * 1024 * 1024 * 1024,
      multipartCopyChunkSize: 100 * 1024 * 1024,
      multipartCopyJobs: 4,
      multipartUniformParts: false,
    },
    metadata: { kind: 's3' as const, ...connection, linkCacheTtlSecs: 0, accessTimeDebounceSecs: 0 },
  };
}

/** The `[<section>]` table of a configuration on the test bucket under `keyPrefix` (`overrides` added). */
export function s3Table(
  section: string,
  s3: S3Endpoint,
  keyPrefix: string,
  overrides: Record<string, string> = {},
): string {
  const options = {
    access_key_id: s3.accessKeyId,
    secret_key: s3.secretAccessKey,
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: s3.region,
    key_prefix: keyPrefix,
    ...overrides,
  };
  const lines = Object.entries(options).map(([key, value]) => `${key} = ${JSON.stringify(value)}`);
  return `[${section}]\n${lines.join('\n')}\n`;
}

/** What `wipeBucket` needs of an `S3Bucket` (`@angos/storage/s3`). */
export interface WipeableBucket {
  listKeys(prefix: string): AsyncIterable<string>;
  deleteMany(keys: readonly string[]): Promise<void>;
  listMultipartUploads(prefix: string): AsyncIterable<{ readonly key: string; readonly uploadId: string }>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  destroy(): void;
}

/** Removes every object and multipart upload under the bucket's key prefix, then closes its client. */
export async function wipeBucket(bucket: WipeableBucket): Promise<void> {
  try {
    const keys: string[] = [];
    for await (const key of bucket.listKeys('')) keys.push(key);
    await bucket.deleteMany(keys);
    for await (const upload of bucket.listMultipartUploads('')) {
      await bucket.abortMultipartUpload(upload.key, upload.uploadId);
    }
  } finally {
    bucket.destroy();
  }
}
