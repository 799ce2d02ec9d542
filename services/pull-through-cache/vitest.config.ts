import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each suite starts CNCF distribution (and a token issuer or proxy) on a loaded machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
