// The real HostView (see plan.ts): what the plan needs to know about this host, from the
// host package's readers of /proc/self/mountinfo, /proc/self/cgroup and the rootfs.
import * as fs from 'fs';
import * as path from 'path';
import type { HostView } from './plan';
import { readLayout, type CgroupLayout } from '../host/cgroupLayout';
import { mountPointOf, readMountInfo, type MountInfo } from '../host/mountinfo';
import { readFileInRoot } from '../host/rootfs';
import { securityModules } from '../host/securityModules';

/** The hierarchies mounted directly under /sys/fs/cgroup, as the container's own cgroup mounts
 * repeat them: the mount point's name, the options of a fresh mount, husk's own cgroup. */
export function cgroupV1Mounts(layout: CgroupLayout = readLayout()): HostView['cgroupV1'] {
  const out: HostView['cgroupV1'] = [];
  for (const h of layout.v1) {
    if (path.dirname(h.mountPoint) !== '/sys/fs/cgroup') continue;
    // A named hierarchy alone (name=systemd) is mounted with "none" as runc does.
    const named = !h.controllers.some((c) => !c.startsWith('name='));
    const options = (named ? ['none', ...h.controllers] : h.controllers).join(',');
    out.push({ name: path.basename(h.mountPoint), options, cgroupPath: h.ownPath });
  }
  const u = layout.unified;
  if (u && path.dirname(u.mountPoint) === '/sys/fs/cgroup') {
    out.push({ name: 'unified', options: '', cgroupPath: u.ownPath });
  }
  return out;
}

export function hostView(): HostView {
  let mounts: MountInfo[] | undefined;
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
      return mountPointOf(real, (mounts ??= readMountInfo()));
    },
    get cgroupV2Unified() {
      return readLayout().unified?.mountPoint === '/sys/fs/cgroup';
    },
    get cgroupV1() {
      return (v1 ??= cgroupV1Mounts());
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
      return securityModules();
    },
    readRootfsFile(rootfs, p) {
      return readFileInRoot(rootfs, p, 1 << 20);
    },
  };
}
