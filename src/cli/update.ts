// husk update: new resource limits for a container, from runc's flags or from
// `-r FILE|-` (OCI LinuxResources JSON; then the other flags are ignored, as in runc).
import { HuskError } from '../errors';
import { log } from '../runtime/log';
import type { Resources } from '../spec/types';

import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

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

export function update(root: string, id: string, flags: UpdateFlags): void {
  const verbs = require('../cgroups/verbs') as typeof import('../cgroups/verbs');
  const changes = flags.resources !== undefined ? verbs.readResourcesFile(flags.resources) : resourcesFromFlags(flags);
  verbs.update(root, id, changes, { warn: log.warn });
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('update').argument('<id>').description('update the resource limits of a container')
    .option('-r, --resources <file>', 'OCI LinuxResources JSON from this file, or - for stdin (the other options are then ignored)')
    .option('--blkio-weight <weight>', 'block IO weight, 10 to 1000')
    .option('--cpu-period <usecs>', 'CPU CFS period')
    .option('--cpu-quota <usecs>', 'CPU CFS quota per period')
    .option('--cpu-burst <usecs>', 'CPU CFS burst')
    .option('--cpu-share <shares>', 'CPU shares (relative weight)')
    .option('--cpu-shares <shares>', 'the same as --cpu-share')
    .option('--cpu-rt-period <usecs>', 'CPU realtime period')
    .option('--cpu-rt-runtime <usecs>', 'CPU realtime runtime per period')
    .option('--cpu-idle <0|1>', 'SCHED_IDLE for the cgroup')
    .option('--cpuset-cpus <cpus>', 'CPUs to use (0-3,5)')
    .option('--cpuset-mems <mems>', 'memory nodes to use')
    .option('--memory <bytes>', 'memory limit (200M, 1g; -1 for none)')
    .option('--memory-reservation <bytes>', 'memory reservation (soft limit)')
    .option('--memory-swap <bytes>', 'memory plus swap limit (-1 for unlimited swap)')
    .option('--kernel-memory <bytes>', 'ignored, as in runc')
    .option('--kernel-memory-tcp <bytes>', 'ignored, as in runc')
    .option('--pids-limit <n>', 'maximum number of processes')
    .action(action('update', (id: string, opts: any) => update(g.root, id, opts)));
}
