import { randomUUID } from 'node:crypto';
import { type S3Endpoint, s3Table } from '@angos/test-support';

/** Where an S3 server is (test-support's S3Endpoint). */
export type S3Location = S3Endpoint;

/**
 * A storage section putting blobs and metadata (the default: same backend as blobs) on S3, under
 * a fresh key prefix so runs sharing one bucket never see each other's data. Usable as the
 * `storageToml` option of crashLoop, fuzz and soak (the root directory is not used).
 */
export function s3StorageToml(s3: S3Location, label: string): (rootDir: string) => string {
  const prefix = `${label}-${randomUUID().slice(0, 8)}/`;
  return () => s3Table('blob_store.s3', s3, prefix);
}
