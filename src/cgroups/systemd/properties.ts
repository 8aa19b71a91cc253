// linux.resources -> the unit properties systemd has for them (systemd.resource-control(5)),
// with the values runc's systemd driver sends (libcontainer/cgroups/systemd v1.go, v2.go,
// common.go, cgroups/devices/systemd.go). Every limit is also written to the delegated cgroup's
// files afterwards, as runc does, so a property systemd lacks only costs systemd's knowledge of
// the limit (it would otherwise write its own value back on a daemon-reload).
//
//   cgroup v2                                 cgroup v1
//   memory.limit        MemoryMax             MemoryLimit
//   memory.reservation  MemoryLow             -
//   memory.swap         MemorySwapMax (swap alone, as memory.swap.max)
//   cpu.shares          CPUWeight (converted)  CPUShares
//   cpu.quota, period   CPUQuotaPerSecUSec (rounded up to 10 ms per s), CPUQuotaPeriodUSec (>= 242)
//   cpu.cpus, mems      AllowedCPUs, AllowedMemoryNodes (>= 244; a little-endian bit mask)
//   pids.limit          TasksMax
//   blockIO.weight      IOWeight (converted)   BlockIOWeight
//   devices             DevicePolicy=strict, DeviceAllow= (emptied), DeviceAllow=<rules>
//   unified             cpu.max, cpu.weight, cpuset.cpus, cpuset.mems, memory.high, .low, .min,
//                       .max, .swap.max, pids.max
import { HuskError } from '../../errors';
import type { Resources } from '../../spec/types';
import { blkioWeightToIoWeight, cpuSharesToWeight, memorySwapToV2 } from '../convert';
import { accessString, containerDeviceRules, emulate } from '../devicerules';

/** systemd's USEC_INFINITY / CGROUP_LIMIT_MAX: "no limit" for every u64 property. */
export const INFINITY = (1n << 64n) - 1n;

/** The kernel's default CFS period, which systemd assumes too (100 ms). */
export const DEFAULT_CPU_PERIOD = 100_000;

export type UnitProperty = { name: string } & (
  | { signature: 'b'; value: boolean }
  | { signature: 's'; value: string }
  | { signature: 'as'; value: string[] }
  | { signature: 't'; value: bigint }
  | { signature: 'ay'; value: number[] }
  | { signature: 'au'; value: number[] }
  | { signature: 'a(ss)'; value: [string, string][] }
);

export interface PropertyOptions {
  /** The host's cgroup version: the properties' names differ. */
  cgroup: 'v1' | 'v2';
  /** The running systemd's version (Manager.Version), for the properties added late. */
  systemdVersion: number;
  /** `update`: device rules only when given (create always sends them, with the defaults). */
  update?: boolean;
  warn?: (msg: string) => void;
}

const u64 = (name: string, n: number | bigint): UnitProperty => ({ name, signature: 't', value: BigInt(n) });
/** A limit where -1 (or any negative) is "no limit". */
const limit = (name: string, n: number): UnitProperty => u64(name, n < 0 ? INFINITY : n);

/** The properties of a transient unit for linux.resources. */
export function resourceProperties(r: Resources, o: PropertyOptions): UnitProperty[] {
  const out: UnitProperty[] = [];
  if (!o.update || r.devices) out.push(...deviceProperties(r, o.warn));
  const m = r.memory ?? {};
  const c = r.cpu ?? {};
  if (o.cgroup === 'v2') {
    if (m.limit) out.push(limit('MemoryMax', m.limit));
    if (m.reservation) out.push(limit('MemoryLow', m.reservation));
    const swap = m.swap !== undefined || m.limit !== undefined ? memorySwapToV2(m.swap ?? 0, m.limit ?? 0) : 0;
    if (swap) out.push(limit('MemorySwapMax', swap));
    // swap equal to limit: no swap, which the file gets as "0" (runc's fs2 too). runc sends no
    // property then, and systemd would put its old MemorySwapMax back on a daemon-reload.
    else if (m.swap && m.swap > 0 && m.swap === m.limit) out.push(u64('MemorySwapMax', 0));
    if (c.shares) out.push(u64('CPUWeight', cpuSharesToWeight(c.shares)));
  } else {
    if (m.limit) out.push(limit('MemoryLimit', m.limit));
    if (c.shares) out.push(u64('CPUShares', c.shares));
  }
  out.push(...cpuQuotaProperties(c.quota ?? 0, c.period ?? 0, o.systemdVersion));
  const pids = r.pids?.limit ?? 0;
  if (pids > 0 || pids === -1) out.push(limit('TasksMax', pids));
  out.push(...cpusetProperties(c.cpus ?? '', c.mems ?? '', o.systemdVersion));
  const weight = r.blockIO?.weight ?? 0;
  if (weight) out.push(o.cgroup === 'v2' ? u64('IOWeight', blkioWeightToIoWeight(weight)) : u64('BlockIOWeight', weight));
  if (o.cgroup === 'v2' && r.unified) out.push(...unifiedProperties(r.unified, o.systemdVersion));
  return out;
}

