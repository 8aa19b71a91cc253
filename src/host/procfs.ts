// /proc: scanning it for processes (for containers without a cgroup: their mount namespace;
// for mounted image rootfs: processes whose root is on it), and writing its files safely.
import * as fs from 'fs';
import { HuskError, reason } from '../errors';

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

export interface ProcStat {
  pid: number;
  comm: string;
  /** One letter: R, S, D, Z, T, t, X, ... */
  state: string;
  /** Field 4: the parent's pid. */
  ppid: number;
  /** Field 22: clock ticks after boot when the process started. */
  startTime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name (field 2) is in parentheses and may itself
 * hold spaces and parentheses, so the fields after it are counted from the last ")".
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = close > open && open > 0 ? text.slice(close + 1).trim().split(/\s+/) : [];
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  const startTime = Number(rest[22 - 3]);
  if (rest.length < 20 || !Number.isSafeInteger(startTime)) {
    throw new HuskError(`cannot parse /proc/<pid>/stat: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), state: rest[0], ppid: Number(rest[4 - 3]), startTime };
}

/** The real /proc reader. */
export function readProcStat(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw new HuskError(`cannot read /proc/${pid}/stat: ${reason(err)}`, { code, cause: err });
  }
}

/** Whether a /proc/PID/stat says the process is still the one that started at `startTime` and
 * has not exited (Z: a zombie not yet reaped; X/x: dead). */
export function aliveAs(stat: ProcStat, startTime: number): boolean {
  return stat.startTime === startTime && !['Z', 'X', 'x'].includes(stat.state);
}

/** aliveAs for process `pid`, read from /proc: false when there is no such process. */
export function runsAs(pid: number, startTime: number): boolean {
  const text = readProcStat(pid);
  return text !== undefined && aliveAs(parseProcStat(text), startTime);
}
