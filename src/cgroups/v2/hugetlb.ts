// cgroup v2 hugetlb: hugetlb.<size>.max per page size ("2MB", "1GB").
import * as fs from 'fs';
import { decimal } from '../convert';
import { errnoOf, type CgroupDir } from '../fs';
import { refuse } from '../resources';
import { parseFlatKeyed, parseU64, type Stats } from '../stats';

/** The page sizes of this host, named as the hugetlb files name them (2048kB -> "2MB"). */
export function pageSizes(sysfs = '/sys/kernel/mm/hugepages'): string[] {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(sysfs);
  } catch {
    return [];
  }
  return entries.map((e) => /^hugepages-(\d+)kB$/.exec(e)).filter((m): m is RegExpExecArray => !!m).map((m) => pageSizeName(Number(m[1]) * 1024));
}

/** 2097152 -> "2MB", 1073741824 -> "1GB", 65536 -> "64KB" (the kernel's names). */
export function pageSizeName(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (bytes >= 1024 && bytes % 1024 === 0 && i < units.length - 1) {
    bytes /= 1024;
    i++;
  }
  return `${bytes}${units[i]}`;
}

export function apply(dir: CgroupDir, limits: { pageSize: string; limit: number }[] | undefined, suffix = 'max'): void {
  (limits ?? []).forEach((h, i) => {
    const what = `linux.resources.hugepageLimits[${i}]`;
    if (!/^[0-9]+[KMGTP]?B$/.test(h.pageSize)) throw refuse(`${what}.pageSize`, `${JSON.stringify(h.pageSize)} is not a page size such as 2MB`);
    try {
      dir.write(`hugetlb.${h.pageSize}.${suffix}`, decimal(h.limit), what);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' && dir.has('cgroup.procs')) {
        const sizes = pageSizes();
        if (!sizes.includes(h.pageSize)) throw refuse(`${what}.pageSize`, `this host has no ${h.pageSize} huge pages (it has ${sizes.join(', ') || 'none'})`);
      }
      throw err;
    }
  });
}

/** runc's v2 hugetlb stats: usage from .current, failures from .events "max"; v2 keeps no peak. */
export function stats(dir: CgroupDir, s: Stats): void {
  for (const size of pageSizes()) {
    const current = dir.readOptional(`hugetlb.${size}.current`);
    if (current === undefined) continue;
    const events = parseFlatKeyed(dir.readOptional(`hugetlb.${size}.events`) ?? '');
    s.hugetlb[size] = { usage: parseU64(current), max: 0n, failcnt: events.get('max') ?? 0n };
  }
}
