// cgroup v1 blkio: the weights (blkio.weight with CFQ, blkio.bfq.* with BFQ, whichever the
// kernel has), leaf weights (CFQ only), and the blkio.throttle.* device limits.
import type { BlockIOResources } from '../../spec/types';
import { decimal } from '../convert';
import type { CgroupDir } from '../fs';
import { isSet } from '../resources';
import type { BlkioEntry, Stats } from '../stats';

const at = 'linux.resources.blockIO';

const THROTTLES = [
  ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
  ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
  ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
  ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
] as const;

export function apply(dir: CgroupDir, b: BlockIOResources | undefined): void {
  if (!b) return;
  // runc's detectWeightFilenames: CFQ's names when present, else BFQ's.
  const cfq = dir.has('blkio.weight');
  const weightFile = cfq ? 'blkio.weight' : 'blkio.bfq.weight';
  const weightDeviceFile = cfq ? 'blkio.weight_device' : 'blkio.bfq.weight_device';
  if (isSet(b.weight)) dir.write(weightFile, decimal(b.weight), `${at}.weight`);
  if (isSet(b.leafWeight)) dir.write('blkio.leaf_weight', decimal(b.leafWeight), `${at}.leafWeight`);
  (b.weightDevice ?? []).forEach((d, i) => {
    if (isSet(d.weight)) dir.write(weightDeviceFile, `${d.major}:${d.minor} ${decimal(d.weight)}`, `${at}.weightDevice[${i}].weight`);
    if (isSet(d.leafWeight)) dir.write('blkio.leaf_weight_device', `${d.major}:${d.minor} ${decimal(d.leafWeight)}`, `${at}.weightDevice[${i}].leafWeight`);
  });
  for (const [field, file] of THROTTLES) {
    (b[field] ?? []).forEach((d, i) => dir.write(file, `${d.major}:${d.minor} ${decimal(d.rate)}`, `${at}.${field}[${i}]`));
  }
}

/** "8:0 Read 4096" lines (and "8:0 4096" for sectors/time); "Total" lines are skipped. */
export function parseBlkioFile(text: string): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 2 || f[0] === 'Total') continue;
    const [major, minor] = f[0].split(':');
    if (minor === undefined) continue;
    const op = f.length >= 3 ? f[1] : '';
    out.push({ major: BigInt(major), minor: BigInt(minor), op, value: BigInt(f[f.length - 1]) });
  }
  return out;
}

/** runc's v1 blkio stats: CFQ's recursive files, else BFQ's, else the throttle counters. */
export function stats(dir: CgroupDir, s: Stats): void {
  const read = (file: string) => parseBlkioFile(dir.readOptional(file) ?? '');
  const b = s.blkio;
  if (dir.has('blkio.io_serviced_recursive')) {
    b.sectorsRecursive = read('blkio.sectors_recursive');
    b.ioServiceBytesRecursive = read('blkio.io_service_bytes_recursive');
    b.ioServicedRecursive = read('blkio.io_serviced_recursive');
    b.ioQueueRecursive = read('blkio.io_queued_recursive');
    b.ioServiceTimeRecursive = read('blkio.io_service_time_recursive');
    b.ioWaitTimeRecursive = read('blkio.io_wait_time_recursive');
    b.ioMergedRecursive = read('blkio.io_merged_recursive');
    b.ioTimeRecursive = read('blkio.time_recursive');
  } else if (dir.has('blkio.bfq.io_serviced_recursive')) {
    b.ioServiceBytesRecursive = read('blkio.bfq.io_service_bytes_recursive');
    b.ioServicedRecursive = read('blkio.bfq.io_serviced_recursive');
  } else {
    b.ioServiceBytesRecursive = read('blkio.throttle.io_service_bytes_recursive');
    b.ioServicedRecursive = read('blkio.throttle.io_serviced_recursive');
  }
}
