import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Ceph RGW for the whole run, started before the first file and stopped after the last.
    globalSetup: ['test/s3-global-setup.ts'],
    // Lock TTLs of a few seconds, on a loaded two-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
