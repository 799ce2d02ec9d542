import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Ceph RGW for the run: the S3 deployments of the fixture use it, each under its own prefix.
    globalSetup: ['test/s3-global-setup.ts'],
    // Real clients against real registry processes: slow steps, and only two cores, so one file
    // at a time and generous bounds (every step inside a test has its own, tighter, timeout).
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
