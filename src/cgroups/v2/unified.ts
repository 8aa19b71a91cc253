// cgroup v2 linux.resources.unified: any cgroup file of the container's own cgroup, by name.
// A key is a file name, never a path, so a value cannot land outside the cgroup; the files
// that move, freeze or kill processes are husk's to manage and refused. Written last, so a
// unified value overrides the same setting made from the other fields (as in runc).
import { refuse } from '../resources';
import type { CgroupDir } from '../fs';

const MANAGED = ['cgroup.procs', 'cgroup.threads', 'cgroup.kill', 'cgroup.freeze', 'cgroup.subtree_control', 'cgroup.type'];

export function check(unified: Record<string, string> | undefined): void {
  for (const key of Object.keys(unified ?? {})) {
    const what = `linux.resources.unified[${JSON.stringify(key)}]`;
    if (key === '' || key === '.' || key === '..' || key.includes('/') || key.includes('\0')) {
      throw refuse(what, 'must be a file name in the container\'s cgroup, without any slash');
    }
    if (!/^[a-z0-9_]+\.[A-Za-z0-9_.]+$/.test(key)) throw refuse(what, 'must be in the form CONTROLLER.PARAMETER');
    if (MANAGED.includes(key)) throw refuse(what, `${key} is managed by husk and cannot be set`);
  }
}

export function apply(dir: CgroupDir, unified: Record<string, string> | undefined): void {
  check(unified);
  for (const [key, value] of Object.entries(unified ?? {})) {
    // A value of several lines is several writes (io.max, one device each), as runc does.
    for (const line of value.split('\n')) {
      if (line !== '') dir.write(key, line, `linux.resources.unified[${JSON.stringify(key)}]`);
    }
  }
}
