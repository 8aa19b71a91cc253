// The real HostView (see plan.ts): what the plan needs to know about this host, read from
// /proc/self/mountinfo, /proc/self/cgroup and the filesystem.
import * as fs from 'fs';
import * as path from 'path';
import type { HostView } from './plan';

interface MountInfo {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o) => String.fromCharCode(parseInt(o, 8)));
}

export function readMountInfo(file = '/proc/self/mountinfo'): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const fields = left.split(' ');
    const tail = (right ?? '').split(' ');
    out.push({ mountPoint: unescape(fields[4]), fsType: tail[0], superOptions: tail[2] ?? '' });
  }
  return out;
}

export function hostView(): HostView {
  let mounts: MountInfo[] | undefined;
  const mountInfo = () => (mounts ??= readMountInfo());
  let v1: HostView['cgroupV1'] | undefined;
  return {
    isDirectory(p) {
      const st = fs.statSync(p, { throwIfNoEntry: false });
      return st ? st.isDirectory() : undefined;
    },
    mountPointOf(p) {
      let real = p;
      try {
        real = fs.realpathSync(p);
      } catch {
        // keep p
      }
      let best = '/';
      for (const m of mountInfo()) {
        const mp = m.mountPoint;
        if ((real === mp || real.startsWith(mp.endsWith('/') ? mp : mp + '/')) && mp.length > best.length) best = mp;
      }
      return best;
    },
    get cgroupV2Unified() {
      return mountInfo().some((m) => m.mountPoint === '/sys/fs/cgroup' && m.fsType === 'cgroup2');
    },
    get cgroupV1() {
      if (v1) return v1;
      const own = new Map<string, string>();
      for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
        const m = /^\d+:([^:]*):(.*)$/.exec(line);
        if (m) own.set(m[1], m[2]);
      }
      v1 = [];
      for (const m of mountInfo()) {
        if (path.dirname(m.mountPoint) !== '/sys/fs/cgroup') continue;
        const name = path.basename(m.mountPoint);
        if (m.fsType === 'cgroup2') {
          v1.push({ name: 'unified', options: '', cgroupPath: own.get('') ?? '/' });
        } else if (m.fsType === 'cgroup') {
          const opts = m.superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro');
          const controllers = opts.filter((o) => !o.includes('=') && o !== 'none').join(',');
          const named = opts.find((o) => o.startsWith('name='));
          const key = [controllers, named].filter(Boolean).join(',');
          const options = controllers ? opts.join(',') : ['none', ...opts].join(',');
          v1.push({ name, options, cgroupPath: own.get(key) ?? own.get(controllers) ?? '/' });
        }
      }
      return v1;
    },
    euid: process.geteuid?.() ?? 0,
    egid: process.getegid?.() ?? 0,
    get lastCap() {
      try {
        return Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
      } catch {
        return 40;
      }
    },
    get securityModules() {
      const out: string[] = [];
      try {
        if (fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y') out.push('apparmor');
      } catch {
        // no AppArmor
      }
      if (fs.existsSync('/sys/fs/selinux/enforce')) out.push('selinux');
      return out;
    },
    readRootfsFile(rootfs, p) {
      let dir = rootfs;
      const parts = p.split('/').filter(Boolean);
      for (const [i, part] of parts.entries()) {
        dir = path.join(dir, part);
        const st = fs.lstatSync(dir, { throwIfNoEntry: false });
        if (!st || st.isSymbolicLink()) return undefined;
        if (i === parts.length - 1) return st.isFile() && st.size < 1 << 20 ? fs.readFileSync(dir, 'utf8') : undefined;
      }
      return undefined;
    },
  };
}
