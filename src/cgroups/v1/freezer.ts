// cgroup v1 freezer: freezer.state FROZEN / THAWED. The kernel may stay in FREEZING while
// processes keep forking; as runc does, the write is repeated, with an occasional thaw and
// pause to let stragglers settle, and given up (thawed again) after 1000 tries.
import { HuskError } from '../../errors';
import type { CgroupDir } from '../fs';
import { sleepSync } from '../../host/sleep';

export function state(dir: CgroupDir): string {
  return (dir.readOptional('freezer.state') ?? '').trim();
}

export function freeze(dir: CgroupDir): void {
  for (let i = 0; i < 1000; i++) {
    if (i % 50 === 49) {
      dir.write('freezer.state', 'THAWED');
      sleepSync(10);
    }
    dir.write('freezer.state', 'FROZEN');
    const now = state(dir);
    if (now === 'FROZEN') return;
    if (now !== 'FREEZING') throw new HuskError(`unexpected state ${now} in ${dir.path('freezer.state')} after writing FROZEN`);
  }
  dir.write('freezer.state', 'THAWED');
  throw new HuskError(`unable to freeze ${dir.dir}: it stays FREEZING`);
}

export function thaw(dir: CgroupDir): void {
  dir.write('freezer.state', 'THAWED');
}
