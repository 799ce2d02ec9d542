import { startS3TestServer } from '@angos/test-support';
import { s3StorageToml } from './s3-toml.js';

/**
 * For the long forms' `--s3`: starts a Ceph RGW (or uses ANGOS_TEST_S3_ENDPOINT), runs `body`
 * with a storage section on it, and stops the server whatever happens.
 */
export async function withS3Storage<T>(
  label: string,
  body: (storageToml: (rootDir: string) => string) => Promise<T>,
): Promise<T> {
  const server = await startS3TestServer();
  try {
    return await body(s3StorageToml(server, label));
  } finally {
    await server.stop();
  }
}
