import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The reclamation tests also run on S3: one Ceph RGW for the whole run (@angos/storage/s3-test-server).
    globalSetup: ['test/s3-global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
