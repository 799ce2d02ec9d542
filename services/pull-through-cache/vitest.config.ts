import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One file at a time: the fill tests stream 20 x 64 MiB and the replica test starts Ceph RGW;
    // side by side on a 2-core machine they starve each other's held upstream connections.
    fileParallelism: false,
    // Each suite starts CNCF distribution (and a token issuer or proxy) on a loaded machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
