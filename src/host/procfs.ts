// Scanning /proc for processes: for containers without a cgroup (their mount namespace) and for
// mounted image rootfs (processes whose root is on it).
import * as fs from 'fs';

/** The pids of the live processes for which `test` holds; a process that exits meanwhile, or
 * whose /proc files cannot be read, does not count. */
export function processesWhere(test: (pid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (test(Number(entry))) pids.push(Number(entry));
    } catch {
      // exited meanwhile, or a kernel thread
    }
  }
  return pids;
}
