import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The HTTP suite also runs on S3: one Ceph RGW for the whole run (see @angos/test-support s3-server.ts).
    globalSetup: ['test/s3-global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
