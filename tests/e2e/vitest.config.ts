import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real clients against real registry processes: slow steps, and only two cores, so one file
    // at a time and generous bounds (every step inside a test has its own, tighter, timeout).
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
