/*
 * The cgroup checks, run inside a throw-away QEMU guest whose only cgroup hierarchy is cgroup v2
 * (this machine's host cgroups are hybrid, so v2 limits cannot be proven on the host itself).
 *
 * One guest is booted for the whole file (test/vm/run-in-vm.sh): it runs every
 * test/vm/checks/*.sh with the repository's path (test/vm/run-checks.sh), and each
 * `ok NAME` / `not ok NAME: why` line they print becomes a test here, under the script's name,
 * with the lines the script printed before it as the failure's context. One more test per script
 * checks that it ran to the end and that its exit status agrees with its lines.
 *
 * The guest runs the host's node, addon and probe over a read-only 9p share of the host's root;
 * node is 15-30x slower there than here, so the checks drive `bin/husk` from shell scripts rather
 * than running vitest in the guest.
 *
 *   npx vitest run --project vm                 # as root; boots the guest, ~5 s plus the checks
 *   HUSK_VM_CHECKS="smoke.sh" npx vitest run --project vm    # only these scripts
 *   test/vm/run-in-vm.sh sh test/vm/checks/smoke.sh "$PWD"  # one script by hand, raw output
 *
 * Environment: HUSK_VM_CHECKS (space-separated script names), HUSK_VM_TIMEOUT (seconds for the
 * whole guest, default 1800), HUSK_VM_CHECK_TIMEOUT (seconds per script, default 1200), and those
 * of run-in-vm.sh. Other HUSK_* variables (e.g. HUSK_TEST_RUNTIME) reach the scripts in the guest.
 *
 * The file is skipped, with the reason as the skipped test's title, when not root or when QEMU is
 * not installed (`npm test` installs it) — except in CI (CI set), where both are failures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';
import { describeChecks, runGuest, unavailable } from './guest';

const CHECKS_DIR = path.join(__dirname, 'checks');

/** The check scripts to run: smoke.sh first (it proves the guest), then every other checks/*.sh; or those HUSK_VM_CHECKS names. */
function checkScripts(): string[] {
  const all = fs
    .readdirSync(CHECKS_DIR)
    .filter((f) => f.endsWith('.sh'))
    .sort((a, b) => Number(b === 'smoke.sh') - Number(a === 'smoke.sh') || a.localeCompare(b));
  const wanted = (process.env.HUSK_VM_CHECKS ?? '').split(/\s+/).filter(Boolean);
  for (const name of wanted) if (!all.includes(name)) throw new Error(`HUSK_VM_CHECKS: no ${name} in ${CHECKS_DIR}`);
  return wanted.length ? all.filter((f) => wanted.includes(f)) : all;
}

const reason = unavailable();
if (reason && process.env.CI) throw new Error(`${reason}; the VM tests must run in CI`);

if (reason) {
  console.warn(`skipping the VM tests: ${reason}`);
  describe.skip('cgroup checks in a VM', () => {
    it.skip(reason, () => {});
  });
} else {
  const scripts = checkScripts();
  // Top-level await: the tests' names come from what the scripts print.
  const guest = await runGuest(scripts.map((s) => `test/vm/checks/${s}`));
  console.log(`vm: the guest ran ${scripts.join(', ')} in ${guest.seconds.toFixed(1)} s (exit status ${guest.status})`);
  describeChecks('cgroup checks in a VM', scripts, guest);
}
