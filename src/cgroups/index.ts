// The container's cgroup, by its directories (controller -> path; "" is the cgroup2 one):
//
//   checkResourcesApplicable  before anything exists: what this host's layout cannot apply
//                             is refused (spec/validate.ts has checked the types already)
//   createCgroup              make the directories and apply linux.resources, before the
//                             init exists
//   managerFor                the manager of directories made earlier (join, freeze, stats,
//                             destroy)
//
// This package knows nothing of containers: runtime/cgroup.ts keeps the directories in the
// container's record, so later verbs never recompute them from a config that might now
// resolve differently.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import type { Resources, Spec } from '../spec/types';
import { realFs, type CgroupFs } from './fs';
import { readLayout, type CgroupLayout } from '../host/cgroupLayout';
import type { CgroupManager } from './manager';
import { cgroupDirs, distinctDirs, innerPath } from './paths';
import { V1Manager } from './v1/manager';
import { V2Manager } from './v2/manager';
import type { BpfPrimitives } from './v2/devices';
import { Busctl, systemdBooted, type SystemdBus } from './systemd/dbus';
import { SystemdManager } from './systemd/manager';
import { unitCgroup, unitFor, type SystemdUnit } from './systemd/unit';

export type { CgroupManager, SystemdUnit };

export interface CgroupOptions {
  /** --systemd-cgroup */
  systemd?: boolean;
  warn?: (msg: string) => void;
  /** The seams: the host's layout and filesystem (tests pass a fake hierarchy). */
  layout?: CgroupLayout;
  fs?: CgroupFs;
  signal?: (pid: number, signal: number) => void;
  bpf?: BpfPrimitives | null;
  /** The systemd manager's bus (tests pass a double). */
  bus?: SystemdBus;
}

/** The manager for a set of directories on this host's layout. */
export function managerFor(paths: Record<string, string>, opts: CgroupOptions = {}): CgroupManager {
  const layout = opts.layout ?? readLayout();
  const mopts = { fs: opts.fs ?? realFs, warn: opts.warn, signal: opts.signal, bpf: opts.bpf };
  const keys = Object.keys(paths);
  if (layout.mode === 'unified' && keys.length === 1 && keys[0] === '') return new V2Manager(layout.unified!.mountPoint, paths, mopts);
  return new V1Manager(layout, paths, mopts);
}

/** The container's cgroup directories, from linux.cgroupsPath and the host's layout. */
export function plannedManager(spec: Spec, id: string, opts: CgroupOptions = {}): CgroupManager | undefined {
  const layout = opts.layout ?? readLayout();
  if (layout.mode === 'none') {
    if (opts.systemd) throw new HuskError('--systemd-cgroup: this host has no cgroup filesystem mounted');
    return undefined;
  }
  if (opts.systemd) return plannedSystemdManager(spec, id, { ...opts, layout });
  return managerFor(cgroupDirs(layout, innerPath(spec.linux?.cgroupsPath, id)), { ...opts, layout });
}

/** The bus of the manager that owns a rootless (user) or root (system) container's unit. */
function busFor(user: boolean, opts: CgroupOptions): SystemdBus {
  if (opts.bus) return opts.bus;
  if (!systemdBooted()) {
    throw new HuskError('--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); run without --systemd-cgroup to let husk manage the cgroup');
  }
  return new Busctl(user);
}

/**
 * --systemd-cgroup: the transient unit for linux.cgroupsPath ("slice:prefix:name") and its
 * cgroup's directories, on PID 1's bus for root and the user's manager for rootless husk.
 */
function plannedSystemdManager(spec: Spec, id: string, opts: CgroupOptions & { layout: CgroupLayout }): SystemdManager {
  const user = (process.geteuid?.() ?? 0) !== 0;
  const unit = unitFor(spec.linux?.cgroupsPath, id, user);
  if (user && opts.layout.mode !== 'unified') throw new HuskError('--systemd-cgroup: a rootless container\'s unit needs a cgroup v2 host (systemd delegates no cgroup v1 controller to a user)');
  const bus = busFor(user, opts);
  // PID 1's units are where their slice says; a user's manager has its own cgroup above them.
  const cgroup = unitCgroup(unit, user ? bus.managerCgroup() : '/');
  const inner = managerFor(cgroupDirs(opts.layout, cgroup), innerOptions(unit, opts));
  return new SystemdManager(unit, inner, bus, { id, started: false, warn: opts.warn });
}

/**
 * The v2/v1 manager's options inside a unit. A user's unit gets no device program: an
 * unprivileged process cannot load one (bpf(2) says EPERM), and a rootless container has only
 * the devices bound into it; runc skips it there too (fs2 devices, canSkipEBPFError).
 */
