// `events --stats` data in runc's format (runc types/events.go, as runc 1.1 prints it):
// the same keys in the same order, the same omitted empty fields (Go's omitempty), and
// counters as exact unsigned 64-bit integers ("max" is 18446744073709551615), which is why
// the numbers are bigints and the JSON is written by toGoJson() below.

export type U64 = bigint;

export const U64_MAX = 18446744073709551615n;

export interface MemoryEntry {
  limit: U64;
  usage: U64;
  max: U64;
  failcnt: U64;
}

export interface BlkioEntry {
  major: U64;
  minor: U64;
  op: string;
  value: U64;
}

export interface HugetlbStat {
  usage: U64;
  max: U64;
  failcnt: U64;
}

export interface Stats {
  cpu: {
    usage: { total: U64; percpu: U64[]; percpu_kernel: U64[]; percpu_user: U64[]; kernel: U64; user: U64 };
    throttling: { periods: U64; throttledPeriods: U64; throttledTime: U64 };
  };
  cpuset: {
    cpus: number[];
    cpu_exclusive: U64;
    mems: number[];
    mem_hardwall: U64;
    mem_exclusive: U64;
    memory_migrate: U64;
    memory_spread_page: U64;
    memory_spread_slab: U64;
    memory_pressure: U64;
    sched_load_balance: U64;
    sched_relax_domain_level: bigint;
  };
  memory: {
    cache: U64;
    usage: MemoryEntry;
    swap: MemoryEntry;
    kernel: MemoryEntry;
    kernelTCP: MemoryEntry;
    raw: Record<string, U64>;
  };
  pids: { current: U64; limit: U64 };
  blkio: {
    ioServiceBytesRecursive: BlkioEntry[];
    ioServicedRecursive: BlkioEntry[];
    ioQueueRecursive: BlkioEntry[];
    ioServiceTimeRecursive: BlkioEntry[];
    ioWaitTimeRecursive: BlkioEntry[];
    ioMergedRecursive: BlkioEntry[];
    ioTimeRecursive: BlkioEntry[];
    sectorsRecursive: BlkioEntry[];
  };
  hugetlb: Record<string, HugetlbStat>;
}

const memoryEntry = (): MemoryEntry => ({ limit: 0n, usage: 0n, max: 0n, failcnt: 0n });

export function emptyStats(): Stats {
  return {
    cpu: {
      usage: { total: 0n, percpu: [], percpu_kernel: [], percpu_user: [], kernel: 0n, user: 0n },
      throttling: { periods: 0n, throttledPeriods: 0n, throttledTime: 0n },
    },
    cpuset: {
      cpus: [], cpu_exclusive: 0n, mems: [], mem_hardwall: 0n, mem_exclusive: 0n, memory_migrate: 0n,
      memory_spread_page: 0n, memory_spread_slab: 0n, memory_pressure: 0n, sched_load_balance: 0n, sched_relax_domain_level: 0n,
    },
    memory: { cache: 0n, usage: memoryEntry(), swap: memoryEntry(), kernel: memoryEntry(), kernelTCP: memoryEntry(), raw: {} },
    pids: { current: 0n, limit: 0n },
    blkio: {
      ioServiceBytesRecursive: [], ioServicedRecursive: [], ioQueueRecursive: [], ioServiceTimeRecursive: [],
      ioWaitTimeRecursive: [], ioMergedRecursive: [], ioTimeRecursive: [], sectorsRecursive: [],
    },
    hugetlb: {},
  };
}

/** A cgroup file's number: "max" is U64_MAX, a negative number (v1's -1) is 0, as runc reads them. */
export function parseU64(text: string): U64 {
  const t = text.trim();
  if (t === 'max') return U64_MAX;
  if (/^-\d+$/.test(t)) return 0n;
  if (!/^\d+$/.test(t)) throw new Error(`not a number: ${JSON.stringify(t)}`);
  const n = BigInt(t);
  return n > U64_MAX ? U64_MAX : n;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events) -> a map. */
export function parseFlatKeyed(text: string): Map<string, U64> {
  const out = new Map<string, U64>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$|^max$/.test(v)) out.set(k, parseU64(v));
  }
  return out;
}

/** "0-3,8" -> [0, 1, 2, 3, 8] (cpuset lists). */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return out;
}

// ------------------------------------------------------------------------------ the JSON

