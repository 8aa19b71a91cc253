// The cgroup v1 manager (hybrid and legacy hosts): one directory per mounted hierarchy
// (co-mounted controllers share one), plus, on a hybrid host, one in the cgroup2 hierarchy
// that the process joins too and where hugetlb lives when v1 has no hugetlb hierarchy.
// Resources go to their controller's files (memory.ts, cpu.ts, ...); a resource whose
// controller is not mounted, or that only cgroup v2 has, is refused by name.
import { HuskError } from '../../errors';
import { CgroupDir } from '../fs';
import type { CgroupLayout } from '../../host/cgroupLayout';
import { describeLayout } from '../../host/cgroupLayout';
import { BaseManager, SIGKILL, type ApplyOptions, type CgroupManager, type ManagerOptions } from '../manager';
import { isSet, refuse, type Resources } from '../resources';
import { emptyStats, type Stats } from '../stats';
import { sleepSync } from '../../host/sleep';
import * as hugetlbV2 from '../v2/hugetlb';
import { makeCgroupDirs } from '../v2/manager';
import * as rdma from '../v2/rdma';
import * as blkio from './blkio';
import * as cpu from './cpu';
import * as cpuset from './cpuset';
import * as devices from './devices';
import * as freezer from './freezer';
import * as hugetlb from './hugetlb';
import * as memory from './memory';
import * as net from './net';
import * as pids from './pids';

/** Which controllers each resource section needs, for the "not mounted" refusals. */
function needs(r: Resources): [string, string][] {
  const out: [string, string][] = [];
  const m = r.memory;
  if (m && Object.values(m).some((v) => v !== undefined && v !== null)) out.push(['linux.resources.memory', 'memory']);
  const c = r.cpu;
  if (c && [c.shares, c.quota, c.period, c.burst, c.realtimePeriod, c.realtimeRuntime, c.idle].some((v) => v !== undefined && v !== null)) out.push(['linux.resources.cpu', 'cpu']);
  if (c?.cpus || c?.mems) out.push([c.cpus ? 'linux.resources.cpu.cpus' : 'linux.resources.cpu.mems', 'cpuset']);
  if (r.pids && isSet(r.pids.limit)) out.push(['linux.resources.pids', 'pids']);
  if (r.blockIO && Object.values(r.blockIO).some((v) => (Array.isArray(v) ? v.length : v !== undefined && v !== null))) out.push(['linux.resources.blockIO', 'blkio']);
  if (r.network?.classID !== undefined) out.push(['linux.resources.network.classID', 'net_cls']);
  if ((r.network?.priorities ?? []).length) out.push(['linux.resources.network.priorities', 'net_prio']);
  if (r.rdma && Object.keys(r.rdma).length) out.push(['linux.resources.rdma', 'rdma']);
  return out;
}

export class V1Manager extends BaseManager implements CgroupManager {
  readonly version = 'v1' as const;

  constructor(
    private readonly layout: CgroupLayout,
    paths: Record<string, string>,
    opts: ManagerOptions,
  ) {
    super(paths, opts);
  }

  private dir(controller: string): CgroupDir | undefined {
    const p = this.paths[controller];
    return p === undefined ? undefined : new CgroupDir(this.fs, p, controller === '');
  }

  /** Where hugetlb limits go: the v1 hierarchy, or the cgroup2 one of a hybrid host. */
  private hugetlbDir(): CgroupDir | undefined {
    return this.dir('hugetlb') ?? (this.layout.mode === 'hybrid' ? this.dir('') : undefined);
  }

  check(r: Resources): void {
    if (r.unified && Object.keys(r.unified).length) {
      throw refuse('linux.resources.unified', `cgroup v2 files cannot be set on this host, whose resource controllers are cgroup v1 (${describeLayout(this.layout)})`);
    }
    for (const [what, controller] of needs(r)) {
      if (this.paths[controller] === undefined) throw refuse(what, `the ${controller} cgroup controller is not mounted on this host (${describeLayout(this.layout)})`);
    }
    if ((r.hugepageLimits ?? []).length && !this.paths.hugetlb) {
      const unified = this.layout.mode === 'hybrid' ? this.layout.unified : undefined;
      const available = unified ? (this.fs.exists(`${unified.mountPoint}/cgroup.controllers`) ? this.fs.read(`${unified.mountPoint}/cgroup.controllers`) : '') : '';
      if (!available.split(/\s+/).includes('hugetlb')) {
        throw refuse('linux.resources.hugepageLimits', `the hugetlb cgroup controller is neither mounted as cgroup v1 nor available in cgroup v2 on this host (${describeLayout(this.layout)})`);
      }
    }
    if (this.paths.devices === undefined) {
      throw refuse('linux.resources.devices', `the devices cgroup controller is not mounted, so husk cannot restrict the container's devices (${describeLayout(this.layout)})`);
    }
  }

