// linux.resources from command-line flags: runc update's flags, field by field as runc reads
// them, and the one parser of memory sizes (docker/go-units RAMInBytes), which `husk image
// run`'s Docker-style flags use too.
import { HuskError } from '../errors';
import { log } from '../host/log';
import type { Resources } from '../spec/types';

export interface UpdateFlags {
  resources?: string;
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuBurst?: string;
  cpuShare?: string;
  cpuShares?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  cpuIdle?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  kernelMemory?: string;
  kernelMemoryTcp?: string;
  pidsLimit?: string;
}

/** docker/go-units RAMInBytes: "200M", "1.5g", "512kb", "1024" (binary multiples). */
export function ramInBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (!m) throw new Error(`invalid size: '${text}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[(m[2] ?? '').toLowerCase()]!;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) throw new Error(`invalid size: '${text}'`);
  return Math.trunc(n * mult);
}

function integer(flag: string, text: string, unsigned: boolean): number {
  if (!/^[+-]?\d+$/.test(text) || (unsigned && text.startsWith('-'))) {
    throw new HuskError(`invalid value for ${flag}: strconv.Parse${unsigned ? 'Uint' : 'Int'}: parsing ${JSON.stringify(text)}: invalid syntax`);
  }
  return Number(text);
}

/** The flags as a LinuxResources, field by field as runc's update reads them. */
export function resourcesFromFlags(f: UpdateFlags): Resources {
  const r: Resources = {};
  const memory: NonNullable<Resources['memory']> = {};
  const cpu: NonNullable<Resources['cpu']> = {};
  if (f.blkioWeight !== undefined) {
    const w = integer('blkio-weight', f.blkioWeight, false);
    if (w !== 0) r.blockIO = { weight: w };
  }
  if (f.cpusetCpus) cpu.cpus = f.cpusetCpus;
  if (f.cpusetMems) cpu.mems = f.cpusetMems;
  if (f.cpuIdle !== undefined) cpu.idle = integer('cpu-idle', f.cpuIdle, false);
  const shares = f.cpuShare ?? f.cpuShares;
  for (const [flag, value, key] of [
    ['cpu-burst', f.cpuBurst, 'burst'],
    ['cpu-period', f.cpuPeriod, 'period'],
    ['cpu-rt-period', f.cpuRtPeriod, 'realtimePeriod'],
    ['cpu-share', shares, 'shares'],
  ] as const) {
    if (value !== undefined && value !== '') cpu[key] = integer(flag, value, true);
  }
  for (const [flag, value, key] of [
    ['cpu-quota', f.cpuQuota, 'quota'],
    ['cpu-rt-runtime', f.cpuRtRuntime, 'realtimeRuntime'],
  ] as const) {
    if (value !== undefined && value !== '') cpu[key] = integer(flag, value, false);
  }
  for (const [flag, value, key] of [
    ['memory', f.memory, 'limit'],
    ['memory-swap', f.memorySwap, 'swap'],
    ['memory-reservation', f.memoryReservation, 'reservation'],
  ] as const) {
    if (value === undefined || value === '') continue;
    try {
      memory[key] = value === '-1' ? -1 : ramInBytes(value);
    } catch (err) {
      throw new HuskError(`invalid value for ${flag}: ${(err as Error).message}`);
    }
  }
  // runc: unlimited memory without a swap value means unlimited swap as well.
  if (memory.limit === -1 && memory.swap === undefined) memory.swap = -1;
  for (const [flag, value] of [['kernel-memory', f.kernelMemory], ['kernel-memory-tcp', f.kernelMemoryTcp]] as const) {
    if (value) log.warn(`Setting --${flag} is ignored and will be removed`);
  }
  if (f.pidsLimit !== undefined) {
    const limit = integer('pids-limit', f.pidsLimit, false);
    if (limit !== 0) r.pids = { limit };
  }
  if (Object.keys(memory).length) r.memory = memory;
  if (Object.keys(cpu).length) r.cpu = cpu;
  return r;
}
