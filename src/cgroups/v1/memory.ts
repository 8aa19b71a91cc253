// cgroup v1 memory: memory.limit_in_bytes, memory.memsw.limit_in_bytes (OCI's swap is
// memory+swap already), soft limit, kernel and TCP kernel memory, oom_control, swappiness;
// written in the order runc's setMemoryAndSwap uses so that raising or lowering both passes
// the kernel's "memsw >= memory" check.
import type { MemoryResources } from '../../spec/types';
import { decimal } from '../convert';
import { errnoOf, type CgroupDir } from '../fs';
import { refuse } from '../resources';
import { parseFlatKeyed, parseU64, type MemoryEntry, type Stats } from '../stats';

const at = 'linux.resources.memory';

function setLimit(dir: CgroupDir, limit: number): void {
  if (limit === 0) return;
  try {
    dir.write('memory.limit_in_bytes', decimal(limit), `${at}.limit`);
  } catch (err) {
    if (errnoOf(err) !== 'EBUSY') throw err;
    const usage = parseU64(dir.read('memory.usage_in_bytes'));
    const peak = parseU64(dir.read('memory.max_usage_in_bytes'));
    throw refuse(`${at}.limit`, `unable to set memory limit to ${limit} (current usage: ${usage}, peak usage: ${peak})`);
  }
}

function setSwap(dir: CgroupDir, swap: number): void {
  if (swap === 0) return;
  if (!dir.has('memory.memsw.limit_in_bytes')) {
    throw refuse(`${at}.swap`, `this kernel does not account swap (no ${dir.path('memory.memsw.limit_in_bytes')}; boot with swapaccount=1)`);
  }
  dir.write('memory.memsw.limit_in_bytes', decimal(swap), `${at}.swap`);
}

export function apply(dir: CgroupDir, m: MemoryResources | undefined): void {
  if (!m) return;
  const limit = m.limit ?? 0;
  let swap = m.swap ?? 0;
  // Unlimited memory and no swap given: unlimited swap too (when the kernel accounts swap).
  if (limit === -1 && swap === 0 && dir.has('memory.memsw.limit_in_bytes')) swap = -1;
  if (m.checkBeforeUpdate && limit > 0) {
    const usage = parseU64(dir.read('memory.usage_in_bytes'));
    if (BigInt(limit) <= usage) throw refuse(`${at}.limit`, `rejecting memory limit ${limit} below current usage ${usage}`);
  }
  if (limit !== 0 && swap !== 0) {
    const current = parseU64(dir.read('memory.limit_in_bytes'));
    if (swap === -1 || current < BigInt(swap)) {
      setSwap(dir, swap);
      setLimit(dir, limit);
    } else {
      setLimit(dir, limit);
      setSwap(dir, swap);
    }
  } else {
    setLimit(dir, limit);
    setSwap(dir, swap);
  }
  if (m.reservation) dir.write('memory.soft_limit_in_bytes', decimal(m.reservation), `${at}.reservation`);
  if (m.kernel) dir.write('memory.kmem.limit_in_bytes', decimal(m.kernel), `${at}.kernel`);
  if (m.kernelTCP) dir.write('memory.kmem.tcp.limit_in_bytes', decimal(m.kernelTCP), `${at}.kernelTCP`);
  if (m.disableOOMKiller) dir.write('memory.oom_control', '1', `${at}.disableOOMKiller`);
  if (m.swappiness !== undefined && m.swappiness !== null && m.swappiness !== -1) {
    if (m.swappiness < 0 || m.swappiness > 100) throw refuse(`${at}.swappiness`, `invalid memory swappiness value: ${m.swappiness} (valid range is 0-100)`);
    dir.write('memory.swappiness', decimal(m.swappiness), `${at}.swappiness`);
  }
  if (m.useHierarchy !== undefined && m.useHierarchy !== null) dir.write('memory.use_hierarchy', m.useHierarchy ? '1' : '0', `${at}.useHierarchy`);
}

function entry(dir: CgroupDir, prefix: string): MemoryEntry | undefined {
  const usage = dir.readOptional(`${prefix}.usage_in_bytes`);
  if (usage === undefined) return undefined;
  const num = (f: string) => {
    const t = dir.readOptional(`${prefix}.${f}`);
    return t === undefined ? 0n : parseU64(t);
  };
  return { usage: parseU64(usage), max: num('max_usage_in_bytes'), failcnt: num('failcnt'), limit: num('limit_in_bytes') };
}

/** runc's v1 memory stats: memory.stat raw, and usage/swap(memsw)/kernel/kernelTCP entries. */
export function stats(dir: CgroupDir, s: Stats): void {
  const raw = dir.readOptional('memory.stat');
  if (raw === undefined) return;
  const map = parseFlatKeyed(raw);
  for (const [k, v] of map) s.memory.raw[k] = v;
  s.memory.cache = map.get('cache') ?? 0n;
  s.memory.usage = entry(dir, 'memory') ?? s.memory.usage;
  s.memory.swap = entry(dir, 'memory.memsw') ?? s.memory.swap;
  s.memory.kernel = entry(dir, 'memory.kmem') ?? s.memory.kernel;
  s.memory.kernelTCP = entry(dir, 'memory.kmem.tcp') ?? s.memory.kernelTCP;
}

/** memory.oom_control oom_kill (kernel 4.13+). */
export function oomKillCount(dir: CgroupDir): bigint {
  return parseFlatKeyed(dir.readOptional('memory.oom_control') ?? '').get('oom_kill') ?? 0n;
}
