// cgroup v1 hugetlb: hugetlb.<size>.limit_in_bytes, and its usage counters. (A hybrid host
// without a v1 hugetlb hierarchy uses the cgroup2 one: see manager.ts.)
import type { CgroupDir } from '../fs';
import { parseU64, type Stats } from '../stats';
import { apply as applyV2, pageSizes } from '../v2/hugetlb';

export function apply(dir: CgroupDir, limits: { pageSize: string; limit: number }[] | undefined): void {
  applyV2(dir, limits, 'limit_in_bytes');
}

export function stats(dir: CgroupDir, s: Stats): void {
  for (const size of pageSizes()) {
    const usage = dir.readOptional(`hugetlb.${size}.usage_in_bytes`);
    if (usage === undefined) continue;
    const n = (f: string) => {
      const t = dir.readOptional(`hugetlb.${size}.${f}`);
      return t === undefined ? 0n : parseU64(t);
    };
    s.hugetlb[size] = { usage: parseU64(usage), max: n('max_usage_in_bytes'), failcnt: n('failcnt') };
  }
}