  create(r: Resources): void {
    const cpusetDir = this.paths.cpuset;
    for (const h of this.layout.v1) {
      const dir = this.paths[h.controllers[0]];
      if (dir === undefined) continue;
      if (dir === cpusetDir) {
        // Filled from its parents before anything may join it.
        cpuset.create(this.fs, h.mountPoint, dir, r.cpu, (d) => this.mkdir(d));
      } else {
        // mkdir -p below the mount point (no controllers to enable in v1).
        makeCgroupDirs(this.fs, h.mountPoint, dir, [], (d) => this.mkdir(d));
      }
    }
    const u = this.layout.unified;
    if (this.paths[''] !== undefined && u) {
      // hugetlb lives here only when v1 has none; enable it on the way down then.
      const wanted = !this.paths.hugetlb && (r.hugepageLimits ?? []).length ? ['hugetlb'] : [];
      makeCgroupDirs(this.fs, u.mountPoint, this.paths[''], wanted, (d) => this.mkdir(d));
    }
  }

  apply(r: Resources, opts: ApplyOptions = {}): void {
    this.check(r);
    const at = (c: string) => this.dir(c);
    // runc's subsystem order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio, rdma.
    if (at('cpuset')) cpuset.apply(at('cpuset')!, r.cpu);
    if (!opts.update || r.devices) devices.apply(at('devices')!, r.devices);
    if (at('memory')) memory.apply(at('memory')!, r.memory);
    if (at('cpu')) cpu.apply(at('cpu')!, r.cpu);
    if (at('pids')) pids.apply(at('pids')!, r.pids);
    if (at('blkio')) blkio.apply(at('blkio')!, r.blockIO);
    if ((r.hugepageLimits ?? []).length) {
      const dir = this.hugetlbDir()!;
      if (this.paths.hugetlb) hugetlb.apply(dir, r.hugepageLimits);
      else hugetlbV2.apply(dir, r.hugepageLimits);
    }
    if (at('net_cls')) net.applyClassId(at('net_cls')!, r.network);
    if (at('net_prio')) net.applyPriorities(at('net_prio')!, r.network);
    if (at('rdma')) rdma.apply(at('rdma')!, r.rdma);
  }

  join(pid: number): void {
    for (const dir of this.dirs()) this.writeProcs(dir, pid);
  }

  pids(): number[] {
    const all = new Set<number>();
    for (const dir of this.dirs()) for (const pid of this.procsUnder(dir)) all.add(pid);
    return [...all].sort((a, b) => a - b);
  }

  private freezerDir(): CgroupDir {
    const d = this.dir('freezer');
    if (!d) throw new HuskError(`the freezer cgroup controller is not mounted on this host (${describeLayout(this.layout)})`);
    return d;
  }

  frozen(): boolean {
    const d = this.dir('freezer');
    return d ? freezer.state(d) === 'FROZEN' : false;
  }

  freeze(): void {
    freezer.freeze(this.freezerDir());
  }

  thaw(): void {
    freezer.thaw(this.freezerDir());
  }

  signalAll(signal: number): void {
    const canFreeze = !!this.dir('freezer');
    const wasFrozen = this.frozen();
    if (canFreeze && !wasFrozen) {
      try {
        this.freeze();
      } catch (err) {
        this.warn(`cannot freeze the container while signalling its processes: ${(err as Error).message}`);
      }
    }
    this.signalEach(this.pids(), signal);
    // A frozen v1 process only dies of SIGKILL once thawed.
    if (canFreeze && (!wasFrozen || signal === SIGKILL)) this.thaw();
  }

  destroy(timeoutMs = 10_000): void {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = this.pids();
      if (left.length === 0) {
        let removed = true;
        for (const dir of this.dirs()) removed = this.removeTree(dir) && removed;
        if (removed) return;
      } else {
        this.signalEach(left, SIGKILL);
        if (this.dir('freezer') && this.fs.exists(this.paths.freezer)) this.thaw();
      }
      if (Date.now() > deadline) {
        throw new HuskError(`cannot remove the cgroups of the container (${this.dirs().join(', ')}): ${left.length ? `processes ${left.join(', ')} are still in them after SIGKILL` : 'they stay busy'}`);
      }
      sleepSync(10);
    }
  }

  stats(): Stats {
    const s = emptyStats();
    const at = (c: string) => this.dir(c);
    if (at('cpu')) cpu.stats(at('cpu')!, s);
    if (at('cpuacct')) cpu.cpuacctStats(at('cpuacct')!, s);
    if (at('cpuset')) cpuset.stats(at('cpuset')!, s);
    if (at('memory')) memory.stats(at('memory')!, s);
    if (at('pids')) pids.stats(at('pids')!, s);
    if (at('blkio')) blkio.stats(at('blkio')!, s);
    if (at('hugetlb')) hugetlb.stats(at('hugetlb')!, s);
    else if (this.layout.mode === 'hybrid' && at('')) hugetlbV2.stats(at('')!, s);
    return s;
  }

  oomKillCount(): bigint {
    const d = this.dir('memory');
    return d ? memory.oomKillCount(d) : 0n;
  }
}

