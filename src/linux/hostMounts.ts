// A container with no mount namespace of its own mounts in husk's (plan.ts): a private bind
// of its rootfs, with proc, dev and the config's mounts on it. They are in the host's mount
// table until the container is deleted; runc leaves them there for good. husk notes which
// mounts were at or under the rootfs before create, and delete (or a failed create) detaches
// every one added since, so the host's mount table is as it was.
import * as fs from 'fs';
import { readMountInfo, type MountInfo } from '../host/mountinfo';
import { HuskError } from '../errors';

const MNT_DETACH = 2;

function mountsAtOrUnder(dir: string): MountInfo[] {
  return readMountInfo().filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(dir + '/'));
}

export interface MountsBefore {
  /** husk's mount namespace (/proc/self/ns/mnt): mount ids mean something only in it. */
  mountNamespace: string;
  ids: number[];
}

/** The ids of the mounts at or under the rootfs now, before create adds its own. */
export function mountIdsBefore(rootfs: string): MountsBefore {
  return { mountNamespace: fs.readlinkSync('/proc/self/ns/mnt'), ids: mountsAtOrUnder(rootfs).map((m) => m.id) };
}

/**
 * Detaches every mount at or under the rootfs that was not there before create, the
 * shallowest first (a lazy unmount takes what is mounted on it along). Only the topmost mount
 * at a path is what umount2 of that path reaches, so a mount still covered by another is left
 * for a later round. Throws when one cannot be detached: delete keeps the record, to try again.
 */
export function detachAddedMounts(rootfs: string, before: MountsBefore): void {
  const here = fs.readlinkSync('/proc/self/ns/mnt');
  if (here !== before.mountNamespace) {
    throw new HuskError(`detach the mounts under ${JSON.stringify(rootfs)}: they are in mount namespace `
      + `${before.mountNamespace}, husk runs in ${here}`);
  }
  const kept = new Set(before.ids);
  for (let round = 0; round < 64; round++) {
    const mounts = mountsAtOrUnder(rootfs);
    const stackedOn = (m: MountInfo) => mounts.some((o) => o.id === m.parent && o.mountPoint === m.mountPoint);
    const covered = new Set(mounts.filter(stackedOn).map((m) => m.parent));
    const added = mounts.filter((m) => !kept.has(m.id) && !covered.has(m.id));
    added.sort((a, b) => a.mountPoint.length - b.mountPoint.length);
    if (added.length === 0) return;
    const { native } = require('../native') as typeof import('../native');
    try {
      native.umount2(added[0].mountPoint, MNT_DETACH);
    } catch (err) {
      throw new HuskError(`detach ${JSON.stringify(added[0].mountPoint)}: ${(err as Error).message}`);
    }
  }
  throw new HuskError(`detach the mounts under ${JSON.stringify(rootfs)}: still there after 64 rounds`);
}
