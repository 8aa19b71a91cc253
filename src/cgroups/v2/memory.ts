// cgroup v2 memory: memory.max, memory.low, memory.swap.max (swap alone, converted from
// OCI's memory+swap), memory.events for OOM kills. What only v1 has is refused by name.
import type { MemoryResources } from '../../spec/types';
import { memorySwapToV2, v2Number } from '../convert';
import { errnoOf, type CgroupDir } from '../fs';
import { refuse, type Resources } from '../resources';
import { parseFlatKeyed, parseU64, U64_MAX, type MemoryEntry, type Stats } from '../stats';

const at = 'linux.resources.memory';

export function check(m: MemoryResources | undefined): void {
  if (!m) return;
  if (m.kernel !== undefined && m.kernel !== null) throw refuse(`${at}.kernel`, 'cgroup v2 has no kernel memory limit (memory.max counts kernel memory already)');
  if (m.kernelTCP !== undefined && m.kernelTCP !== null) throw refuse(`${at}.kernelTCP`, 'cgroup v2 has no separate kernel TCP memory limit');
  if (m.swappiness !== undefined && m.swappiness !== null) throw refuse(`${at}.swappiness`, 'cgroup v2 has no per-cgroup swappiness');
  if (m.disableOOMKiller) throw refuse(`${at}.disableOOMKiller`, 'cgroup v2 cannot disable the OOM killer');
  if (m.useHierarchy === false) throw refuse(`${at}.useHierarchy`, 'false cannot be applied: cgroup v2 is always hierarchical');
}

export function apply(dir: CgroupDir, m: MemoryResources | undefined): void {
  if (!m) return;
  const limit = m.limit ?? 0;
  const swapGiven = m.swap ?? 0;
  if (m.checkBeforeUpdate && limit > 0) {
    // runc's CheckMemoryUsage: refuse a limit at or below what the cgroup uses now.
    const usage = parseU64(dir.read('memory.current'));
    if (BigInt(limit) <= usage) throw refuse(`${at}.limit`, `rejecting memory limit ${limit} below current usage ${usage}`);
  }
  const swap = memorySwapToV2(swapGiven, limit);
  let swapText = v2Number(swap);
  // memory and memory+swap set to the same value: no swap at all.
  if (swapText === '' && swap === 0 && swapGiven > 0) swapText = '0';
  if (swapText !== '') {
    try {
      dir.write('memory.swap.max', swapText, `${at}.swap`);
    } catch (err) {
      // Without swap accounting the file is missing: "max" and "0" then hold anyway.
      if (!(errnoOf(err) === 'ENOENT' && (swapText === 'max' || swapText === '0'))) throw err;
    }
  }
  const max = v2Number(limit);
  if (max) dir.write('memory.max', max, `${at}.limit`);
  const low = v2Number(m.reservation ?? 0);
  if (low) dir.write('memory.low', low, `${at}.reservation`);
}

/** True when there is something to write (create applies only what is asked). */
export function wanted(r: Resources): boolean {
  const m = r.memory;
  return !!m && [m.limit, m.reservation, m.swap].some((v) => v !== undefined && v !== null && v !== 0);
}

function entry(dir: CgroupDir, prefix: string): MemoryEntry | undefined {
  const current = dir.readOptional(`${prefix}.current`);
  if (current === undefined) return undefined;
  const max = dir.readOptional(`${prefix}.max`);
  const peak = dir.readOptional(`${prefix}.peak`);
  return { usage: parseU64(current), limit: max === undefined ? U64_MAX : parseU64(max), max: peak === undefined ? 0n : parseU64(peak), failcnt: 0n };
}

/** runc's statMemory for v2: raw memory.stat, usage, and swap reported as memory+swap like v1. */
export function stats(dir: CgroupDir, s: Stats): void {
  const raw = dir.readOptional('memory.stat');
  if (raw === undefined) return;
  const map = parseFlatKeyed(raw);
  for (const [k, v] of map) s.memory.raw[k] = v;
  s.memory.cache = map.get('file') ?? 0n;
  const usage = entry(dir, 'memory');
  if (usage) {
    const events = parseFlatKeyed(dir.readOptional('memory.events') ?? '');
    usage.failcnt = events.get('max') ?? 0n;
    s.memory.usage = usage;
  }
  const swap = entry(dir, 'memory.swap') ?? { usage: 0n, limit: 0n, max: 0n, failcnt: 0n };
  swap.usage += s.memory.usage.usage;
  if (swap.limit !== U64_MAX) swap.limit += s.memory.usage.limit;
  if (swap.limit > U64_MAX) swap.limit = U64_MAX;
  swap.max = 0n;
  s.memory.swap = swap;
}

/** memory.events oom_kill: processes the OOM killer killed in this cgroup and below. */
export function oomKillCount(dir: CgroupDir): bigint {
  return parseFlatKeyed(dir.readOptional('memory.events') ?? '').get('oom_kill') ?? 0n;
}
