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
}

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
};

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
  for (const option of options) {
    const flag = FLAG_OPTIONS[option];
    if (option === 'idmap' || option === 'ridmap') {
      idmap = option;
    } else if (flag) {
      flags = (flags | flag[0]) & ~flag[1];
    } else if (option in PROPAGATION) {
      propagation.push(PROPAGATION[option]);
    } else {
      data.push(option);
    }
  }
  return { flags, propagation, data: data.join(','), ...(idmap ? { idmap } : {}) };
}
