/*
 * The systemd cgroup driver (--systemd-cgroup), run inside a QEMU guest whose PID 1 is systemd
 * on cgroup v2 alone (test/vm/run-in-vm.sh --systemd: a Debian 12 root made with debootstrap and
 * cached beside the kernel). This machine's PID 1 is not systemd, so the driver can only be
 * proven there.
 *
 * One guest runs every test/vm/systemd/*.sh (systemd-driver.sh: units, properties, files, update,
 * delete, enforcement, errors; rootless.sh: a rootless container under the user's manager;
 * podman.sh and docker.sh: Podman's and Docker's systemd cgroup managers running husk
 * containers); each
 * `ok NAME` / `not ok NAME: why` line is a test here, as in cgroups.test.ts.
 *
 *   npx vitest run --project vm test/vm/systemd.test.ts      # as root: ~45 s of boot, then the checks
 *   test/vm/run-in-vm.sh --systemd sh test/vm/systemd/systemd-driver.sh "$PWD"   # by hand
 *
 * HUSK_VM_SYSTEMD_CHECKS (space-separated script names) runs only those. The first run builds
 * the guest's root (debootstrap, about a minute and a half; `npm test` installs debootstrap).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';
import { describeChecks, runGuest, unavailable } from './guest';

const CHECKS_DIR = path.join(__dirname, 'systemd');
const TITLE = 'the systemd cgroup driver in a guest whose PID 1 is systemd';

function checkScripts(): string[] {
  const all = fs.readdirSync(CHECKS_DIR).filter((f) => f.endsWith('.sh')).sort();
  const wanted = (process.env.HUSK_VM_SYSTEMD_CHECKS ?? '').split(/\s+/).filter(Boolean);
  for (const name of wanted) if (!all.includes(name)) throw new Error(`HUSK_VM_SYSTEMD_CHECKS: no ${name} in ${CHECKS_DIR}`);
  return wanted.length ? all.filter((f) => wanted.includes(f)) : all;
}

const reason = unavailable();
if (reason && process.env.CI) throw new Error(`${reason}; the VM tests must run in CI`);

if (reason) {
  console.warn(`skipping the systemd VM tests: ${reason}`);
  describe.skip(TITLE, () => {
    it.skip(reason, () => {});
  });
} else {
  const scripts = checkScripts();
  const guest = await runGuest(scripts.map((s) => `test/vm/systemd/${s}`), ['--systemd']);
  console.log(`vm: the systemd guest ran ${scripts.join(', ')} in ${guest.seconds.toFixed(1)} s (exit status ${guest.status})`);
  describeChecks(TITLE, scripts, guest);
}
