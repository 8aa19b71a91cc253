// What the VM test files share: whether a guest can run here, booting one that runs check
// scripts (run-in-vm.sh, run-checks.sh), and reading their framed `ok` / `not ok` lines.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';

const REPO = path.resolve(__dirname, '..', '..');
const RUN_IN_VM = path.join(__dirname, 'run-in-vm.sh');
const VM_TIMEOUT_S = Number(process.env.HUSK_VM_TIMEOUT || 1800);

/** Why the guest cannot be run here, or undefined when it can. */
export function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'vm: needs root (the guest shares the host root filesystem)';
  const qemu = (process.env.PATH ?? '').split(':').some((dir) => dir && fs.existsSync(path.join(dir, 'qemu-system-x86_64')));
  if (!qemu) return 'vm: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86; npm test installs it)';
  return undefined;
}

export interface Check {
  name: string;
  ok: boolean;
  why?: string;
  /** What the script printed since its previous check line. */
  context: string[];
}

export interface ScriptRun {
  checks: Check[];
  /** Its exit status in the guest, or undefined when it never finished. */
  status?: number;
  /** Lines after its last check line. */
  trailing: string[];
}

/** Reads run-checks.sh's framed output into one ScriptRun per script. */
export function parseChecks(output: string): Map<string, ScriptRun> {
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

export interface GuestResult {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Boots a guest (run-in-vm.sh with `vmOptions`, e.g. --systemd) that runs run-checks.sh on `scripts` (paths relative to the repository). */
export function runGuest(scripts: string[], vmOptions: string[] = []): Promise<GuestResult> {
  const started = Date.now();
  const args = [...vmOptions, '--timeout', String(VM_TIMEOUT_S), 'sh', 'test/vm/run-checks.sh', REPO, ...scripts];
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

/** One test per `ok` / `not ok` line of each script (named by its base name), and one per script that it ran to the end. */
export function describeChecks(title: string, scripts: string[], guest: GuestResult): void {
  const runs = parseChecks(guest.stdout);
  const everything = () => `run-in-vm.sh exited with status ${guest.status}\n--- stdout\n${guest.stdout}\n--- stderr\n${guest.stderr}`;

  describe(title, () => {
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
