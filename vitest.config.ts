import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // VM tests boot real guests under TCG on a 2-core machine: give them room, and never
    // run two VM-heavy files at once (they share one CPU budget).
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    server: { deps: { inline: ['@actions/workflow-parser', '@actions/expressions'] } },
  },
});
