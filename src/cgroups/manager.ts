// What the lifecycle asks of a container's cgroup, whatever the layout: the v2 manager (one
// directory in the unified hierarchy) and the v1 manager (one directory per hierarchy, plus
// the cgroup2 one on hybrid hosts) both implement it. This file holds what they share:
// joining, listing processes, emptying and removing directories.
import { HuskError, reason } from '../errors';
import { trace } from '../host/trace';
import type { CgroupFs } from './fs';
import { CgroupDir, errnoOf } from './fs';
import { distinctDirs } from './paths';
import type { Resources } from './resources';
import type { Stats } from './stats';
import type { BpfPrimitives } from './v2/devices';
import type { SystemdUnit } from './systemd/unit';
import { sleepSync } from '../host/sleep';

export interface ManagerOptions {
  fs: CgroupFs;
  /** Where warnings go (log.warn in the verbs). */
  warn?: (msg: string) => void;
  /** kill(2); a test double in unit tests. */
  signal?: (pid: number, signal: number) => void;
  /** The addon's bpf(2) calls for cgroup v2 device programs; null: none (unit tests). */
  bpf?: BpfPrimitives | null;
}

export interface ApplyOptions {
  /** `update`: only the sections given are applied, and the device rules only if given. */
  update?: boolean;
}

export interface CgroupManager {
  /** 'v2': one unified directory; 'v1': v1 hierarchies (and the hybrid cgroup2 one). */
  readonly version: 'v1' | 'v2';
  /** Controller ("" for cgroup2) -> directory; what the container record keeps. */
  readonly paths: Record<string, string>;
  /** --systemd-cgroup: the unit that owns the cgroup (the record keeps it too). */
  readonly systemdUnit?: SystemdUnit;
  /** Throws, naming the field, for a resource this layout cannot apply (before anything is made). */
  check(r: Resources): void;
  /** Makes the directories (and enables what the parents must enable). */
  create(r: Resources): void;
  apply(r: Resources, opts?: ApplyOptions): void;
  /** Moves a process into every hierarchy's directory. */
  join(pid: number): void;
  /** Every process in the cgroup and its descendants, sorted. */
  pids(): number[];
  frozen(): boolean;
  freeze(): void;
  thaw(): void;
  /** kill --all: every process, without letting new ones escape (frozen while signalled). */
  signalAll(signal: number): void;
  /** Kills whatever is left, waits for it, and removes every directory. */
  destroy(timeoutMs?: number): void;
  stats(): Stats;
  oomKillCount(): bigint;
  /** True while the main directory exists. */
  exists(): boolean;
}

export const SIGKILL = 9;

export abstract class BaseManager {
  protected readonly fs: CgroupFs;
  protected readonly warn: (msg: string) => void;
  protected readonly sendSignal: (pid: number, signal: number) => void;
  protected readonly bpf?: BpfPrimitives | null;

  constructor(
    readonly paths: Record<string, string>,
    opts: ManagerOptions,
  ) {
    this.fs = opts.fs;
    this.warn = opts.warn ?? (() => undefined);
    this.sendSignal = opts.signal ?? ((pid, signal) => process.kill(pid, signal));
    this.bpf = opts.bpf;
  }

  protected dirs(): string[] {
    return distinctDirs(this.paths);
  }

  protected mkdir(dir: string): boolean {
    try {
      const made = this.fs.mkdir(dir);
      if (made) trace('husk', `mkdir ${dir} = 0`, { kind: 'cgroupMkdir', dir });
      return made;
    } catch (err) {
      throw new HuskError(`cannot create the cgroup ${dir}: ${reason(err)}`, { code: errnoOf(err), cause: err });
    }
  }

  /** Writes the pid into cgroup.procs, retrying EINVAL (a task still being created) as runc does. */
  protected writeProcs(dir: string, pid: number): void {
    const d = new CgroupDir(this.fs, dir);
    for (let attempt = 0; ; attempt++) {
      try {
        d.write('cgroup.procs', String(pid));
        return;
      } catch (err) {
        if (errnoOf(err) !== 'EINVAL' || attempt >= 4) throw new HuskError(`cannot move process ${pid} into the cgroup ${dir}: ${reason((err as Error).cause ?? err)}`, { code: errnoOf(err), cause: err });
        sleepSync(30);
      }
    }
  }

  /** The pids in `dir` and every cgroup below it. */
  protected procsUnder(dir: string): number[] {
    const out: number[] = [];
    const walk = (d: string) => {
      let text: string;
      try {
        text = this.fs.read(`${d}/cgroup.procs`);
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'ENOENT' || code === 'ENODEV') return;
        throw new HuskError(`read ${d}/cgroup.procs: ${reason(err)}`, { code, cause: err });
      }
      for (const line of text.split('\n')) if (line.trim()) out.push(Number(line));
      let subs: string[] = [];
      try {
        subs = this.fs.subdirs(d);
      } catch {
        // removed meanwhile
      }
      for (const s of subs) walk(`${d}/${s}`);
    };
    walk(dir);
    return out;
  }

  protected signalEach(pids: number[], signal: number): void {
    for (const pid of pids) {
      try {
        this.sendSignal(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
  }

  /** rmdir of `dir` and its sub-cgroups, deepest first. False while one is still busy. */
  protected removeTree(dir: string): boolean {
    if (!this.fs.exists(dir)) return true;
    let subs: string[] = [];
    try {
      subs = this.fs.subdirs(dir);
    } catch {
      // gone meanwhile
    }
    let done = true;
    for (const s of subs) done = this.removeTree(`${dir}/${s}`) && done;
    if (!done) return false;
    try {
      this.fs.rmdir(dir);
      trace('husk', `rmdir ${dir} = 0`, { kind: 'cgroupRmdir', dir });
      return true;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return true;
      if (code === 'EBUSY') return false;
      throw new HuskError(`cannot remove the cgroup ${dir}: ${reason(err)}`, { code, cause: err });
    }
  }

  exists(): boolean {
    return this.dirs().some((d) => this.fs.exists(d));
  }
}
