// A fake cgroup filesystem for the cgroup unit tests: real directories and files under a
// temporary directory, where mkdir of a cgroup populates the files the kernel would (for
// cgroup2, those of the controllers enabled in the parent's cgroup.subtree_control; for a v1
// hierarchy, those of its controllers), and a few writes act as the kernel's do
// (cgroup.subtree_control, cgroup.freeze, freezer.state, cgroup.kill). Every write is logged.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { realFs, type CgroupFs } from '../../src/cgroups/fs';

import { parseLayout, type CgroupLayout } from '../../src/host/cgroupLayout';

const V2_FILES: Record<string, Record<string, string>> = {
  '': {
    'cgroup.procs': '', 'cgroup.controllers': '', 'cgroup.subtree_control': '', 'cgroup.events': 'populated 0\nfrozen 0\n',
    'cgroup.freeze': '0', 'cgroup.kill': '', 'cgroup.type': 'domain\n', 'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
  },
  memory: {
    'memory.max': 'max\n', 'memory.low': '0\n', 'memory.high': 'max\n', 'memory.swap.max': 'max\n', 'memory.current': '0\n', 'memory.swap.current': '0\n',
    'memory.peak': '0\n', 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n', 'memory.stat': 'anon 0\nfile 0\n',
  },
  cpu: { 'cpu.max': 'max 100000\n', 'cpu.weight': '100\n', 'cpu.idle': '0\n', 'cpu.max.burst': '0\n' },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n', 'cpuset.cpus.effective': '0-1\n', 'cpuset.mems.effective': '0\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
  io: { 'io.max': '', 'io.weight': 'default 100\n', 'io.stat': '' },
  hugetlb: { 'hugetlb.2MB.max': 'max\n', 'hugetlb.2MB.current': '0\n', 'hugetlb.2MB.events': 'max 0\n', 'hugetlb.1GB.max': 'max\n', 'hugetlb.1GB.current': '0\n', 'hugetlb.1GB.events': 'max 0\n' },
  rdma: { 'rdma.max': '' },
};

const V1_FILES: Record<string, Record<string, string>> = {
  '': { 'cgroup.procs': '', tasks: '', notify_on_release: '0\n', 'cgroup.clone_children': '0\n' },
  memory: {
    'memory.limit_in_bytes': '9223372036854771712\n', 'memory.memsw.limit_in_bytes': '9223372036854771712\n', 'memory.soft_limit_in_bytes': '9223372036854771712\n',
    'memory.kmem.limit_in_bytes': '9223372036854771712\n', 'memory.kmem.tcp.limit_in_bytes': '9223372036854771712\n', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    'memory.swappiness': '60\n', 'memory.use_hierarchy': '1\n', 'memory.usage_in_bytes': '0\n', 'memory.max_usage_in_bytes': '0\n', 'memory.failcnt': '0\n',
    'memory.memsw.usage_in_bytes': '0\n', 'memory.memsw.max_usage_in_bytes': '0\n', 'memory.memsw.failcnt': '0\n', 'memory.stat': 'cache 0\nrss 0\n',
  },
  cpu: {
    'cpu.shares': '1024\n', 'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n', 'cpu.cfs_burst_us': '0\n', 'cpu.rt_period_us': '1000000\n',
    'cpu.rt_runtime_us': '0\n', 'cpu.idle': '0\n', 'cpu.stat': 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\n',
  },
  cpuacct: { 'cpuacct.usage': '0\n', 'cpuacct.usage_percpu': '0 0 \n', 'cpuacct.usage_all': 'cpu user system\n0 0 0\n1 0 0\n', 'cpuacct.stat': 'user 0\nsystem 0\n' },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm\n' },
  freezer: { 'freezer.state': 'THAWED\n' },
  blkio: {
    'blkio.bfq.weight': '100\n', 'blkio.bfq.weight_device': '', 'blkio.throttle.read_bps_device': '', 'blkio.throttle.write_bps_device': '',
    'blkio.throttle.read_iops_device': '', 'blkio.throttle.write_iops_device': '', 'blkio.bfq.io_service_bytes_recursive': 'Total 0\n', 'blkio.bfq.io_serviced_recursive': 'Total 0\n',
  },
  'name=systemd': {},
};

export interface FakeHierarchy {
  mountPoint: string;
  version: 'v1' | 'v2';
  /** v1: its controllers; v2: the controllers the root offers. */
  controllers: string[];
}