/**
 * cpu.quota and cpu.period as systemd takes them: CPU time per second of wall time, which
 * systemd keeps as a whole percentage of a CPU, so it is rounded up to the next 10 ms (a
 * quota of 33.333 ms per 100 ms becomes 340 ms per second; the exact quota is written to
 * cpu.max afterwards, as runc does). No
 * quota with a period: infinity. CPUQuotaPeriodUSec exists since systemd 242.
 */
export function cpuQuotaProperties(quota: number, period: number, systemdVersion: number): UnitProperty[] {
  const out: UnitProperty[] = [];
  if (period !== 0 && systemdVersion >= 242) out.push(u64('CPUQuotaPeriodUSec', period));
  if (quota !== 0 || period !== 0) {
    let perSecond = INFINITY;
    if (quota > 0) {
      const p = BigInt(period || DEFAULT_CPU_PERIOD);
      perSecond = (BigInt(quota) * 1_000_000n) / p;
      if (perSecond % 10_000n !== 0n) perSecond = (perSecond / 10_000n + 1n) * 10_000n;
    }
    out.push(u64('CPUQuotaPerSecUSec', perSecond));
  }
  return out;
}

/** cpu.cpus / cpu.mems as AllowedCPUs / AllowedMemoryNodes (systemd >= 244; older: files only). */
export function cpusetProperties(cpus: string, mems: string, systemdVersion: number): UnitProperty[] {
  if (systemdVersion < 244) return [];
  const out: UnitProperty[] = [];
  if (cpus) out.push({ name: 'AllowedCPUs', signature: 'ay', value: rangeToBits(cpus, 'linux.resources.cpu.cpus') });
  if (mems) out.push({ name: 'AllowedMemoryNodes', signature: 'ay', value: rangeToBits(mems, 'linux.resources.cpu.mems') });
  return out;
}

