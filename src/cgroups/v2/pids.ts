// cgroup v2 pids: pids.max (a negative limit is "max"; 0 leaves it alone), pids.current.
import { pidsMax } from '../convert';
import type { CgroupDir } from '../fs';
import { parseU64, U64_MAX, type Stats } from '../stats';

export function apply(dir: CgroupDir, pids: { limit: number } | undefined): void {
  const max = pidsMax(pids?.limit);
  if (max) dir.write('pids.max', max, 'linux.resources.pids.limit');
}

export function stats(dir: CgroupDir, s: Stats): void {
  const current = dir.readOptional('pids.current');
  if (current !== undefined) {
    s.pids.current = parseU64(current);
  } else {
    // No pids controller: count the processes instead, as runc does.
    s.pids.current = BigInt((dir.readOptional('cgroup.procs') ?? '').split('\n').filter(Boolean).length);
  }
  const max = dir.readOptional('pids.max');
  // No limit ("max") shows as 0, as on cgroup v1.
  s.pids.limit = max === undefined ? 0n : parseU64(max) === U64_MAX ? 0n : parseU64(max);
}
