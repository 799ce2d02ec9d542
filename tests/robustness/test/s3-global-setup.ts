import { type S3Endpoint, startS3ForTests } from '@angos/storage/s3-test-server';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The S3 server of this run; null when none could start (outside CI only). */
    s3: S3Endpoint | null;
  }
}

/** One Ceph RGW for the run, only if an S3 test file is selected (starting it takes seconds). */
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
