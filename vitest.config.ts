import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Temporal workers use native threads and worker_threads: forks keep them isolated.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // One Temporal dev server, one PostgreSQL cluster and one workflow bundle for the run.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    // The first run on a fresh machine builds the Temporal CLI (about 3 minutes).
    hookTimeout: 600_000,
  },
});
