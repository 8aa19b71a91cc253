// The plan's namespace steps: joining namespaces (the same for create, exec and hooks), making
// a user or time namespace in stage 1, and the clone of the init with the new ones.
import { constants as osConstants } from 'os';
import type { IDMapping } from '../spec/types';
import { Msg } from '../native/sync';
import { CLONE, PR, flagNames } from './constants';
import { idMapPlan, type IdMapPlan } from './idmap';
import { JOIN_ORDER, NAMESPACES } from './namespaces';
import type { HostView } from './plan';
import { Builder, type PlanStep, q } from './planStep';

/** A namespace to join: its config.json type and the file that names it. */
export interface Join {
  type: string;
  path: string;
}

/** The namespaces of a running process, as files under /proc/PID/ns. */
export function namespacesOf(pid: number, types: Iterable<string>): Join[] {
  return [...types].map((type) => ({ type, path: `/proc/${pid}/ns/${NAMESPACES[type].file}` }));
}

/**
 * setns into each namespace in JOIN_ORDER: the user namespace first (it owns the others), the
 * mount namespace last (after it, /proc paths may no longer be the host's). `afterUser` adds
 * what must follow joining a user namespace.
 */
export function joinNamespaces(b: Builder, joins: Join[], what: (join: Join) => string, afterUser?: () => void) {
  for (const type of JOIN_ORDER) {
    const join = joins.find((j) => j.type === type);
    if (!join) continue;
    const kind = NAMESPACES[type];
    b.add({ op: 'setns', path: join.path, nstype: kind.flag, trace: `setns(open(${q(join.path)}), ${kind.flagName})`,
      what: what(join) });
    if (type === 'user') afterUser?.();
  }
}

/** Become root of the user namespace just made or joined: files, mounts and ptys the init
 * makes must belong to an id that exists there (the host's ids do not). In a joined one,
 * setgroups may be denied (made by an unprivileged user): then there are none to clear. */
export function becomeNamespaceRoot(b: Builder, joined: boolean) {
  if (joined) {
    b.add({ op: 'setgroups', groups: [], okErrno: osConstants.errno.EPERM, trace: 'setgroups(0, [])',
      what: 'clear supplementary groups in the user namespace' });
  }
  b.add({ op: 'setresgid', gid: 0, trace: 'setresgid(0, 0, 0)', what: 'become gid 0 in the user namespace' });
  b.add({ op: 'setresuid', uid: 0, trace: 'setresuid(0, 0, 0)', what: 'become uid 0 in the user namespace' });
}

/**
 * A new user namespace, made by stage 1 itself so that the parent can write its id maps
 * while stage 1 waits; the init, cloned after, is inside it and owns the other new ones.
 */
export function newUserNamespace(b: Builder, uid: IDMapping[], gid: IDMapping[], host: HostView): IdMapPlan {
  const plan = idMapPlan(uid, gid, host);
  b.add({ op: 'unshare', flags: CLONE.CLONE_NEWUSER,
    trace: 'unshare(CLONE_NEWUSER)', what: 'create the user namespace' });
  // An unprivileged husk may write the maps of its own processes only while they are
  // dumpable (a non-dumpable one's /proc files belong to root): briefly, as runc does. Stage 1
  // is alone in a new, empty user namespace then: no container process can reach it.
  const unprivileged = host.euid !== 0;
  if (unprivileged) {
    b.add({ op: 'prctl', option: PR.PR_SET_DUMPABLE, arg2: 1, trace: 'prctl(PR_SET_DUMPABLE, 1)',
      what: 'let husk write the id maps' });
  }
  b.add({ op: 'notify', message: Msg.UserMaps, trace: 'notify(parent, user maps) and wait',
    what: 'write the uid and gid maps' });
  if (unprivileged) {
    b.add({ op: 'prctl', option: PR.PR_SET_DUMPABLE, arg2: 0, trace: 'prctl(PR_SET_DUMPABLE, 0)',
      what: 'make stage 1 non-dumpable again' });
  }
  if (!plan.denySetgroups) {
    b.add({ op: 'setgroups', groups: [],
      trace: 'setgroups(0, [])', what: 'clear supplementary groups in the user namespace' });
  }
  becomeNamespaceRoot(b, false);
  return plan;
}

/** A new time namespace: CLONE_NEWTIME shares its bit with clone()'s exit signal, so stage 1
 * unshares it (its children enter it) and sets the clock offsets, which the kernel only
 * takes before any process is inside. */
export function newTimeNamespace(b: Builder, offsets: string[]) {
  b.add({ op: 'unshare', flags: CLONE.CLONE_NEWTIME,
    trace: 'unshare(CLONE_NEWTIME)', what: 'create the time namespace' });
  if (!offsets.length) return;
  const text = offsets.join('\n') + '\n';
  b.add({ op: 'writeFile', path: '/proc/self/timens_offsets', contents: text,
    trace: `write("/proc/self/timens_offsets", ${q(text)})`, what: 'set the time namespace offsets' });
}

/** Stage 1 clones the init (or a process joining a container) with these new namespaces,
 * straight into the cgroup v2 directory `cgroupFd` where the kernel can (clone3). */
export function cloneStep(flags: number, cgroupFd?: number): PlanStep {
  const into = cgroupFd !== undefined;
  return {
    op: 'cloneInit', flags, cgroupFd: cgroupFd ?? 0, intoCgroup: into ? 1 : 0,
    trace: into
      ? `clone3(${flagNames(flags, CLONE)}|CLONE_INTO_CGROUP, cgroup=${cgroupFd})`
      : `clone(${flagNames(flags, CLONE)})`,
    what: 'clone the container init',
  };
}

/**
 * A user namespace and nothing else, for an idmapped mount (src/linux/idmap.ts): a child makes
 * it and waits while the parent writes its maps and keeps it; the parent then ends the child,
 * so the exec that ends the plan is never reached.
 */
export function userNamespacePlan(): { steps: PlanStep[]; trace: boolean } {
  const b = new Builder();
  b.add({ op: 'unshare', flags: CLONE.CLONE_NEWUSER,
    trace: 'unshare(CLONE_NEWUSER)', what: 'create a user namespace' });
  b.add({ op: 'notify', message: Msg.UserMaps, trace: 'notify(parent, user maps) and wait',
    what: 'write the uid and gid maps' });
  b.add({ op: 'exec', argv: ['/nonexistent'], envp: [], trace: 'execve("/nonexistent") (never reached)',
    what: 'wait to be ended' });
  return { steps: b.steps, trace: false };
}
