import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Ceph RGW for the S3 forms of the crash loop and the fuzz run.
    globalSetup: ['test/s3-global-setup.ts'],
    // Real registry processes, SIGKILLed and restarted, on two cores: one file at a time.
    fileParallelism: false,
  },
});
