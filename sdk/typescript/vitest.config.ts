import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The engine tests wait on a real engine (a payment, a refund, webhooks).
    testTimeout: 60_000,
  },
});
