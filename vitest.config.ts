import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ (and the native addon when its sources changed) first, so
    // the suites never test stale output.
    globalSetup: ['test/support/global-setup.ts'],
    // Node's platform for suites that import ts/ modules below the entry point
    setupFiles: ['test/support/platform.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
