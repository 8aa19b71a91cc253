// The cgroup v2 manager: one directory in the unified hierarchy, the controllers enabled in
// every parent's cgroup.subtree_control on the way down (as runc's CreateCgroupPath does),
// one file per controller (memory.ts, cpu.ts, ...), cgroup.freeze and cgroup.kill.
import * as path from 'path';
import { HuskError } from '../../errors';
import { CgroupDir, errnoOf, type CgroupFs } from '../fs';
import { BaseManager, SIGKILL, type ApplyOptions, type CgroupManager, type ManagerOptions } from '../manager';
import { refuse, type Resources } from '../resources';
import { emptyStats, type Stats } from '../stats';
import { sleepSync } from '../../host/sleep';
import * as cpu from './cpu';
import * as cpuset from './cpuset';
import * as devices from './devices';
import * as freezer from './freezer';
import * as hugetlb from './hugetlb';
import * as io from './io';
import * as memory from './memory';
import * as pids from './pids';
import * as rdma from './rdma';
import * as unified from './unified';

/**
 * Makes `dir` below the cgroup2 mount point, one level at a time; before each level, enables
 * `controllers` ('all': every one the parent offers) in the parent's cgroup.subtree_control.
 * A controller that cannot be enabled is not an error here: applying a resource that needs
 * it then fails naming the controller. Returns the directories it made, outermost first.
 */
export function makeCgroupDirs(fs: CgroupFs, mountPoint: string, dir: string, controllers: 'all' | string[], mkdir: (d: string) => boolean): string[] {
  const rel = path.posix.relative(mountPoint, dir);
  if (rel.startsWith('..') || path.posix.isAbsolute(rel)) throw new HuskError(`cgroup ${dir} is not under ${mountPoint}`);
  const made: string[] = [];
  let current = mountPoint;
  for (const part of rel.split('/').filter(Boolean)) {
    if (controllers === 'all' || controllers.length) enableControllers(fs, current, controllers);
    current = path.posix.join(current, part);
    if (mkdir(current)) made.push(current);
  }
  return made;
}

function enableControllers(fs: CgroupFs, dir: string, controllers: 'all' | string[]): void {
  const d = new CgroupDir(fs, dir, true);
  const available = (d.readOptional('cgroup.controllers') ?? '').split(/\s+/).filter(Boolean);
  const enabled = (d.readOptional('cgroup.subtree_control') ?? '').split(/\s+/).filter(Boolean);
  const wanted = (controllers === 'all' ? available : controllers.filter((c) => available.includes(c))).filter((c) => !enabled.includes(c));
  if (wanted.length === 0) return;
  try {
    d.write('cgroup.subtree_control', wanted.map((c) => `+${c}`).join(' '));
  } catch {
    // One by one, keeping those that work (a parent with processes in it refuses them all).
    for (const c of wanted) {
      try {
        d.write('cgroup.subtree_control', `+${c}`);
      } catch {
        // reported when a resource needs it
      }
    }
  }
}

export class V2Manager extends BaseManager implements CgroupManager {
  readonly version = 'v2' as const;
  private readonly dir: CgroupDir;

  constructor(
    private readonly mountPoint: string,
    paths: Record<string, string>,
    opts: ManagerOptions,
  ) {
    super(paths, opts);
    this.dir = new CgroupDir(opts.fs, paths[''], true);
  }

  check(r: Resources): void {
    memory.check(r.memory);
    cpu.check(r.cpu);
    io.check(r.blockIO);
    unified.check(r.unified);
    if (r.network && (r.network.classID !== undefined || (r.network.priorities ?? []).length)) {
      throw refuse('linux.resources.network', 'cgroup v2 has no net_cls or net_prio controller');
    }
  }

  create(_r: Resources): void {
    makeCgroupDirs(this.fs, this.mountPoint, this.dir.dir, 'all', (d) => this.mkdir(d));
  }

  apply(r: Resources, opts: ApplyOptions = {}): void {
    this.check(r);
    // runc's order: pids, memory, io, cpu, devices, cpuset, hugetlb, rdma, unified last.
    pids.apply(this.dir, r.pids);
    memory.apply(this.dir, r.memory);
    io.apply(this.dir, r.blockIO);
    cpu.apply(this.dir, r.cpu);
    if (!opts.update || r.devices) devices.apply(this.dir, r.devices, this.warn, this.bpf === undefined ? devices.bpfPrimitives() : this.bpf ?? undefined);
    cpuset.apply(this.dir, r.cpu);
    hugetlb.apply(this.dir, r.hugepageLimits);
    rdma.apply(this.dir, r.rdma);
    unified.apply(this.dir, r.unified);
  }

  join(pid: number): void {
    this.writeProcs(this.dir.dir, pid);
  }

  pids(): number[] {
    return this.procsUnder(this.dir.dir).sort((a, b) => a - b);
  }

  frozen(): boolean {
    return freezer.frozen(this.dir);
  }

  freeze(): void {
    freezer.freeze(this.dir);
  }

  thaw(): void {
    freezer.thaw(this.dir);
  }

  signalAll(signal: number): void {
    if (signal === SIGKILL && this.dir.has('cgroup.kill')) {
      this.dir.write('cgroup.kill', '1');
      return;
    }
    const wasFrozen = this.frozen();
    if (!wasFrozen) {
      try {
        this.freeze();
      } catch (err) {
        this.warn(`cannot freeze ${this.dir.dir} while signalling its processes: ${(err as Error).message}`);
      }
    }
    this.signalEach(this.pids(), signal);
    if (!wasFrozen) this.thaw();
  }

  destroy(timeoutMs = 10_000): void {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.fs.exists(this.dir.dir)) return;
      const left = this.pids();
      if (left.length === 0 && this.removeTree(this.dir.dir)) return;
      if (left.length) {
        // cgroup.kill (5.14) kills the whole subtree, frozen or not; else one by one.
        if (this.dir.has('cgroup.kill')) {
          try {
            this.dir.write('cgroup.kill', '1');
          } catch (err) {
            if (errnoOf((err as Error).cause) !== 'ENOENT') throw err;
          }
        } else {
          this.signalEach(left, SIGKILL);
          this.thaw();
        }
      }
      if (Date.now() > deadline) {
        throw new HuskError(`cannot remove the cgroup ${this.dir.dir}: ${left.length ? `processes ${left.join(', ')} are still in it after SIGKILL` : 'it stays busy'}`);
      }
      sleepSync(10);
    }
  }

  stats(): Stats {
    const s = emptyStats();
    cpu.stats(this.dir, s);
    memory.stats(this.dir, s);
    pids.stats(this.dir, s);
    io.stats(this.dir, s);
    hugetlb.stats(this.dir, s);
    return s;
  }

  oomKillCount(): bigint {
    return memory.oomKillCount(this.dir);
  }
}
