import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Ceph RGW for the whole run, started before the first file and stopped after the last.
    globalSetup: ['test/s3-global-setup.ts'],
    // Uploads of tens of MiB through a real S3 server on two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
