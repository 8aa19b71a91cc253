// The calls husk makes on systemd's manager (org.freedesktop.systemd1.Manager), through
// busctl(1): PID 1 on the system bus for root, the user's manager on the session bus for
// rootless husk (busctl --user).
//
// Why busctl and not an npm D-Bus client (dbus-next, @homebridge/dbus-native): the cgroup
// manager is synchronous, as every verb's steps are (create applies limits from the init's
// onInitPid callback while the init waits), and both clients are asynchronous only. busctl
// ships in the systemd package itself, so it is wherever a systemd manager is, and it marshals
// exactly what systemd expects; each call costs a process (a few milliseconds).
//
// Errors are one line: "<method> <unit>: <systemd's message>" (busctl prints "Call failed:
// ..." or "Failed to connect to bus: ...").
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { HuskError } from '../../errors';
import { trace } from '../../host/trace';
import { sleepSync } from '../../host/sleep';
import { busctlArguments, describeProperties, type UnitProperty } from './properties';
import { unitObjectPath } from './unit';

const DESTINATION = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
/** How long a job (start, stop) may take, as runc waits for it. */
const JOB_TIMEOUT_MS = 30_000;

/** A failed call, with the D-Bus error's message as busctl printed it. */
export class BusError extends HuskError {}

/** The seam the manager uses; a test double in the unit tests. */
export interface SystemdBus {
  readonly user: boolean;
  /** Manager.Version as a number (252 for "252.38-1~deb12u1"). */
  version(): number;
  /** Manager.ControlGroup: "" or "/" for PID 1, "/user.slice/user-1000.slice/user@1000.service" for a user's. */
  managerCgroup(): string;
  /** StartTransientUnit(name, "replace", properties) and waits until the unit is active. */
  startTransientUnit(unit: string, properties: UnitProperty[]): void;
  setUnitProperties(unit: string, properties: UnitProperty[]): void;
  /** StopUnit and waits until the unit is gone; ResetFailedUnit either way. A unit that is not loaded is not an error. */
  stopUnit(unit: string): void;
  /** Unit.ActiveState, or undefined when systemd has no such unit loaded. */
  activeState(unit: string): string | undefined;
}

/** sd_booted(3): systemd is the init when /run/systemd/system is a directory. */
export function systemdBooted(): boolean {
  return fs.statSync('/run/systemd/system', { throwIfNoEntry: false })?.isDirectory() ?? false;
}

export class Busctl implements SystemdBus {
  private cachedVersion?: number;

  constructor(readonly user: boolean) {}

