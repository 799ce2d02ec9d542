import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The HTTP suite also runs on S3: one Ceph RGW for the whole run (see @angos/storage/s3-test-server).
    globalSetup: ['test/s3-global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
