// Loads vitest's types, which the augmentation below extends.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import type { S3Endpoint } from './rgw.js';
import { startS3ForTests } from './s3-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The S3 server of this run; null when none could start (outside CI only). */
    s3: S3Endpoint | null;
  }
}

/**
 * A vitest globalSetup: one Ceph RGW for the whole run, provided to the tests as `inject('s3')`.
 * A package uses it with a one-line setup file: `export { default } from '@angos/test-support/s3-global-setup';`
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startS3ForTests();
  project.provide(
    's3',
    server && {
      endpoint: server.endpoint,
      region: server.region,
      bucket: server.bucket,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
    },
  );
  return async () => {
    await server?.stop();
  };
}
