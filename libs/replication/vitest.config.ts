import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Suites start registries (Angos in-process, CNCF distribution) on a loaded machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