  /** Runs busctl; returns its parsed --json=short output, or throws its error line. */
  private busctl(what: string, args: string[]): { type: string; data: unknown } | undefined {
    const argv = [...(this.user ? ['--user'] : ['--system']), '--json=short', '--timeout=30', ...args];
    const r = spawnSync('busctl', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: JOB_TIMEOUT_MS + 5_000 });
    trace('husk', `busctl ${argv.join(' ')} = ${r.status}`, { kind: 'busctl', args: argv, status: r.status });
    if (r.error) {
      const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
      throw new BusError(`${what}: ${missing ? 'busctl is not installed (it comes with systemd)' : r.error.message}`);
    }
    if (r.status !== 0) {
      const line = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
      throw new BusError(`${what}: ${line.replace(/^Call failed: /, '').replace(/\.$/, '') || `busctl exited with status ${r.status}`}`);
    }
    const out = r.stdout.trim();
    return out ? JSON.parse(out) : undefined;
  }

  private callManager(what: string, method: string, signature: string, args: string[]): unknown {
    return this.busctl(what, ['call', DESTINATION, MANAGER_PATH, MANAGER, method, signature, ...args])?.data;
  }

  private managerProperty(name: string): unknown {
    return this.busctl(`${this.busName()}: read the manager's ${name}`, ['get-property', DESTINATION, MANAGER_PATH, MANAGER, name])?.data;
  }

  private busName(): string {
    return this.user ? 'the user\'s systemd (session bus)' : 'systemd (system bus)';
  }

  version(): number {
    if (this.cachedVersion === undefined) {
      const text = String(this.managerProperty('Version'));
      const n = parseInt(text.replace(/^["v]+/, ''), 10);
      this.cachedVersion = Number.isFinite(n) ? n : 0;
    }
    return this.cachedVersion;
  }

  managerCgroup(): string {
    return String(this.managerProperty('ControlGroup') ?? '');
  }

  startTransientUnit(unit: string, properties: UnitProperty[]): void {
    trace('husk', `StartTransientUnit ${unit} ${describeProperties(properties)}`, { kind: 'systemdStart', unit });
    const start = () => this.callManager(`StartTransientUnit ${unit}`, 'StartTransientUnit', 'ssa(sv)a(sa(sv))', [unit, 'replace', ...busctlArguments(properties), '0']);
    try {
      start();
    } catch (err) {
      // A unit of that name may be a failed leftover: reset it and try once more, as runc does.
      if (!/already exists/i.test((err as Error).message)) throw err;
      this.resetFailed(unit);
      start();
    }
    // The job's end, seen as the unit's state (runc waits for the JobRemoved signal).
    // A scope whose processes all exited at once goes inactive (and away) instead.
    const started = Date.now();
    const deadline = started + JOB_TIMEOUT_MS;
    for (;;) {
      const state = this.activeState(unit);
      if (state === 'active') return;
      if (state === 'failed' || ((state === 'inactive' || state === undefined) && Date.now() > started + 2_000)) {
        this.resetFailed(unit);
        throw new BusError(`StartTransientUnit ${unit}: the unit is ${state ?? 'gone'} instead of active`);
      }
      if (Date.now() > deadline) throw new BusError(`StartTransientUnit ${unit}: not active after ${JOB_TIMEOUT_MS / 1000} s (${state ?? 'not loaded'})`);
      sleepSync(5);
    }
  }

  setUnitProperties(unit: string, properties: UnitProperty[]): void {
    if (properties.length === 0) return;
    trace('husk', `SetUnitProperties ${unit} ${describeProperties(properties)}`, { kind: 'systemdSet', unit });
    this.callManager(`SetUnitProperties ${unit}`, 'SetUnitProperties', 'sba(sv)', [unit, 'true', ...busctlArguments(properties)]);
  }

  stopUnit(unit: string): void {
    try {
      this.callManager(`StopUnit ${unit}`, 'StopUnit', 'ss', [unit, 'replace']);
    } catch (err) {
      if (!/not loaded|no such unit/i.test((err as Error).message)) throw err;
    }
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    for (;;) {
      const state = this.activeState(unit);
      if (state === undefined || state === 'inactive') break;
      if (state === 'failed') {
        this.resetFailed(unit);
        break;
      }
      if (Date.now() > deadline) throw new BusError(`StopUnit ${unit}: still ${state} after ${JOB_TIMEOUT_MS / 1000} s`);
      sleepSync(5);
    }
    this.resetFailed(unit);
  }

  private resetFailed(unit: string): void {
    try {
      this.callManager(`ResetFailedUnit ${unit}`, 'ResetFailedUnit', 's', [unit]);
    } catch {
      // not failed, or gone: either way nothing is left
    }
  }

  activeState(unit: string): string | undefined {
    // GetUnit, not LoadUnit: only a unit that is loaded (a transient one that still exists).
    try {
      this.callManager(`GetUnit ${unit}`, 'GetUnit', 's', [unit]);
    } catch (err) {
      if (/not loaded|no such unit/i.test((err as Error).message)) return undefined;
      throw err;
    }
    const r = this.busctl(`read ${unit}'s state`, ['get-property', DESTINATION, unitObjectPath(unit), 'org.freedesktop.systemd1.Unit', 'ActiveState']);
    return String(r?.data ?? '');
  }
}