export class FakeCgroupFs implements CgroupFs {
  /** Every successful write, in order: [path relative to the temp root, data]. */
  readonly writes: [string, string][] = [];
  /** Make the next write to a file (relative path) fail with this errno code. */
  readonly failures = new Map<string, string>();
  readonly signals: [number, number][] = [];

  constructor(
    readonly root: string,
    readonly hierarchies: FakeHierarchy[],
  ) {
    for (const h of hierarchies) {
      const dir = this.abs(h.mountPoint);
      fs.mkdirSync(dir, { recursive: true });
      this.populate(h, dir, true);
    }
  }

  /** A host path (/sys/fs/cgroup/x) inside the temporary root. */
  abs(p: string): string {
    return p.startsWith(this.root) ? p : path.join(this.root, p);
  }

  rel(p: string): string {
    return p.startsWith(this.root) ? p.slice(this.root.length) : p;
  }

  private hierarchyOf(p: string): FakeHierarchy | undefined {
    const r = this.rel(p);
    return [...this.hierarchies].sort((a, b) => b.mountPoint.length - a.mountPoint.length).find((h) => r === h.mountPoint || r.startsWith(h.mountPoint + '/'));
  }

  private populate(h: FakeHierarchy, dir: string, isRoot: boolean) {
    const put = (files: Record<string, string>) => {
      for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
    };
    if (h.version === 'v2') {
      put(V2_FILES['']);
      const offered = isRoot ? h.controllers : this.read(path.join(path.dirname(dir), 'cgroup.subtree_control')).split(/\s+/).filter(Boolean);
      fs.writeFileSync(path.join(dir, 'cgroup.controllers'), offered.join(' ') + '\n');
      for (const c of offered) put(V2_FILES[c] ?? {});
    } else {
      put(V1_FILES['']);
      for (const c of h.controllers) put(V1_FILES[c] ?? {});
      if (isRoot && h.controllers.includes('cpuset')) put({ 'cpuset.cpus': '0-1\n', 'cpuset.mems': '0\n' });
    }
  }

  read(file: string): string {
    return realFs.read(this.abs(file));
  }

  write(file: string, data: string): void {
    const p = this.abs(file);
    const r = this.rel(p);
    const failure = this.failures.get(r);
    if (failure) {
      this.failures.delete(r);
      throw Object.assign(new Error(`${failure}: fake failure, write '${r}'`), { code: failure, syscall: 'write' });
    }
    // A file the "kernel" did not make: ENOENT, as O_WRONLY without O_CREAT gives.
    fs.closeSync(fs.openSync(p, fs.constants.O_WRONLY));
    this.writes.push([r, data]);
    const base = path.basename(p);
    const dir = path.dirname(p);
    if (base === 'cgroup.subtree_control') {
      const now = new Set(fs.readFileSync(p, 'utf8').split(/\s+/).filter(Boolean));
      for (const word of data.split(/\s+/).filter(Boolean)) {
        if (word[0] === '+') now.add(word.slice(1));
        else if (word[0] === '-') now.delete(word.slice(1));
      }
      fs.writeFileSync(p, [...now].join(' ') + '\n');
    } else if (base === 'cgroup.freeze') {
      fs.writeFileSync(p, data);
      fs.writeFileSync(path.join(dir, 'cgroup.events'), `populated 0\nfrozen ${data.trim()}\n`);
    } else if (base === 'cgroup.kill') {
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), '');
    } else if (base === 'cgroup.procs') {
      fs.appendFileSync(p, `${data}\n`);
    } else if (['io.max', 'devices.allow', 'devices.deny', 'io.bfq.weight', 'blkio.bfq.weight_device', 'net_prio.ifpriomap', 'rdma.max'].includes(base) || base.startsWith('blkio.throttle.')) {
      fs.appendFileSync(p, `${data}\n`);
    } else {
      fs.writeFileSync(p, data);
    }
  }

  exists(p: string): boolean {
    return fs.existsSync(this.abs(p));
  }

  mkdir(dir: string): boolean {
    const p = this.abs(dir);
    if (fs.existsSync(p)) return false;
    fs.mkdirSync(p);
    const h = this.hierarchyOf(p);
    if (h) this.populate(h, p, false);
    return true;
  }

  rmdir(dir: string): void {
    const p = this.abs(dir);
    if (!fs.existsSync(p)) throw Object.assign(new Error(`ENOENT: no such file or directory, rmdir '${dir}'`), { code: 'ENOENT', syscall: 'rmdir' });
    if (this.read(path.join(p, 'cgroup.procs')).trim()) throw Object.assign(new Error(`EBUSY: resource busy or locked, rmdir '${dir}'`), { code: 'EBUSY', syscall: 'rmdir' });
    if (fs.readdirSync(p, { withFileTypes: true }).some((e) => e.isDirectory())) throw Object.assign(new Error(`EBUSY: rmdir '${dir}'`), { code: 'EBUSY', syscall: 'rmdir' });
    fs.rmSync(p, { recursive: true });
  }

  subdirs(dir: string): string[] {
    return realFs.subdirs(this.abs(dir));
  }

  /** The writes into one file (relative path), in order. */
  writesTo(file: string): string[] {
    return this.writes.filter(([f]) => f === file).map(([, d]) => d);
  }

  /** The files written below `dir`, with their data, in order. */
  writesUnder(dir: string): [string, string][] {
    return this.writes.filter(([f]) => f.startsWith(dir + '/')).map(([f, d]) => [f.slice(dir.length + 1), d]);
  }

  /** Puts a process into a fake cgroup (as if it had forked there). */
  addProcess(dir: string, pid: number): void {
    fs.appendFileSync(path.join(this.abs(dir), 'cgroup.procs'), `${pid}\n`);
  }
}

