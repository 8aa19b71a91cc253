// The systemd cgroup driver (--systemd-cgroup): systemd owns the container's cgroup as a
// transient unit, and husk works inside it, as runc's systemd driver does
// (libcontainer/cgroups/systemd):
//
//   create        before the init exists: systemd must be running and answer on the bus; the
//                 limits are converted (a bad value fails here, before anything is made)
//   join (first)  StartTransientUnit "prefix-name.scope" with Slice=, Delegate=yes, the init's
//                 pid, the accounting switches and the limits as properties; then the same
//                 limits (and those systemd has no property for) go to the delegated cgroup's
//                 files, as husk's v2 (or v1) manager writes them. The init is still waiting
//                 for its first step, so it never runs unlimited.
//   join (later)  exec: cgroup.procs, as runc does
//   apply         update: SetUnitProperties (runtime), then the files
//   destroy       kill what is left and remove the directories (the v2/v1 manager), then
//                 StopUnit and ResetFailedUnit: no unit, no cgroup
//   everything else (freeze, kill --all, stats, events) is the v2/v1 manager on the unit's cgroup
import { HuskError, reason } from '../../errors';
import type { ApplyOptions, CgroupManager } from '../manager';
import type { Resources } from '../resources';
import type { Stats } from '../stats';
import { BusError, type SystemdBus } from './dbus';
import { describeProperties, resourceProperties, type UnitProperty } from './properties';
import type { SystemdUnit } from './unit';

/** A property systemd did not know, from its error message. */
function unknownProperty(err: unknown): string | undefined {
  return /Cannot set property (\w+), or unknown property/.exec((err as Error).message)?.[1];
}

/** The properties of every unit husk starts, before the limits (runc's, in its order). */
function unitProperties(unit: SystemdUnit, pid: number, id: string): UnitProperty[] {
  const scope = !unit.name.endsWith('.slice');
  return [
    { name: 'Description', signature: 's', value: `husk container ${id}` },
    // A slice unit is placed by Wants= on its parent; a scope by Slice=.
    scope ? { name: 'Slice', signature: 's', value: unit.slice } : { name: 'Wants', signature: 'as', value: [unit.slice] },
    { name: 'PIDs', signature: 'au', value: [pid] },
    ...(scope ? [{ name: 'Delegate', signature: 'b', value: true } as UnitProperty] : []),
    { name: 'MemoryAccounting', signature: 'b', value: true },
    { name: 'CPUAccounting', signature: 'b', value: true },
    { name: 'IOAccounting', signature: 'b', value: true },
    { name: 'TasksAccounting', signature: 'b', value: true },
    { name: 'DefaultDependencies', signature: 'b', value: false },
  ];
}

export class SystemdManager implements CgroupManager {
  readonly version: 'v1' | 'v2';
  readonly paths: Record<string, string>;
  private pending: Resources = {};
  private started: boolean;

  constructor(
    readonly systemdUnit: SystemdUnit,
    /** The v2 or v1 manager of the unit's cgroup directories. */
    private readonly inner: CgroupManager,
    private readonly bus: SystemdBus,
    private readonly o: { id: string; started: boolean; warn?: (msg: string) => void },
  ) {
    this.version = inner.version;
    this.paths = inner.paths;
    this.started = o.started;
  }

  private properties(r: Resources, opts: ApplyOptions = {}): UnitProperty[] {
    return resourceProperties(r, { cgroup: this.version, systemdVersion: this.bus.version(), update: opts.update, warn: this.o.warn });
  }

  /**
   * Calls `call` with the properties; a resource property this systemd does not know is left
   * out with a warning and the call made again (its limit still goes to the cgroup's file).
   * Any other refusal is the error.
   */
  private withProperties(properties: UnitProperty[], fixed: number, call: (p: UnitProperty[]) => void): void {
    let props = properties;
    for (;;) {
      try {
        call(props);
        return;
      } catch (err) {
        const name = unknownProperty(err);
        const index = name === undefined ? -1 : props.findIndex((p, i) => i >= fixed && p.name === name);
        if (index < 0) throw err;
        this.o.warn?.(`systemd ${this.bus.version()} has no unit property ${name}: the limit is written to the cgroup's files only`);
        props = [...props.slice(0, fixed), ...props.slice(fixed).filter((p) => p.name !== name)];
      }
    }
  }

  check(r: Resources): void {
    this.inner.check(r);
  }

  create(r: Resources): void {
    // Asks the bus now, so that a host without systemd, or a bus that refuses, fails before
    // the init exists, leaving nothing.
    try {
      this.bus.version();
    } catch (err) {
      if (err instanceof BusError) throw new HuskError(`--systemd-cgroup: ${reason(err)}`, { cause: err });
      throw err;
    }
    this.properties(r);
  }

  apply(r: Resources, opts: ApplyOptions = {}): void {
    if (!this.started) {
      // Before the init exists there is no unit yet: join starts it with these.
      this.check(r);
      this.pending = r;
      this.properties(r);
      return;
    }
    const properties = this.properties(r, opts);
    this.withProperties(properties, 0, (p) => this.bus.setUnitProperties(this.systemdUnit.name, p));
    this.inner.apply(r, opts);
  }

  join(pid: number): void {
    if (this.started) {
      this.inner.join(pid);
      return;
    }
    const unit = this.systemdUnit.name;
    const base = unitProperties(this.systemdUnit, pid, this.o.id);
    const properties = [...base, ...this.properties(this.pending)];
    try {
      this.withProperties(properties, base.length, (p) => this.bus.startTransientUnit(unit, p));
    } catch (err) {
      if (err instanceof BusError) throw new HuskError(`--systemd-cgroup: cannot start the unit ${unit} in ${this.systemdUnit.slice}: ${reason(err)}`, { cause: err });
      throw err;
    }
    this.started = true;
    // What systemd has no property for, and the files runc writes after it (fs2.Set).
    this.inner.create(this.pending);
    this.inner.apply(this.pending);
  }

  pids(): number[] {
    return this.inner.pids();
  }

  frozen(): boolean {
    return this.inner.frozen();
  }

  freeze(): void {
    this.inner.freeze();
  }

  thaw(): void {
    this.inner.thaw();
  }

  signalAll(signal: number): void {
    this.inner.signalAll(signal);
  }

  destroy(timeoutMs?: number): void {
    // Killed and emptied by husk first: stopping a scope that still has processes would have
    // systemd send SIGTERM and wait out TimeoutStopSec before its SIGKILL.
    let first: unknown;
    try {
      this.inner.destroy(timeoutMs);
    } catch (err) {
      first = err;
    }
    try {
      this.bus.stopUnit(this.systemdUnit.name);
    } catch (err) {
      first ??= new HuskError(`--systemd-cgroup: cannot stop the unit ${this.systemdUnit.name}: ${reason(err)}`, { cause: err });
    }
    if (first) throw first;
  }

  stats(): Stats {
    return this.inner.stats();
  }

  oomKillCount(): bigint {
    return this.inner.oomKillCount();
  }

  exists(): boolean {
    return this.inner.exists();
  }

  /** For messages and traces: the properties `r` becomes. */
  describe(r: Resources): string {
    return describeProperties(this.properties(r));
  }
}
