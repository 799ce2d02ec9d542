import { randomUUID } from 'node:crypto';

/** Where an S3 server is: the fields of `@angos/test-support`'s S3Endpoint. */
export interface S3Location {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * A storage section putting blobs and metadata (the default: same backend as blobs) on S3, under
 * a fresh key prefix so runs sharing one bucket never see each other's data. Usable as the
 * `storageToml` option of crashLoop, fuzz and soak (the root directory is not used).
 */
export function s3StorageToml(s3: S3Location, label: string): (rootDir: string) => string {
  const prefix = `${label}-${randomUUID().slice(0, 8)}/`;
  return () =>
    [
      '[blob_store.s3]',
      `access_key_id = ${JSON.stringify(s3.accessKeyId)}`,
      `secret_key = ${JSON.stringify(s3.secretAccessKey)}`,
      `endpoint = ${JSON.stringify(s3.endpoint)}`,
      `bucket = ${JSON.stringify(s3.bucket)}`,
      `region = ${JSON.stringify(s3.region)}`,
      `key_prefix = ${JSON.stringify(prefix)}`,
      '',
    ].join('\n');
}
