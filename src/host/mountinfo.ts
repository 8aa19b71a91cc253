// The one parser of /proc/self/mountinfo (proc(5)): for the cgroup layout, the mount point
// that holds a bundle's rootfs, and the image store's mounted rootfs.
import * as fs from 'fs';

export interface MountInfo {
  /** The mount id (field 1) and its parent's (field 2): unique in one mount namespace. */
  id: number;
  parent: number;
  /** The mount's root inside its filesystem (field 4), "/" unless it is a bind mount. */
  root: string;
  mountPoint: string;
  fsType: string;
  /** The superblock's options ("rw,cpu,cpuacct"). */
  superOptions: string;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mounts in the text of a mountinfo file, in the kernel's order, paths decoded. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5) continue;
    out.push({
      id: Number(left[0]),
      parent: Number(left[1]),
      root: unescape(left[3]),
      mountPoint: unescape(left[4]),
      fsType: right[0],
      superOptions: right[2] ?? '',
    });
  }
  return out;
}

export function readMountInfo(file = '/proc/self/mountinfo'): MountInfo[] {
  return parseMountInfo(fs.readFileSync(file, 'utf8'));
}

export function isMountPoint(dir: string): boolean {
  return readMountInfo().some((m) => m.mountPoint === dir);
}

/** The mount point that contains `realPath` (a path without symlinks). */
export function mountPointOf(realPath: string, mounts: MountInfo[]): string {
  let best = '/';
  for (const { mountPoint: mp } of mounts) {
    if ((realPath === mp || realPath.startsWith(mp.endsWith('/') ? mp : mp + '/')) && mp.length > best.length) best = mp;
  }
  return best;
}
