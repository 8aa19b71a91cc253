// cgroup v2 cpu: cpu.weight (converted from OCI's cpu.shares), cpu.max (quota and period),
// cpu.max.burst, cpu.idle; cpu.stat for the stats. Realtime limits have no v2 file.
import type { CPUResources } from '../../spec/types';
import { cpuMax, cpuSharesToWeight, decimal } from '../convert';
import { errnoOf, type CgroupDir } from '../fs';
import { isSet, refuse } from '../resources';
import { parseFlatKeyed, type Stats } from '../stats';

const at = 'linux.resources.cpu';

export function check(cpu: CPUResources | undefined): void {
  if (!cpu) return;
  if (isSet(cpu.realtimeRuntime)) throw refuse(`${at}.realtimeRuntime`, 'realtime scheduling limits are not supported by cgroup v2');
  if (isSet(cpu.realtimePeriod)) throw refuse(`${at}.realtimePeriod`, 'realtime scheduling limits are not supported by cgroup v2');
}

/** The order runc's setCPU uses: idle, weight, burst (retried after cpu.max), cpu.max. */
export function apply(dir: CgroupDir, cpu: CPUResources | undefined): void {
  if (!cpu) return;
  if (cpu.idle !== undefined && cpu.idle !== null) dir.write('cpu.idle', decimal(cpu.idle), `${at}.idle`);
  if (isSet(cpu.shares)) dir.write('cpu.weight', String(cpuSharesToWeight(cpu.shares)), `${at}.shares`);
  const max = cpuMax(cpu.quota, cpu.period);
  let burstLater: string | undefined;
  if (cpu.burst !== undefined && cpu.burst !== null) {
    try {
      dir.write('cpu.max.burst', decimal(cpu.burst), `${at}.burst`);
    } catch (err) {
      // A burst larger than the current quota is refused (EINVAL) until the new quota is in.
      if (errnoOf(err) !== 'EINVAL' || !max) throw err;
      burstLater = decimal(cpu.burst);
    }
  }
  if (max) {
    dir.write('cpu.max', max, isSet(cpu.quota) ? `${at}.quota` : `${at}.period`);
    if (burstLater !== undefined) dir.write('cpu.max.burst', burstLater, `${at}.burst`);
  }
}

/** runc's statCpu for v2: microseconds become nanoseconds. */
export function stats(dir: CgroupDir, s: Stats): void {
  const text = dir.readOptional('cpu.stat');
  if (text === undefined) return;
  const m = parseFlatKeyed(text);
  const us = (k: string) => (m.get(k) ?? 0n) * 1000n;
  s.cpu.usage.total = us('usage_usec');
  s.cpu.usage.user = us('user_usec');
  s.cpu.usage.kernel = us('system_usec');
  s.cpu.throttling.periods = m.get('nr_periods') ?? 0n;
  s.cpu.throttling.throttledPeriods = m.get('nr_throttled') ?? 0n;
  s.cpu.throttling.throttledTime = us('throttled_usec');
}