/** "0-2,7" -> the bit mask as bytes, least significant first ([0x87]), as systemd's cpu_set_t. */
export function rangeToBits(list: string, field: string): number[] {
  const bytes: number[] = [];
  for (const part of list.split(',').map((p) => p.trim())) {
    if (part === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new HuskError(`${field}: invalid list ${JSON.stringify(list)}`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to > 8191) throw new HuskError(`${field}: invalid range ${JSON.stringify(part)}`);
    for (let bit = from; bit <= to; bit++) {
      while (bytes.length <= bit >> 3) bytes.push(0);
      bytes[bit >> 3] |= 1 << (bit & 7);
    }
  }
  if (bytes.length === 0) throw new HuskError(`${field}: empty list ${JSON.stringify(list)}`);
  return bytes;
}

/**
 * linux.resources.devices (with runc's default allow list after it) as DevicePolicy and
 * DeviceAllow. systemd only allows: a config that ends deny-by-default maps to strict and its
 * exceptions; allow-all maps to auto with no list; an allow-by-default list with exceptions
 * cannot be said, and becomes strict with no list (runc's "temporary deny-all"): husk's own
 * device program carries the real rules either way.
 */
export function deviceProperties(r: Resources, warn?: (msg: string) => void): UnitProperty[] {
  const state = emulate(containerDeviceRules(r.devices));
  const empty: UnitProperty = { name: 'DeviceAllow', signature: 'a(ss)', value: [] };
  if (state.defaultAllow) {
    if (state.exceptions.length === 0) return [{ name: 'DevicePolicy', signature: 's', value: 'auto' }, empty];
    warn?.('systemd does not take deny rules after an allow-all device rule: the unit denies every device, and husk\'s own device filter applies the rules');
    return [{ name: 'DevicePolicy', signature: 's', value: 'strict' }, empty];
  }
  const allow: [string, string][] = [];
  for (const e of state.exceptions) {
    const group = e.type === 'c' ? 'char' : 'block';
    let path: string;
    if (e.major === -1) {
      if (e.minor !== -1) {
        warn?.(`systemd has no device rule for "${e.type} *:${e.minor}": left to husk's own device filter`);
        continue;
      }
      path = `${group}-*`;
    } else if (e.minor === -1) {
      path = `${group}-${e.major}`;
    } else {
      path = `/dev/${group}/${e.major}:${e.minor}`;
    }
    allow.push([path, accessString(e.access)]);
  }
  return [{ name: 'DevicePolicy', signature: 's', value: 'strict' }, empty, { name: 'DeviceAllow', signature: 'a(ss)', value: allow }];
}

/** linux.resources.unified entries systemd has a property for; the others go to files only. */
export function unifiedProperties(unified: Record<string, string>, systemdVersion: number): UnitProperty[] {
  const out: UnitProperty[] = [];
  const field = (k: string) => `linux.resources.unified[${JSON.stringify(k)}]`;
  const number = (k: string, v: string): bigint => {
    if (v === 'max') return INFINITY;
    if (!/^\d+$/.test(v)) throw new HuskError(`${field(k)}: ${JSON.stringify(v)} is not a number or "max"`);
    return BigInt(v);
  };
  const memory: Record<string, string> = { 'memory.high': 'MemoryHigh', 'memory.low': 'MemoryLow', 'memory.min': 'MemoryMin', 'memory.max': 'MemoryMax', 'memory.swap.max': 'MemorySwapMax' };
  for (const [k, raw] of Object.entries(unified).sort(([a], [b]) => a.localeCompare(b))) {
    const v = raw.trim();
    if (k === 'cpu.max') {
      const words = v.split(/\s+/);
      if (words.length > 2) throw new HuskError(`${field(k)}: ${JSON.stringify(v)} is not "QUOTA [PERIOD]"`);
      const quota = words[0] === 'max' ? 0 : Number(number(k, words[0]));
      const period = words.length === 2 ? Number(number(k, words[1])) : DEFAULT_CPU_PERIOD;
      out.push(...cpuQuotaProperties(quota, period, systemdVersion));
    } else if (k === 'cpu.weight') {
      out.push(u64('CPUWeight', number(k, v)));
    } else if (k === 'cpuset.cpus' || k === 'cpuset.mems') {
      out.push(...cpusetProperties(k === 'cpuset.cpus' ? v : '', k === 'cpuset.mems' ? v : '', systemdVersion));
    } else if (memory[k]) {
      out.push(u64(memory[k], number(k, v)));
    } else if (k === 'pids.max') {
      out.push(u64('TasksMax', number(k, v)));
    }
  }
  return out;
}

/** The properties as busctl takes them after a signature "a(sv)": count, then name, type, value... */
export function busctlArguments(properties: UnitProperty[]): string[] {
  const out = [String(properties.length)];
  for (const p of properties) {
    out.push(p.name, p.signature);
    switch (p.signature) {
      case 'b': out.push(String(p.value)); break;
      case 's': out.push(p.value); break;
      case 't': out.push(p.value.toString()); break;
      case 'ay': case 'au': out.push(String(p.value.length), ...p.value.map(String)); break;
      case 'as': out.push(String(p.value.length), ...p.value); break;
      case 'a(ss)': out.push(String(p.value.length), ...p.value.flat()); break;
    }
  }
  return out;
}

/** One line for messages: "MemoryMax=1048576 TasksMax=infinity DeviceAllow=/dev/char/1:3 rwm,...". */
export function describeProperties(properties: UnitProperty[]): string {
  return properties.map((p) => {
    switch (p.signature) {
      case 't': return `${p.name}=${p.value === INFINITY ? 'infinity' : p.value}`;
      case 'ay': case 'au': case 'as': return `${p.name}=[${p.value.join(',')}]`;
      case 'a(ss)': return `${p.name}=${p.value.map(([a, b]) => `${a} ${b}`).join(',')}`;
      default: return `${p.name}=${p.value}`;
    }
  }).join(' ');
}
