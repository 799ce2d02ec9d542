import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Deliveries go to real local receivers on a loaded machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
