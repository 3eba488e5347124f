import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Forks, one file at a time: the Temporal native bridge misbehaves under worker threads,
    // and its Runtime is a per-process singleton.
    pool: 'forks',
    fileParallelism: false,
    // One Temporal dev server for the whole run: inject('temporalAddress').
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
