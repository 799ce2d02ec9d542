import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault matrix also runs on S3: one Ceph RGW for the whole run (@angos/test-support).
    globalSetup: ['test/s3-global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
