// /proc: scanning it for processes (for containers without a cgroup: their mount namespace;
// for mounted image rootfs: processes whose root is on it), and writing its files safely.
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

const PROC_SUPER_MAGIC = 0x9fa0;

/**
 * Writes a file of procfs (an id map, oom_score_adj), after statfs says it is on a procfs: a
 * write that lands anywhere else would be silently lost, or land on a file an image planted
 * (the CVE-2019-16884 family). Throws the fs error, or `not on a procfs`.
 */
export function writeProcFile(file: string, content: string): void {
  if (fs.statfsSync(file).type !== PROC_SUPER_MAGIC) throw new Error('not on a procfs');
  fs.writeFileSync(file, content);
}
