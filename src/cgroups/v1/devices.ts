// cgroup v1 devices: the emulated rule state (devicerules.ts) written as the kernel takes it.
// "a" into devices.deny first resets the cgroup to deny-all with no exceptions; then either
// the exceptions go into devices.allow, or (allow-all default) "a" into devices.allow and
// the exceptions into devices.deny. On update this briefly denies everything, where runc
// computes the smallest set of changes; the end state is the same.
import type { DeviceCgroupRule } from '../../spec/types';
import { containerDeviceRules, emulate, v1RuleLine } from '../devicerules';
import type { CgroupDir } from '../fs';

const what = 'linux.resources.devices';

export function apply(dir: CgroupDir, rules: DeviceCgroupRule[] | undefined): void {
  const state = emulate(containerDeviceRules(rules));
  dir.write('devices.deny', 'a', what);
  if (state.defaultAllow) dir.write('devices.allow', 'a', what);
  const file = state.defaultAllow ? 'devices.deny' : 'devices.allow';
  for (const e of state.exceptions) dir.write(file, v1RuleLine(e), what);
}
