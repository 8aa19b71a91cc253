// cgroup v1 cpu: cpu.shares (read back: the kernel clamps it), CFS quota, period and burst,
// cpu.idle, and the realtime budget; with cpuacct for the usage statistics.
import type { CPUResources } from '../../spec/types';
import { decimal } from '../convert';
import { errnoOf, type CgroupDir } from '../fs';
import { isSet, refuse } from '../resources';
import { parseFlatKeyed, parseU64, type Stats } from '../stats';

const at = 'linux.resources.cpu';

/** Realtime first: a cgroup must have a runtime budget before an SCHED_RR task may join it. */
export function applyRealtime(dir: CgroupDir, cpu: CPUResources | undefined): void {
  if (isSet(cpu?.realtimePeriod)) dir.write('cpu.rt_period_us', decimal(cpu!.realtimePeriod!), `${at}.realtimePeriod`);
  if (isSet(cpu?.realtimeRuntime)) dir.write('cpu.rt_runtime_us', decimal(cpu!.realtimeRuntime!), `${at}.realtimeRuntime`);
}

export function apply(dir: CgroupDir, cpu: CPUResources | undefined): void {
  if (!cpu) return;
  if (isSet(cpu.shares)) {
    dir.write('cpu.shares', decimal(cpu.shares), `${at}.shares`);
    const read = parseU64(dir.read('cpu.shares'));
    if (BigInt(cpu.shares) > read) throw refuse(`${at}.shares`, `the maximum allowed cpu-shares is ${read}`);
    if (BigInt(cpu.shares) < read) throw refuse(`${at}.shares`, `the minimum allowed cpu-shares is ${read}`);
  }
  // A period or burst the kernel refuses against the old quota (EINVAL) is retried after it.
  let periodLater: string | undefined;
  if (isSet(cpu.period)) {
    try {
      dir.write('cpu.cfs_period_us', decimal(cpu.period), `${at}.period`);
    } catch (err) {
      if (errnoOf(err) !== 'EINVAL' || !isSet(cpu.quota)) throw err;
      periodLater = decimal(cpu.period);
    }
  }
  let burstLater: string | undefined;
  if (cpu.burst !== undefined && cpu.burst !== null) {
    try {
      dir.write('cpu.cfs_burst_us', decimal(cpu.burst), `${at}.burst`);
    } catch (err) {
      if (errnoOf(err) !== 'EINVAL' || !isSet(cpu.quota)) throw err;
      burstLater = decimal(cpu.burst);
    }
  }
  if (isSet(cpu.quota)) {
    dir.write('cpu.cfs_quota_us', decimal(cpu.quota), `${at}.quota`);
    if (periodLater !== undefined) dir.write('cpu.cfs_period_us', periodLater, `${at}.period`);
    if (burstLater !== undefined) dir.write('cpu.cfs_burst_us', burstLater, `${at}.burst`);
  }
  if (cpu.idle !== undefined && cpu.idle !== null) dir.write('cpu.idle', decimal(cpu.idle), `${at}.idle`);
  applyRealtime(dir, cpu);
}

/** cpu.stat throttling (v1 reports nanoseconds already). */
export function stats(dir: CgroupDir, s: Stats): void {
  const m = parseFlatKeyed(dir.readOptional('cpu.stat') ?? '');
  s.cpu.throttling.periods = m.get('nr_periods') ?? 0n;
  s.cpu.throttling.throttledPeriods = m.get('nr_throttled') ?? 0n;
  s.cpu.throttling.throttledTime = m.get('throttled_time') ?? 0n;
}

const numbers = (text: string | undefined) => (text ?? '').trim().split(/\s+/).filter(Boolean).map((x) => BigInt(x));

/** cpuacct: total and per-cpu usage, per-cpu user/kernel, and user/kernel from clock ticks. */
export function cpuacctStats(dir: CgroupDir, s: Stats, clockTicks = 100): void {
  const total = dir.readOptional('cpuacct.usage');
  if (total === undefined) return;
  s.cpu.usage.total = parseU64(total);
  s.cpu.usage.percpu = numbers(dir.readOptional('cpuacct.usage_percpu'));
  const all = dir.readOptional('cpuacct.usage_all');
  if (all !== undefined) {
    // "cpu user system" then one line per cpu.
    for (const line of all.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length !== 3) continue;
      s.cpu.usage.percpu_user.push(BigInt(f[1]));
      s.cpu.usage.percpu_kernel.push(BigInt(f[2]));
    }
  }
  const stat = parseFlatKeyed(dir.readOptional('cpuacct.stat') ?? '');
  const ns = (ticks: bigint) => (ticks * 1_000_000_000n) / BigInt(clockTicks);
  s.cpu.usage.user = ns(stat.get('user') ?? 0n);
  s.cpu.usage.kernel = ns(stat.get('system') ?? 0n);
}
