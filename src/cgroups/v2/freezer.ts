// cgroup v2 freezer: cgroup.freeze, and cgroup.events "frozen 1" once every process in the
// subtree has stopped (the write alone only starts it).
import { HuskError } from '../../errors';
import type { CgroupDir } from '../fs';
import { sleepSync } from '../../host/sleep';

export function frozen(dir: CgroupDir): boolean {
  return /^frozen 1$/m.test(dir.readOptional('cgroup.events') ?? '');
}

export function freeze(dir: CgroupDir, timeoutMs = 10_000): void {
  if (!dir.has('cgroup.freeze')) throw new HuskError(`cannot freeze ${dir.dir}: no cgroup.freeze (the kernel is older than 5.2)`);
  dir.write('cgroup.freeze', '1');
  const deadline = Date.now() + timeoutMs;
  while (!frozen(dir)) {
    if (Date.now() > deadline) {
      dir.write('cgroup.freeze', '0');
      throw new HuskError(`timeout of ${timeoutMs} ms reached waiting for ${dir.dir} to freeze`);
    }
    sleepSync(10);
  }
}

export function thaw(dir: CgroupDir): void {
  if (!dir.has('cgroup.freeze')) return;
  dir.write('cgroup.freeze', '0');
}
