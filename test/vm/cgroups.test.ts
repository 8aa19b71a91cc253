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
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const RUN_IN_VM = path.join(__dirname, 'run-in-vm.sh');
const CHECKS_DIR = path.join(__dirname, 'checks');
const VM_TIMEOUT_S = Number(process.env.HUSK_VM_TIMEOUT || 1800);

/** Why the guest cannot be run here, or undefined when it can. */
function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'vm: needs root (the guest shares the host root filesystem)';
  const qemu = (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, 'qemu-system-x86_64')));
  if (!qemu) return 'vm: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86; npm test installs it)';
  return undefined;
}

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

interface Check {
  name: string;
  ok: boolean;
  why?: string;
  /** What the script printed since its previous check line. */
  context: string[];
}

interface ScriptRun {
  checks: Check[];
  /** Its exit status in the guest, or undefined when it never finished. */
  status?: number;
  /** Lines after its last check line. */
  trailing: string[];
}

/** Reads run-checks.sh's framed output into one ScriptRun per script. */
function parseChecks(output: string): Map<string, ScriptRun> {
  const runs = new Map<string, ScriptRun>();
  let current: ScriptRun | undefined;
  for (const line of output.split('\n')) {
    const start = /^# check (\S+)$/.exec(line);
    const end = /^# exit (\S+) (\d+)$/.exec(line);
    const result = /^(ok|not ok) (.*)$/.exec(line);
    if (start) {
      current = { checks: [], trailing: [] };
      runs.set(start[1], current);
    } else if (end && runs.has(end[1])) {
      runs.get(end[1])!.status = Number(end[2]);
      current = undefined;
    } else if (current && result) {
      const ok = result[1] === 'ok';
      const colon = result[2].indexOf(': ');
      const name = ok || colon < 0 ? result[2] : result[2].slice(0, colon);
      const why = ok ? undefined : colon < 0 ? '(no reason given)' : result[2].slice(colon + 2);
      current.checks.push({ name, ok, why, context: current.trailing });
      current.trailing = [];
    } else if (current && line !== '') {
      current.trailing.push(line);
    }
  }
  return runs;
}

interface GuestResult {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function runGuest(scripts: string[]): Promise<GuestResult> {
  const started = Date.now();
  const args = ['--timeout', String(VM_TIMEOUT_S), 'sh', 'test/vm/run-checks.sh', REPO, ...scripts.map((s) => `test/vm/checks/${s}`)];
  return new Promise((resolve, reject) => {
    const child = spawn(RUN_IN_VM, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr, seconds: (Date.now() - started) / 1000 }));
  });
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
  const guest = await runGuest(scripts);
  const runs = parseChecks(guest.stdout);
  console.log(`vm: the guest ran ${scripts.join(', ')} in ${guest.seconds.toFixed(1)} s (exit status ${guest.status})`);
  const everything = () => `run-in-vm.sh exited with status ${guest.status}\n--- stdout\n${guest.stdout}\n--- stderr\n${guest.stderr}`;

  describe('cgroup checks in a VM', () => {
    it('the guest runs the check scripts', () => {
      // 0: every script passed; 1: some failed (reported by the tests below); else the guest
      // itself failed (124 timed out, 125 could not boot or run the command).
      if (guest.status !== 0 && guest.status !== 1) throw new Error(everything());
    });

    for (const script of scripts) {
      describe(script, () => {
        const run = runs.get(script);
        for (const check of run?.checks ?? []) {
          it(check.name, () => {
            if (!check.ok) {
              const before = check.context.length ? `\n${script} printed before it:\n${check.context.join('\n')}` : '';
              // After a failure run-checks.sh adds the kernel's last messages (an OOM kill, ...).
              const after = run!.trailing.length ? `\n${script} ended with:\n${run!.trailing.join('\n')}` : '';
              throw new Error(`${check.why}${before}${after}`);
            }
          });
        }
        it('runs to the end, its exit status agreeing with its lines', () => {
          if (!run) throw new Error(`${script} never started (see "the guest runs the check scripts")`);
          const tail = run.trailing.length ? `\nits last lines:\n${run.trailing.join('\n')}` : '';
          if (run.status === undefined) throw new Error(`${script} did not finish${tail}\n${guest.stderr}`);
          if (run.status === 124 || run.status === 137) {
            throw new Error(`${script} was killed after ${process.env.HUSK_VM_CHECK_TIMEOUT || 1200} s (HUSK_VM_CHECK_TIMEOUT)${tail}`);
          }
          if (run.checks.length === 0) throw new Error(`${script} printed no ok / not ok line${tail}`);
          const failed = run.checks.filter((c) => !c.ok).length;
          if (failed && run.status !== 1) throw new Error(`${script} reported ${failed} failure(s) but exited with status ${run.status}, not 1${tail}`);
          if (!failed && run.status !== 0) throw new Error(`${script} reported no failure but exited with status ${run.status}${tail}`);
        });
      });
    }
  });
}
