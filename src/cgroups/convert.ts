// The OCI resources were designed on cgroup v1; cgroup v2 files take other units. These are
// the conversions runc and crun make (opencontainers/cgroups utils.go, crun cgroup-utils.c),
// kept in one place so the unit tests can check every one against their values.
import { HuskError } from '../errors';

/** A number as the kernel wants it: decimal digits, never an exponent (1e21) or a fraction. */
export function decimal(n: number): string {
  return BigInt(Math.trunc(n)).toString();
}

/** runc's numToStr for cgroup v2 files: 0 is "unset" (""), -1 is "max", anything else as is. */
export function v2Number(n: number | undefined): string {
  if (n === undefined || n === 0) return '';
  if (n === -1) return 'max';
  return decimal(n);
}

/**
 * cpu.shares [2, 262144] (default 1024) -> cpu.weight [1, 10000] (default 100). The current
 * runc (opencontainers/cgroups) and crun (>= 1.23) formula: a quadratic in log2(shares) that
 * maps 2 -> 1, 1024 -> 100 and 262144 -> 10000. (runc <= 1.2 used the linear
 * 1 + (shares - 2) * 9999 / 262142, which put the default 1024 at 39.)
 */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612 - 7 / 34;
  return Math.ceil(Math.pow(10, exponent));
}

/** blkio.weight [10, 1000] -> io.weight [1, 10000], linearly (runc and crun). 0 stays unset. */
export function blkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/**
 * OCI memory.swap is memory+swap (cgroup v1's memsw); cgroup v2's memory.swap.max is swap
 * alone. runc's ConvertMemorySwapToCgroupV2Value, case by case; 0 means "leave it".
 */
export function memorySwapToV2(swap: number, memory: number): number {
  if (memory === -1 && swap === 0) return -1; // unlimited memory and no swap given: both unlimited
  if (swap === -1 || swap === 0) return swap;
  if (memory === -1) return swap;
  if (memory === 0) throw new HuskError('linux.resources.memory.swap: unable to set swap limit without memory limit');
  if (memory < 0) throw new HuskError(`linux.resources.memory.limit: invalid memory value: ${memory}`);
  if (swap < memory) throw new HuskError('linux.resources.memory.swap: memory+swap limit should be >= memory limit');
  return swap - memory;
}

/**
 * cpu.max from quota and period (cgroup v2), as runc writes it: "" when neither is set,
 * "max" for no quota, and the period only when one was given (the kernel keeps its own).
 */
export function cpuMax(quota: number | undefined, period: number | undefined): string {
  const q = quota ?? 0;
  const p = period ?? 0;
  if (q === 0 && p === 0) return '';
  let out = q > 0 ? decimal(q) : 'max';
  if (p !== 0) out += ` ${decimal(p)}`;
  return out;
}

/** pids.max: a positive limit as is, a negative one as "max"; 0 leaves the file alone (""). */
export function pidsMax(limit: number | undefined): string {
  if (limit === undefined || limit === 0) return '';
  return limit > 0 ? decimal(limit) : 'max';
}
