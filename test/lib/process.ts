/*
 * Processes and husk's warm servers as /proc shows them, for every kind of test
 * (integration, engines).
 */
import fs from 'node:fs';
import { sleep } from './wait';

/** The single-letter state of a process from /proc/PID/stat (R, S, D, Z, T...), or undefined. */
export function processState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0];
  } catch {
    return undefined;
  }
}

/** True while a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}

/** Every live warm husk server (src/server/: `node .../dist/server/main.js --root ROOT`). */
export function huskServers(): { pid: number; root: string }[] {
  const found: { pid: number; root: string }[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.findIndex((a) => a.endsWith('/dist/server/main.js'));
      if (at >= 0 && argv[at + 1] === '--root' && alive(Number(entry))) found.push({ pid: Number(entry), root: argv[at + 2] });
    } catch {
      // gone
    }
  }
  return found;
}

/** Ends the warm servers of the roots `ours` picks (each exits by itself when idle; a test
 * need not wait for that). A call that ended just now may still be starting one (a cold call
 * starts its server once it has answered): look again until none is left. */
export async function stopHuskServers(ours: (root: string) => boolean): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const servers = huskServers().filter((s) => ours(s.root)).map((s) => s.pid);
    if (!servers.length) return;
    for (const pid of servers) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    const deadline = Date.now() + 5_000;
    while (servers.some(alive) && Date.now() < deadline) await sleep(20);
  }
}
