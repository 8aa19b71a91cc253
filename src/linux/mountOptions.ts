// config.json mount options -> mount(2) flags, propagation and data, as runc reads them.
import { MS } from './constants';

export interface MountOptions {
  /** Flags for the mount itself (MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...). */
  flags: number;
  /** Propagation changes, applied one by one after the mount (MS_PRIVATE|MS_REC, ...). */
  propagation: number[];
  /** Everything else, passed to the filesystem ("mode=755,size=65536k"). */
  data: string;
  /** "idmap" or "ridmap": an idmapped bind mount (recursively for ridmap). */
  idmap?: 'idmap' | 'ridmap';
  /** Recursive options (rro, rnosuid, ...): MOUNT_ATTR_* bits to set and clear on the tree. */
  recursive?: { set: number; clear: number };
  /** "tmpcopyup": a tmpfs starts with a copy of what the directory held. */
  copyUp?: boolean;
}

// mount_setattr(2)'s MOUNT_ATTR_* bits; the three atime modes share MOUNT_ATTR__ATIME.
export const MOUNT_ATTR = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, ATIME_MASK: 0x70, RELATIME: 0x0, NOATIME: 0x10,
  STRICTATIME: 0x20, NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000,
} as const;

// [set, clear] for the recursive options, as runc names them.
const RECURSIVE_OPTIONS: Record<string, [number, number]> = {
  rro: [MOUNT_ATTR.RDONLY, 0],
  rrw: [0, MOUNT_ATTR.RDONLY],
  rnosuid: [MOUNT_ATTR.NOSUID, 0],
  rsuid: [0, MOUNT_ATTR.NOSUID],
  rnodev: [MOUNT_ATTR.NODEV, 0],
  rdev: [0, MOUNT_ATTR.NODEV],
  rnoexec: [MOUNT_ATTR.NOEXEC, 0],
  rexec: [0, MOUNT_ATTR.NOEXEC],
  rnodiratime: [MOUNT_ATTR.NODIRATIME, 0],
  rdiratime: [0, MOUNT_ATTR.NODIRATIME],
  rnoatime: [MOUNT_ATTR.NOATIME, MOUNT_ATTR.ATIME_MASK],
  ratime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rrelatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rnorelatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rstrictatime: [MOUNT_ATTR.STRICTATIME, MOUNT_ATTR.ATIME_MASK],
  rnostrictatime: [MOUNT_ATTR.RELATIME, MOUNT_ATTR.ATIME_MASK],
  rnosymfollow: [MOUNT_ATTR.NOSYMFOLLOW, 0],
  rsymfollow: [0, MOUNT_ATTR.NOSYMFOLLOW],
};

// [set, clear]: an option either adds its flag or removes it.
const FLAG_OPTIONS: Record<string, [number, number]> = {
  defaults: [0, 0],
  ro: [MS.MS_RDONLY, 0],
  rw: [0, MS.MS_RDONLY],
  nosuid: [MS.MS_NOSUID, 0],
  suid: [0, MS.MS_NOSUID],
  nodev: [MS.MS_NODEV, 0],
  dev: [0, MS.MS_NODEV],
  noexec: [MS.MS_NOEXEC, 0],
  exec: [0, MS.MS_NOEXEC],
  sync: [MS.MS_SYNCHRONOUS, 0],
  async: [0, MS.MS_SYNCHRONOUS],
  dirsync: [MS.MS_DIRSYNC, 0],
  remount: [MS.MS_REMOUNT, 0],
  mand: [MS.MS_MANDLOCK, 0],
  nomand: [0, MS.MS_MANDLOCK],
  noatime: [MS.MS_NOATIME, 0],
  atime: [0, MS.MS_NOATIME],
  nodiratime: [MS.MS_NODIRATIME, 0],
  diratime: [0, MS.MS_NODIRATIME],
  relatime: [MS.MS_RELATIME, 0],
  norelatime: [0, MS.MS_RELATIME],
  strictatime: [MS.MS_STRICTATIME, 0],
  nostrictatime: [0, MS.MS_STRICTATIME],
  lazytime: [MS.MS_LAZYTIME, 0],
  nolazytime: [0, MS.MS_LAZYTIME],
  nosymfollow: [MS.MS_NOSYMFOLLOW, 0],
  symfollow: [0, MS.MS_NOSYMFOLLOW],
  bind: [MS.MS_BIND, 0],
  rbind: [MS.MS_BIND | MS.MS_REC, 0],
  acl: [MS.MS_POSIXACL, 0],
  noacl: [0, MS.MS_POSIXACL],
  iversion: [MS.MS_I_VERSION, 0],
  noiversion: [0, MS.MS_I_VERSION],
  silent: [MS.MS_SILENT, 0],
  loud: [0, MS.MS_SILENT],
};

/** Every option husk understands (for `husk features`), besides filesystem data. */
export function knownMountOptions(): string[] {
  const names = [...Object.keys(FLAG_OPTIONS), ...Object.keys(PROPAGATION), ...Object.keys(RECURSIVE_OPTIONS)];
  return [...names, 'idmap', 'ridmap', 'tmpcopyup'].sort();
}

export const PROPAGATION: Record<string, number> = {
  private: MS.MS_PRIVATE,
  rprivate: MS.MS_PRIVATE | MS.MS_REC,
  shared: MS.MS_SHARED,
  rshared: MS.MS_SHARED | MS.MS_REC,
  slave: MS.MS_SLAVE,
  rslave: MS.MS_SLAVE | MS.MS_REC,
  unbindable: MS.MS_UNBINDABLE,
  runbindable: MS.MS_UNBINDABLE | MS.MS_REC,
};

export function parseMountOptions(options: string[] = []): MountOptions {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  let idmap: MountOptions['idmap'];
  let recursive: MountOptions['recursive'];
  let copyUp = false;
  for (const option of options) {
    const flag = FLAG_OPTIONS[option];
    if (option === 'tmpcopyup') {
      copyUp = true;
    } else if (option === 'idmap' || option === 'ridmap') {
      idmap = option;
    } else if (option in RECURSIVE_OPTIONS) {
      const [set, clear] = RECURSIVE_OPTIONS[option];
      recursive ??= { set: 0, clear: 0 };
      recursive.set = (recursive.set & ~clear) | set;
      recursive.clear = (recursive.clear & ~set) | clear;
    } else if (flag) {
      flags = (flags | flag[0]) & ~flag[1];
    } else if (option in PROPAGATION) {
      propagation.push(PROPAGATION[option]);
    } else {
      data.push(option);
    }
  }
  return {
    flags,
    propagation,
    data: data.join(','),
    ...(idmap ? { idmap } : {}),
    ...(recursive ? { recursive } : {}),
    ...(copyUp ? { copyUp } : {}),
  };
}
