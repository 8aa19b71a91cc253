// cgroup v1 cpuset: a new cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and
// no process may join it until both are set. As runc does, every level is filled in from its
// parent on the way down (unless the config names its own cpus or mems).
import * as path from 'path';
import type { CPUResources } from '../../spec/types';
import { CgroupDir, type CgroupFs } from '../fs';
import { parseCpuList, parseU64, type Stats } from '../stats';

const at = 'linux.resources.cpu';

function copyIfEmpty(dir: CgroupDir, parent: CgroupDir): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if ((dir.readOptional(file) ?? '').trim() === '') {
      const value = (parent.readOptional(file) ?? '').trim();
      if (value) dir.write(file, value);
    }
  }
}

/** mkdir of `dir` and its missing parents under `mountPoint`, each filled from its parent. */
export function create(fs: CgroupFs, mountPoint: string, dir: string, cpu: CPUResources | undefined, mkdir: (d: string) => boolean): void {
  let current = mountPoint;
  for (const part of path.posix.relative(mountPoint, dir).split('/').filter(Boolean)) {
    const parent = new CgroupDir(fs, current);
    current = path.posix.join(current, part);
    mkdir(current);
    const d = new CgroupDir(fs, current);
    if (current === dir) apply(d, cpu);
    copyIfEmpty(d, parent);
  }
}

export function apply(dir: CgroupDir, cpu: CPUResources | undefined): void {
  if (cpu?.cpus) dir.write('cpuset.cpus', cpu.cpus, `${at}.cpus`);
  if (cpu?.mems) dir.write('cpuset.mems', cpu.mems, `${at}.mems`);
}

export function stats(dir: CgroupDir, s: Stats): void {
  const cpus = dir.readOptional('cpuset.cpus');
  if (cpus === undefined) return;
  const n = (f: string) => {
    const t = dir.readOptional(`cpuset.${f}`);
    return t === undefined ? 0n : parseU64(t);
  };
  s.cpuset.cpus = parseCpuList(cpus);
  s.cpuset.mems = parseCpuList(dir.readOptional('cpuset.mems') ?? '');
  s.cpuset.cpu_exclusive = n('cpu_exclusive');
  s.cpuset.mem_hardwall = n('mem_hardwall');
  s.cpuset.mem_exclusive = n('mem_exclusive');
  s.cpuset.memory_migrate = n('memory_migrate');
  s.cpuset.memory_spread_page = n('memory_spread_page');
  s.cpuset.memory_spread_slab = n('memory_spread_slab');
  s.cpuset.memory_pressure = n('memory_pressure');
  s.cpuset.sched_load_balance = n('sched_load_balance');
  s.cpuset.sched_relax_domain_level = BigInt((dir.readOptional('cpuset.sched_relax_domain_level') ?? '0').trim() || '0');
}
