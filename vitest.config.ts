import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Temporal workers use native threads and worker_threads: forks keep them isolated.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 240_000,
  },
});