function innerOptions(unit: SystemdUnit, opts: CgroupOptions): CgroupOptions {
  if (!unit.user) return opts;
  const warn = opts.warn;
  return { ...opts, bpf: null, warn: warn && ((msg: string) => (msg.startsWith('linux.resources.devices:') ? undefined : warn(msg))) };
}

/** The manager of a container whose cgroup is a systemd unit it started earlier. */
export function systemdManagerFor(unit: SystemdUnit, paths: Record<string, string>, opts: CgroupOptions = {}): CgroupManager {
  const inner = managerFor(paths, innerOptions(unit, opts));
  // Without systemd (gone since), the cgroup is still the cgroup: only the unit calls fail.
  const bus = opts.bus ?? new Busctl(unit.user);
  return new SystemdManager(unit, inner, bus, { id: '', started: true, warn: opts.warn });
}

function resourcesOf(spec: Spec): Resources {
  return spec.linux?.resources ?? {};
}

/** True when the config asks for any limit beyond device rules. */
export function limitsRequested(r: Resources): boolean {
  return Object.entries(r).some(([k, v]) => k !== 'devices' && v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0));
}

/**
 * Before create makes anything: the resources this host's layout cannot apply are refused,
 * naming the field ("config.json: linux.resources.unified: ..."). No cgroup filesystem at
 * all: limits are refused, device rules only warned about.
 */
export function checkResourcesApplicable(spec: Spec, warn: (msg: string) => void, opts: CgroupOptions = {}): void {
  const r = resourcesOf(spec);
  // The id only names the default directory, which the checks do not depend on.
  const manager = plannedManager(spec, 'check', { ...opts, warn });
  if (!manager) {
    if (limitsRequested(r)) throw new HuskError('config.json: linux.resources: this host has no cgroup filesystem mounted, so no resource limit can be applied');
    warn('config.json: linux.resources.devices: this host has no cgroup filesystem mounted; device rules are not enforced');
    return;
  }
  try {
    manager.check(r);
  } catch (err) {
    throw new HuskError(`config.json: ${reason(err)}`, { cause: err });
  }
  if ((process.geteuid?.() ?? 0) !== 0 && limitsRequested(r) && !opts.systemd) {
    // Rootless: limits need a cgroup the user may create (a delegated cgroup v2 subtree).
    const blocked = distinctDirs(manager.paths).map(existingAncestor).find((d) => !writable(d));
    if (blocked) {
      const first = Object.keys(r).find((k) => k !== 'devices' && limitsRequested({ [k]: (r as Record<string, unknown>)[k] } as Resources));
      throw new HuskError(`config.json: linux.resources.${first}: cannot be applied: husk runs as an unprivileged user and cannot create the container's cgroup in ${blocked} (a delegated cgroup v2 subtree is needed)`);
    }
  }
}

function existingAncestor(dir: string): string {
  let d = path.dirname(dir);
  while (d !== '/' && !fs.existsSync(d)) d = path.dirname(d);
  return d;
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function isPermissionError(err: unknown): boolean {
  const code = (err as HuskError)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

/**
 * Before the init exists: makes the container's cgroup and applies linux.resources, so that
 * the init can be cloned straight into it (clone3 CLONE_INTO_CGROUP) and then joined to the v1
 * hierarchies. Undefined when there is none. A failure removes what it made.
 */
export function createCgroup(spec: Spec, id: string, opts: CgroupOptions = {}): CgroupManager | undefined {
  const manager = plannedManager(spec, id, opts);
  if (!manager) return undefined;
  const r = resourcesOf(spec);
  if (manager.exists()) {
    // Like runc: an existing cgroup may be reused, but not one that still holds processes.
    const found = manager.pids();
    if (found.length) throw new HuskError(`container's cgroup is not empty: ${found.length} process(es) found (${Object.values(manager.paths)[0]})`);
  }
  try {
    manager.create(r);
  } catch (err) {
    // A user without a delegated cgroup: fine as long as no limit was asked for (runc and crun
    // also go on silently: device rules mean nothing to a rootless container).
    if ((process.geteuid?.() ?? 0) !== 0 && isPermissionError(err) && !limitsRequested(r)) {
      try {
        manager.destroy(0);
      } catch {
        // nothing was made
      }
      return undefined;
    }
    try {
      manager.destroy(0);
    } catch {
      // the error below says what went wrong first
    }
    throw err;
  }
  try {
    manager.apply(r);
  } catch (err) {
    managerFor(manager.paths, opts).destroy();
    throw err;
  }
  return manager;
}
