import { randomUUID } from 'node:crypto';
import { s3Connection, wipeBucket } from '@angos/test-support';
import { expect, inject } from 'vitest';
import {
  type BlobStore,
  type MetadataStore,
  openBlobStore,
  openMetadataStore,
  type S3BlobStoreOptions,
  type S3ConnectionOptions,
  type S3MetadataStoreOptions,
} from '../src/index.js';
import { S3Bucket } from '../src/s3/index.js';
import type { StoreFactory } from '../src/testing/contract.js';

export const MiB = 1024 * 1024;

/** The S3 server of this run (see s3-global-setup.ts); null when it could not start outside CI. */
export const s3 = inject('s3');

/** A key prefix no other test uses. */
export function freshPrefix(): string {
  return `angos-test/${randomUUID()}`;
}

export function connection(
  keyPrefix: string,
  overrides: Partial<S3ConnectionOptions> = {},
): S3ConnectionOptions {
  if (!s3) throw new Error('no S3 server');
  return { ...s3Connection(s3, keyPrefix), ...overrides };
}

export function blobOptions(
  keyPrefix: string,
  overrides: Partial<S3BlobStoreOptions> = {},
): S3BlobStoreOptions {
  return {
    ...connection(keyPrefix),
    multipartPartSize: 50 * MiB,
    multipartCopyThreshold: 5_000_000_000,
    multipartCopyChunkSize: 100_000_000,
    multipartCopyJobs: 4,
    multipartUniformParts: false,
    ...overrides,
  };
}

export function metadataOptions(
  keyPrefix: string,
  overrides: Partial<S3MetadataStoreOptions> = {},
): S3MetadataStoreOptions {
  return { ...connection(keyPrefix), linkCacheTtlSecs: 30, accessTimeDebounceSecs: 60, ...overrides };
}

/** The raw bucket under a prefix, to look at what the drivers left there. */
export function rawBucket(keyPrefix: string): S3Bucket {
  return new S3Bucket(connection(keyPrefix));
}

/** Every object key and every multipart upload under the prefix. */
export async function leftovers(keyPrefix: string): Promise<string[]> {
  const bucket = rawBucket(keyPrefix);
  try {
    const found: string[] = [];
    for await (const key of bucket.listKeys('')) found.push(key);
    for await (const upload of bucket.listMultipartUploads(''))
      found.push(`multipart upload of ${upload.key}`);
    return found;
  } finally {
    bucket.destroy();
  }
}

/** Removes everything under the prefix (after a failed test). */
export function wipe(keyPrefix: string): Promise<void> {
  return wipeBucket(rawBucket(keyPrefix));
}

/**
 * A store on a fresh prefix that must be empty at the end: no object and no
 * multipart upload left in the bucket, beyond what the contract itself checks.
 */
export function onFreshPrefix<Store extends BlobStore | MetadataStore>(
  open: (keyPrefix: string) => Promise<Store>,
): StoreFactory<Store> {
  return async () => {
    const keyPrefix = freshPrefix();
    const store = await open(keyPrefix);
    return {
      store,
      async cleanup() {
        await store.close?.();
        try {
          expect(await leftovers(keyPrefix), 'objects or multipart uploads left in the bucket').toEqual([]);
        } finally {
          await wipe(keyPrefix);
        }
      },
    };
  };
}

export const openBlobs = (options: S3BlobStoreOptions) => openBlobStore({ kind: 's3', ...options });
export const openMetadata = (options: S3MetadataStoreOptions) =>
  openMetadataStore({ kind: 's3', ...options });
