import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no root and runs anywhere; `integration` drives the real runtime
// binary as root (see test/integration/harness.ts for how to run it and which runtime it uses).
export default defineConfig({
  test: {
    // Test files run side by side on both cores (vitest's default keeps one core free). The
    // integration tests allow it: every test has its own ids, bundles and --root. The forks
    // pool takes this from the root config, not from a project's.
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Each file runs in its own process: a test file may change process-wide things
          // (signal handlers, environment) and the runtime's children must not outlive it.
          pool: 'forks',
        },
      },
    ],
  },
});
