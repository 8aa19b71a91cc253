// Which cgroup hierarchies this host has, and where husk itself sits in each of them: the one
// discovery of cgroup v1 (and v2) for the cgroup managers and for the container's /sys/fs/cgroup.
//
//   unified  cgroup2 mounted on /sys/fs/cgroup: one hierarchy, every controller in it
//   hybrid   cgroup v1 hierarchies (cpu, memory, ...) plus a cgroup2 mount, usually
//            /sys/fs/cgroup/unified, that holds the controllers v1 does not (here: hugetlb)
//   legacy   cgroup v1 hierarchies only
//   none     no cgroup filesystem mounted at all
//
// Everything is parsed from the text of /proc/self/mountinfo and /proc/self/cgroup, so the
// rules are unit-tested with made-up hosts; readLayout() reads the real ones.
import * as fs from 'fs';
import { call } from './call';
import * as path from 'path';
import { parseMountInfo } from './mountinfo';

export type CgroupMode = 'unified' | 'hybrid' | 'legacy' | 'none';

/** The v1 controllers husk knows; other words in a v1 mount's options are mount options. */
export const V1_CONTROLLERS = [
  'cpuset', 'cpu', 'cpuacct', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio',
  'perf_event', 'hugetlb', 'pids', 'rdma', 'misc',
] as const;

/** One mounted hierarchy. */
export interface Hierarchy {
  /** v1: its controllers and name= (`cpu`, `cpu,cpuacct`, `name=systemd`); cgroup2: empty. */
  controllers: string[];
  mountPoint: string;
  /** The directory of husk's own cgroup in this hierarchy. */
  own: string;
  /** husk's own cgroup as /proc/self/cgroup names it, relative to the hierarchy's root ("/a/b"). */
  ownPath: string;
}

export interface CgroupLayout {
  mode: CgroupMode;
  /** The cgroup2 hierarchy: /sys/fs/cgroup (unified) or e.g. /sys/fs/cgroup/unified (hybrid). */
  unified?: Hierarchy;
  /** The v1 hierarchies, in mount order. */
  v1: Hierarchy[];
}

interface CgroupMount {
  mountPoint: string;
  /** The mount's root inside its hierarchy (field 4 of mountinfo), "/" unless bind-mounted. */
  root: string;
  fsType: 'cgroup' | 'cgroup2';
  superOptions: string[];
}

function cgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const m of parseMountInfo(mountinfo)) {
    if (m.fsType !== 'cgroup' && m.fsType !== 'cgroup2') continue;
    out.push({ mountPoint: m.mountPoint, root: m.root, fsType: m.fsType, superOptions: m.superOptions.split(',') });
  }
  return out;
}

/** /proc/self/cgroup: hierarchy key ("" for cgroup2, else "cpu,cpuacct" / "name=systemd") -> path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    own.set(m[1] === '0' && m[2] === '' ? '' : m[2], m[3]);
  }
  return own;
}

/** The directory of `cgroupPath` (as /proc/self/cgroup names it) under a mount whose root is `root`. */
function dirUnder(mount: CgroupMount, cgroupPath: string): string {
  // Like runc's getCgroupPathHelper: a bind mount of /a shows the cgroup /a/b as <mnt>/b.
  const rel = path.posix.relative(mount.root, cgroupPath);
  if (rel.startsWith('..')) return mount.mountPoint;
  return path.posix.join(mount.mountPoint, rel);
}

/** Parses a host's layout from the text of /proc/self/mountinfo and /proc/self/cgroup. */
export function parseLayout(mountinfo: string, procSelfCgroup: string): CgroupLayout {
  const own = parseProcCgroup(procSelfCgroup);
  const mounts = cgroupMounts(mountinfo);
  const v1: Hierarchy[] = [];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    const controllers = m.superOptions.filter((o) => (V1_CONTROLLERS as readonly string[]).includes(o) || o.startsWith('name='));
    if (controllers.length === 0) continue;
    const key = controllers.filter((c) => !c.startsWith('name=')).concat(controllers.filter((c) => c.startsWith('name='))).join(',');
    // The same hierarchy mounted twice: the first mount (mount order) wins, as in runc.
    if (seen.has(key)) continue;
    seen.add(key);
    // /proc/self/cgroup lists a hierarchy as "cpu,cpuacct" or "name=systemd"; match it by set.
    let ownPath = '/';
    for (const [k, p] of own) {
      if (k === '') continue;
      const names = k.split(',');
      if (names.length === controllers.length && names.every((n) => controllers.includes(n))) ownPath = p;
    }
    v1.push({ controllers, mountPoint: m.mountPoint, ownPath, own: dirUnder(m, ownPath) });
  }
  const v2Mounts = mounts.filter((m) => m.fsType === 'cgroup2');
  const v2 = v2Mounts.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? v2Mounts.find((m) => m.mountPoint === '/sys/fs/cgroup/unified') ?? v2Mounts[0];
  let unified: Hierarchy | undefined;
  if (v2) {
    const ownPath = own.get('') ?? '/';
    unified = { controllers: [], mountPoint: v2.mountPoint, ownPath, own: dirUnder(v2, ownPath) };
  }
  let mode: CgroupMode;
  if (v1.length === 0) mode = unified ? 'unified' : 'none';
  else mode = unified ? 'hybrid' : 'legacy';
  // A cgroup2 mount beside v1 ones is the unified mode only when it is /sys/fs/cgroup itself
  // (a host that also mounts v1 hierarchies elsewhere, for an old tool, is still unified).
  if (unified && unified.mountPoint === '/sys/fs/cgroup') mode = 'unified';
  return { mode, unified, v1: mode === 'unified' ? [] : v1 };
}

let cached: { pid: number; layout: CgroupLayout } | undefined;

/** This host's layout, with "husk's own" cgroups those of the caller (call.ts: the process
 * itself, or the front door that a warm server runs the call for); read once per caller. */
export function readLayout(): CgroupLayout {
  if (cached?.pid !== call.pid) {
    const own = call.pid === process.pid ? '/proc/self/cgroup' : `/proc/${call.pid}/cgroup`;
    // (A door's one-shot child is in its door's cgroup: the same file, whichever is read.)
    cached = { pid: call.pid, layout: parseLayout(fs.readFileSync('/proc/self/mountinfo', 'utf8'), fs.readFileSync(own, 'utf8')) };
  }
  return cached.layout;
}

/** "hybrid: cgroup v1 controllers, cgroup2 at /sys/fs/cgroup/unified" — for messages. */
export function describeLayout(layout: CgroupLayout): string {
  switch (layout.mode) {
    case 'unified':
      return `cgroup v2 at ${layout.unified!.mountPoint}`;
    case 'hybrid':
      return `hybrid: cgroup v1 controllers, and cgroup v2 at ${layout.unified!.mountPoint}`;
    case 'legacy':
      return 'cgroup v1 only';
    default:
      return 'no cgroup filesystem mounted';
  }
}