/** A temporary root, made and removed by the caller. */
export function tempRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'husk-cgroups-'));
}

/** This machine's kind of host: v1 hierarchies, and cgroup2 with only hugetlb at .../unified. */
export const HYBRID_MOUNTINFO = [
  '34 24 0:29 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '35 34 0:30 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '36 34 0:31 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
  '37 34 0:32 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '38 34 0:33 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 34 0:34 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices',
  '40 34 0:35 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
  '41 34 0:36 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio',
  '42 34 0:37 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '43 34 0:38 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '44 34 0:39 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');

export const HYBRID_PROC_CGROUP = [
  '9:name=systemd:/', '8:pids:/', '7:blkio:/', '6:freezer:/', '5:devices:/', '4:memory:/session/abc', '3:cpuset:/', '2:cpuacct:/', '1:cpu:/', '0::/',
].join('\n');

export const UNIFIED_MOUNTINFO = '30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';

/** A fake hybrid host like this machine, under a temporary root. */
export function fakeHybrid(root: string): { fs: FakeCgroupFs; layout: CgroupLayout } {
  const base = parseLayout(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
  const hierarchies: FakeHierarchy[] = base.v1.map((h) => ({ mountPoint: h.mountPoint, version: 'v1' as const, controllers: h.controllers }));
  hierarchies.push({ mountPoint: '/sys/fs/cgroup/unified', version: 'v2', controllers: ['hugetlb'] });
  const cfs = new FakeCgroupFs(root, hierarchies);
  cfs.mkdir('/sys/fs/cgroup/memory/session');
  cfs.mkdir('/sys/fs/cgroup/memory/session/abc');
  return { fs: cfs, layout: rooted(base, root) };
}

/** A fake pure cgroup v2 host (husk in /user.slice/husk.scope) under a temporary root. */
export function fakeUnified(root: string, controllers = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma']): { fs: FakeCgroupFs; layout: CgroupLayout } {
  const base = parseLayout(UNIFIED_MOUNTINFO, '0::/user.slice/husk.scope\n');
  const cfs = new FakeCgroupFs(root, [{ mountPoint: '/sys/fs/cgroup', version: 'v2', controllers }]);
  // As systemd leaves it: every controller enabled at the root, none yet in user.slice.
  fs.writeFileSync(cfs.abs('/sys/fs/cgroup/cgroup.subtree_control'), controllers.join(' ') + '\n');
  cfs.mkdir('/sys/fs/cgroup/user.slice');
  cfs.mkdir('/sys/fs/cgroup/user.slice/husk.scope');
  cfs.addProcess('/sys/fs/cgroup/user.slice/husk.scope', 4242);
  return { fs: cfs, layout: rooted(base, root) };
}

/** The layout with every mount point moved under the temporary root. */
function rooted(layout: CgroupLayout, root: string): CgroupLayout {
  const move = <T extends { mountPoint: string; own: string }>(h: T): T => ({ ...h, mountPoint: root + h.mountPoint, own: root + h.own });
  return { mode: layout.mode, unified: layout.unified && move(layout.unified), v1: layout.v1.map(move) };
}
