// Namespace types as config.json names them, with their clone flag and /proc/PID/ns file.
import type { Spec } from '../spec/types';
import { CLONE } from './constants';

export interface NamespaceKind {
  flag: number;
  flagName: keyof typeof CLONE;
  /** The file under /proc/PID/ns/. */
  file: string;
}

export const NAMESPACES: Record<string, NamespaceKind> = {
  user: { flag: CLONE.CLONE_NEWUSER, flagName: 'CLONE_NEWUSER', file: 'user' },
  pid: { flag: CLONE.CLONE_NEWPID, flagName: 'CLONE_NEWPID', file: 'pid' },
  network: { flag: CLONE.CLONE_NEWNET, flagName: 'CLONE_NEWNET', file: 'net' },
  ipc: { flag: CLONE.CLONE_NEWIPC, flagName: 'CLONE_NEWIPC', file: 'ipc' },
  uts: { flag: CLONE.CLONE_NEWUTS, flagName: 'CLONE_NEWUTS', file: 'uts' },
  mount: { flag: CLONE.CLONE_NEWNS, flagName: 'CLONE_NEWNS', file: 'mnt' },
  cgroup: { flag: CLONE.CLONE_NEWCGROUP, flagName: 'CLONE_NEWCGROUP', file: 'cgroup' },
  time: { flag: CLONE.CLONE_NEWTIME, flagName: 'CLONE_NEWTIME', file: 'time' },
};

/** The order in which namespaces are joined: the user namespace first (it owns the others),
 * the mount namespace last among them (after it, /proc paths may no longer be the host's). */
export const JOIN_ORDER = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'mount'];

/** Whether a container shares husk's mount namespace: linux.namespaces lists none, new or joined
 * (the runtime spec: a namespace not listed is inherited from the runtime). */
export function sharesHostMounts(spec: Spec): boolean {
  return !(spec.linux?.namespaces ?? []).some((n) => n.type === 'mount');
}
