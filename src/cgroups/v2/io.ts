// cgroup v2 io: the weight (io.bfq.weight when the BFQ scheduler offers it, else io.weight
// converted from blkio's range), per-device weights (BFQ only, as crun), and the throttles
// as io.max lines. leafWeight is a cgroup v1 (CFQ) notion and is refused.
import type { BlockIOResources } from '../../spec/types';
import { blkioWeightToIoWeight, decimal } from '../convert';
import type { CgroupDir } from '../fs';
import { isSet, refuse } from '../resources';
import type { BlkioEntry, Stats } from '../stats';

const at = 'linux.resources.blockIO';

export function check(b: BlockIOResources | undefined): void {
  if (!b) return;
  if (isSet(b.leafWeight)) throw refuse(`${at}.leafWeight`, 'cgroup v2 has no leaf weight');
  (b.weightDevice ?? []).forEach((d, i) => {
    if (isSet(d.leafWeight)) throw refuse(`${at}.weightDevice[${i}].leafWeight`, 'cgroup v2 has no leaf weight');
  });
}

const THROTTLES = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
] as const;

export function apply(dir: CgroupDir, b: BlockIOResources | undefined): void {
  if (!b) return;
  const bfq = dir.has('io.bfq.weight');
  if (isSet(b.weight)) {
    if (bfq) dir.write('io.bfq.weight', decimal(b.weight), `${at}.weight`);
    else dir.write('io.weight', String(blkioWeightToIoWeight(b.weight)), `${at}.weight`);
  }
  (b.weightDevice ?? []).forEach((d, i) => {
    if (!isSet(d.weight)) return;
    const what = `${at}.weightDevice[${i}]`;
    if (!bfq) throw refuse(what, `per-device weights need the BFQ I/O scheduler, and ${dir.path('io.bfq.weight')} does not exist`);
    dir.write('io.bfq.weight', `${d.major}:${d.minor} ${decimal(d.weight)}`, what);
  });
  for (const [field, key] of THROTTLES) {
    (b[field] ?? []).forEach((d, i) => dir.write('io.max', `${d.major}:${d.minor} ${key}=${decimal(d.rate)}`, `${at}.${field}[${i}]`));
  }
}

/** runc's statIo: io.stat rbytes/wbytes and rios/wios under v1's names. */
export function stats(dir: CgroupDir, s: Stats): void {
  const text = dir.readOptional('io.stat');
  if (text === undefined) return;
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2) continue;
    const [major, minor] = parts[0].split(':').map((x) => BigInt(x));
    for (const kv of parts.slice(1)) {
      const [op, value] = kv.split('=');
      const entry = (o: string): BlkioEntry => ({ major, minor, op: o, value: BigInt(value) });
      if (op === 'rbytes') s.blkio.ioServiceBytesRecursive.push(entry('Read'));
      else if (op === 'wbytes') s.blkio.ioServiceBytesRecursive.push(entry('Write'));
      else if (op === 'rios') s.blkio.ioServicedRecursive.push(entry('Read'));
      else if (op === 'wios') s.blkio.ioServicedRecursive.push(entry('Write'));
    }
  }
}
