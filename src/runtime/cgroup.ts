// The container's cgroup over its life, as the lifecycle verbs use it: the directories the
// cgroup package made are kept in the record (`cgroupPaths`), and every later verb works on
// them, never on a config that might now resolve differently.
//
//   create   checkResourcesApplicable (before anything exists) -> prepareCgroup before the
//            init exists, recording the directories -> the manager's join in onInitPid
//   delete   removeCgroup: kill what is left, wait, rmdir every directory
//   ps, kill --all, exec, pause, resume, update, events: cgroupOf(record)
import { HuskError } from '../errors';
import type { Spec } from '../spec/types';
import { createCgroup, managerFor, systemdManagerFor, type CgroupManager, type CgroupOptions } from '../cgroups';
import type { ContainerRecord } from './store';

/** Makes the container's cgroup with its limits and records its directories in the record. */
export function prepareCgroup(record: ContainerRecord, spec: Spec, opts: CgroupOptions = {}): CgroupManager | undefined {
  const manager = createCgroup(spec, record.id, opts);
  if (manager) record.cgroupPaths = { ...manager.paths };
  if (manager?.systemdUnit) record.systemdUnit = { ...manager.systemdUnit };
  return manager;
}

/** The manager of a container's recorded cgroup, or undefined when it has none. */
export function cgroupOf(record: ContainerRecord, opts: CgroupOptions = {}): CgroupManager | undefined {
  const paths = record.cgroupPaths;
  if (!paths || Object.keys(paths).length === 0) return undefined;
  if (record.systemdUnit) return systemdManagerFor(record.systemdUnit, paths, opts);
  return managerFor(paths, opts);
}

/**
 * Kills whatever is still in the container's cgroup, waits for it, removes every directory
 * and forgets them. Throws if they cannot be removed (the record then keeps them, and
 * `delete` can be retried).
 */
export function removeCgroup(record: ContainerRecord, warn?: (msg: string) => void, opts: CgroupOptions = {}): void {
  const manager = cgroupOf(record, { ...opts, warn });
  if (!manager) return;
  manager.destroy();
  delete record.cgroupPaths;
  delete record.systemdUnit;
}

/** Moves another process (exec) into every directory of the container's cgroup. */
export function joinCgroup(record: ContainerRecord, pid: number, opts: CgroupOptions = {}): void {
  cgroupOf(record, opts)?.join(pid);
}

/** The processes in the container's cgroup, or undefined when it has none (or it is gone). */
export function cgroupPids(record: ContainerRecord, opts: CgroupOptions = {}): number[] | undefined {
  const manager = cgroupOf(record, opts);
  if (!manager || !manager.exists()) return undefined;
  return manager.pids();
}

/** A container that must have a cgroup for `what` (pause, update, events). */
export function requireCgroup(record: ContainerRecord, what: string, opts: CgroupOptions = {}): CgroupManager {
  const manager = cgroupOf(record, opts);
  if (!manager) throw new HuskError(`cannot ${what}: the container has no cgroup`);
  if (!manager.exists()) throw new HuskError(`cannot ${what}: its cgroup ${Object.values(manager.paths)[0]} no longer exists`);
  return manager;
}