const num = (n: bigint | number) => n.toString();
const str = (s: string) => JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Go's encoding of one object: fields in order, those marked omitempty left out when zero. */
function object(fields: [string, string | undefined][]): string {
  return `{${fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${str(k)}:${v}`).join(',')}}`;
}
const omit0 = (n: bigint) => (n === 0n ? undefined : num(n));
const omitEmpty = (a: (bigint | number)[]) => (a.length === 0 ? undefined : `[${a.map(num).join(',')}]`);
const omitEmptyEntries = (a: BlkioEntry[]) => (a.length === 0 ? undefined : `[${a.map(blkioEntry).join(',')}]`);

function memoryEntryJson(e: MemoryEntry): string {
  return object([['limit', num(e.limit)], ['usage', omit0(e.usage)], ['max', omit0(e.max)], ['failcnt', num(e.failcnt)]]);
}

function blkioEntry(e: BlkioEntry): string {
  return object([['major', omit0(e.major)], ['minor', omit0(e.minor)], ['op', e.op ? str(e.op) : undefined], ['value', omit0(e.value)]]);
}

/** The `data` of a stats event, byte for byte as runc 1.1's encoder writes it. */
export function statsJson(s: Stats): string {
  const c = s.cpu;
  const cpu = object([
    ['usage', object([
      ['total', omit0(c.usage.total)], ['percpu', omitEmpty(c.usage.percpu)], ['percpu_kernel', omitEmpty(c.usage.percpu_kernel)],
      ['percpu_user', omitEmpty(c.usage.percpu_user)], ['kernel', num(c.usage.kernel)], ['user', num(c.usage.user)],
    ])],
    ['throttling', object([['periods', omit0(c.throttling.periods)], ['throttledPeriods', omit0(c.throttling.throttledPeriods)], ['throttledTime', omit0(c.throttling.throttledTime)]])],
  ]);
  const cs = s.cpuset;
  const cpuset = object([
    ['cpus', omitEmpty(cs.cpus)], ['cpu_exclusive', num(cs.cpu_exclusive)], ['mems', omitEmpty(cs.mems)], ['mem_hardwall', num(cs.mem_hardwall)],
    ['mem_exclusive', num(cs.mem_exclusive)], ['memory_migrate', num(cs.memory_migrate)], ['memory_spread_page', num(cs.memory_spread_page)],
    ['memory_spread_slab', num(cs.memory_spread_slab)], ['memory_pressure', num(cs.memory_pressure)], ['sched_load_balance', num(cs.sched_load_balance)],
    ['sched_relax_domain_level', num(cs.sched_relax_domain_level)],
  ]);
  const m = s.memory;
  const rawKeys = Object.keys(m.raw).sort();
  const memory = object([
    ['cache', omit0(m.cache)], ['usage', memoryEntryJson(m.usage)], ['swap', memoryEntryJson(m.swap)], ['kernel', memoryEntryJson(m.kernel)],
    ['kernelTCP', memoryEntryJson(m.kernelTCP)], ['raw', rawKeys.length ? object(rawKeys.map((k) => [k, num(m.raw[k])])) : undefined],
  ]);
  const pids = object([['current', omit0(s.pids.current)], ['limit', omit0(s.pids.limit)]]);
  const b = s.blkio;
  const blkio = object([
    ['ioServiceBytesRecursive', omitEmptyEntries(b.ioServiceBytesRecursive)], ['ioServicedRecursive', omitEmptyEntries(b.ioServicedRecursive)],
    ['ioQueueRecursive', omitEmptyEntries(b.ioQueueRecursive)], ['ioServiceTimeRecursive', omitEmptyEntries(b.ioServiceTimeRecursive)],
    ['ioWaitTimeRecursive', omitEmptyEntries(b.ioWaitTimeRecursive)], ['ioMergedRecursive', omitEmptyEntries(b.ioMergedRecursive)],
    ['ioTimeRecursive', omitEmptyEntries(b.ioTimeRecursive)], ['sectorsRecursive', omitEmptyEntries(b.sectorsRecursive)],
  ]);
  const hugetlbKeys = Object.keys(s.hugetlb).sort();
  const hugetlb = object(hugetlbKeys.map((k) => {
    const h = s.hugetlb[k];
    return [k, object([['usage', omit0(h.usage)], ['max', omit0(h.max)], ['failcnt', num(h.failcnt)]])];
  }));
  return object([
    ['cpu', cpu], ['cpuset', cpuset], ['memory', memory], ['pids', pids], ['blkio', blkio], ['hugetlb', hugetlb],
    ['intel_rdt', '{}'], ['network_interfaces', 'null'],
  ]);
}

/** One line of `events`: {"type":"stats","id":...,"data":{...}} or {"type":"oom","id":...}. */
export function eventJson(type: 'stats' | 'oom', id: string, data?: Stats): string {
  return object([['type', str(type)], ['id', str(id)], ['data', data ? statsJson(data) : undefined]]);
}
