import { defineConfig } from 'vitest/config';

// Three projects: `unit` needs no root and runs anywhere; `integration` drives the real runtime
// binary as root (see test/integration/harness.ts for how to run it and which runtime it uses);
// `vm` runs the cgroup checks inside a QEMU guest, as root (see test/vm/cgroups.test.ts).
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
      {
        test: {
          // test/vm/cgroups.test.ts boots one QEMU guest with a pure cgroup v2 hierarchy and runs
          // the check scripts of test/vm/checks in it (see test/vm/run-in-vm.sh);
          // test/vm/systemd.test.ts boots one whose PID 1 is systemd for test/vm/systemd. The boot
          // and the checks happen while a file is collected; its tests only report their lines.
          // One guest at a time: two would share the two cores.
          name: 'vm',
          include: ['test/vm/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          fileParallelism: false,
          // After the other projects: the guest's two emulated CPUs would take both cores from
          // the integration tests.
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // test/engines: Podman, containerd (ctr) and Docker run husk and runc side by side,
          // each file with its own daemons and data in a temporary directory (see
          // test/engines/setup.ts). One file at a time, after everything else: the daemons are
          // slow to start on two cores and must not compete with the integration tests.
          name: 'engines',
          include: ['test/engines/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
