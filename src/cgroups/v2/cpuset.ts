// cgroup v2 cpuset: cpuset.cpus and cpuset.mems, as given.
import type { CPUResources } from '../../spec/types';
import type { CgroupDir } from '../fs';

const at = 'linux.resources.cpu';

export function apply(dir: CgroupDir, cpu: CPUResources | undefined): void {
  if (cpu?.cpus) dir.write('cpuset.cpus', cpu.cpus, `${at}.cpus`);
  if (cpu?.mems) dir.write('cpuset.mems', cpu.mems, `${at}.mems`);
}
