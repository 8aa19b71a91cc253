// cgroup v1 net_cls and net_prio: the class id tagged on the container's packets, and
// per-interface priorities (net_prio.ifpriomap, one "name priority" line each).
import type { CgroupDir } from '../fs';

export function applyClassId(dir: CgroupDir, network: { classID?: number } | undefined): void {
  if (network?.classID !== undefined) dir.write('net_cls.classid', String(network.classID), 'linux.resources.network.classID');
}

export function applyPriorities(dir: CgroupDir, network: { priorities?: { name: string; priority: number }[] } | undefined): void {
  (network?.priorities ?? []).forEach((p, i) => dir.write('net_prio.ifpriomap', `${p.name} ${p.priority}`, `linux.resources.network.priorities[${i}]`));
}
