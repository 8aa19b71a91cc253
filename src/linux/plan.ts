// config.json -> the plan the addon's children execute (native/plan.h), one named step per
// kernel operation, in the order runc performs them. Each step carries two texts: `trace`,
// the system call as `husk --trace` prints it, and `what`, the words an error message uses.
// This file puts the plans together; each concern builds its steps in its own file:
// planNamespaces.ts, planMounts.ts, planDevices.ts, planProcess.ts (and planHooks.ts).
//
// Pure policy: it reads the host only through the `host` seam, so it is unit-tested without
// root.
import { HuskError } from '../errors';
import type { IDMapping, Process, Spec } from '../spec/types';
import { Msg } from '../native/sync';
import type { IdMapPlan } from './idmap';
import { NAMESPACES, sharesHostMounts } from './namespaces';
import { devices } from './planDevices';
import { chrootStep, configMount, prepareRootfs, readonlyRoot, restrictPaths, switchRoot } from './planMounts';
import {
  becomeNamespaceRoot, cloneStep, joinNamespaces, namespacesOf, newTimeNamespace, newUserNamespace,
} from './planNamespaces';
import { compiledSeccomp, consoleStep, processEnv, processSteps, securityLabels, writeProcStep } from './planProcess';
import { Builder, type PlanStep, q } from './planStep';
import { CLONE } from './constants';

export type { PlanStep } from './planStep';
export { DEFAULT_DEVICES } from './planDevices';
export { executableCandidates, processEnv } from './planProcess';

/** What the plan needs to know about the host; the real one is in hostInfo.ts. */
export interface HostView {
  /** Is this host path a directory (true), something else (false), or missing (undefined)? */
  isDirectory(p: string): boolean | undefined;
  /** The mount point that contains a host path (for making the rootfs's parent private). */
  mountPointOf(p: string): string;
  /** cgroup v1 hierarchies mounted on the host: mount point name, super options. Empty on v2. */
  cgroupV1: { name: string; options: string; cgroupPath: string }[];
  /** True when /sys/fs/cgroup is a cgroup2 mount (unified hierarchy). */
  cgroupV2Unified: boolean;
  /** Reads a small file of the rootfs (for /etc/passwd), or undefined: symlinks are followed
   * as RESOLVE_IN_ROOT follows them, never out of the rootfs (host/rootfs.ts). */
  readRootfsFile(rootfs: string, p: string): string | undefined;
  /** husk's effective ids: as root it can write any id map and create devices. */
  euid: number;
  egid: number;
  /** The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap). */
  lastCap: number;
  /** Linux security modules that are enabled: "apparmor", "selinux". */
  securityModules: string[];
}

export interface PlanOptions {
  rootfs: string;
  bundle: string;
  /** The exec fifo `start` opens (its path, and an O_PATH fd of it open in husk); absent for
   * processes that run at once (hooks, exec). */
  execFifo?: { path: string; fd: number };
  noPivot?: boolean;
  /** An fd of the container's cgroup v2 directory: the init is cloned straight into it
   * (clone3 CLONE_INTO_CGROUP) where the kernel can. */
  cgroupFd?: number;
  /** Idmapped bind mounts: config mount index -> a detached mount tree (fd) husk prepared. */
  mountTrees?: Map<number, number>;
  /** fds (in husk) to become the process's stdin, stdout and stderr; husk's own by default. */
  stdio?: [number, number, number];
  /** The container id: names its session keyring. */
  id?: string;
  /** --no-new-keyring: keep the caller's session keyring. */
  noNewKeyring?: boolean;
  /** Number of fds beyond stdio passed into the container (--preserve-fds and LISTEN_FDS). */
  preserveFds?: number;
  trace?: boolean;
}

export interface Plan {
  steps: PlanStep[];
  trace: boolean;
  /** Whether the plan pauses for createRuntime/createContainer/prestart hooks. */
  pausesForHooks: boolean;
  /** A new user namespace: the maps the parent writes when stage 1 asks (UserMaps). */
  userMaps?: { uid: IDMapping[]; gid: IDMapping[]; plan: IdMapPlan };
  /** Warnings for the log (capabilities this kernel lacks, ...). */
  warnings: string[];
  /** What only --debug shows (seccomp rules naming system calls this architecture lacks). */
  debug?: string[];
}

export function buildPlan(spec: Spec, opts: PlanOptions, host: HostView): Plan {
  const process = spec.process;
  if (!process) throw new HuskError('config.json: process is required to create a container');
  const linux = spec.linux ?? {};
  const b = new Builder();
  const namespaces = linux.namespaces ?? [];
  const isNew = (type: string) => namespaces.some((n) => n.type === type && !n.path);

  // Stage 1: join the namespaces given by path (the user namespace first), then clone the
  // init with the new ones. A new cgroup namespace is made by the init itself, after the
  // parent has put it into its cgroups, so that its cgroup becomes the namespace's root.
  const joins = namespaces.filter((n) => n.path).map((n) => ({ type: n.type, path: n.path! }));
  joinNamespaces(b, joins, (j) => `join ${j.type} namespace ${q(j.path)}`, () => becomeNamespaceRoot(b, true));
  let userMaps: Plan['userMaps'];
  if (isNew('user')) {
    const uid = linux.uidMappings ?? [];
    const gid = linux.gidMappings ?? [];
    userMaps = { uid, gid, plan: newUserNamespace(b, uid, gid, host) };
  }
  if (isNew('time')) {
    const offsets = Object.entries(linux.timeOffsets ?? {});
    newTimeNamespace(b, offsets.map(([clock, o]) => `${clock} ${o?.secs ?? 0} ${o?.nanosecs ?? 0}`));
  }
  let cloneFlags = 0;
  for (const n of namespaces) {
    if (!n.path && n.type !== 'cgroup' && n.type !== 'user' && n.type !== 'time') cloneFlags |= NAMESPACES[n.type].flag;
  }
  b.add(cloneStep(cloneFlags, opts.cgroupFd));

  // The init. (Stage 1 made itself non-dumpable before its first step, and the init
  // inherits that until execve: see native/addon.cc.)
  b.add({ op: 'setsid', trace: 'setsid()', what: 'start a new session' });
  if (!opts.noNewKeyring && opts.id) {
    b.add({ op: 'joinSessionKeyring', name: opts.id, trace: `keyctl(KEYCTL_JOIN_SESSION_KEYRING, ${q(opts.id)})`,
      what: 'create a session keyring' });
  }
  if (isNew('cgroup')) {
    b.add({ op: 'unshare', flags: CLONE.CLONE_NEWCGROUP,
      trace: 'unshare(CLONE_NEWCGROUP)', what: 'create the cgroup namespace' });
  }
  if (isNew('network')) {
    b.add({ op: 'linkUp', ifname: 'lo',
      trace: 'ioctl(SIOCSIFFLAGS, "lo", IFF_UP)', what: 'bring up the loopback interface' });
  }
  // (oomScoreAdj is written by the parent: lowering it needs a capability the init may not
  // have inside a user namespace.)

  // The root filesystem, prepared while the host's paths are still reachable.
  const hasMountNs = !sharesHostMounts(spec);
  prepareRootfs(b, opts, host, hasMountNs);
  (spec.mounts ?? []).forEach((m, i) => configMount({ b, opts, host, isNew }, m, i));
  devices(b, spec, host);

  const cwd = process.cwd || '/';
  b.add({ op: 'mkdir', path: cwd, inRoot: true,
    trace: `mkdir(${q(cwd)})`, what: `create working directory ${q(cwd)}` });
  if (opts.execFifo) {
    const { fd, path } = opts.execFifo;
    b.add({ op: 'openExecFifo', fd, trace: `keep fd ${fd} (${q(path)}, O_PATH) and open("/proc", O_PATH)`,
      what: `open exec fifo ${q(path)}` });
  }
  const hooks = spec.hooks ?? {};
  const pausesForHooks = Boolean(
    hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length,
  );
  if (pausesForHooks) {
    b.add({ op: 'notify', message: Msg.Hooks, trace: 'notify(parent, hooks) and wait',
      what: 'run createRuntime and createContainer hooks' });
  }

  switchRoot(b, opts, hasMountNs, linux.rootfsPropagation);
  if (process.terminal) b.add(consoleStep(process, '/dev/console'));
  if (spec.hostname !== undefined) {
    b.add({ op: 'sethostname', name: spec.hostname,
      trace: `sethostname(${q(spec.hostname)})`, what: `set hostname ${q(spec.hostname)}` });
  }
  if (spec.domainname !== undefined) {
    b.add({ op: 'setdomainname', name: spec.domainname, trace: `setdomainname(${q(spec.domainname)})`,
      what: `set domainname ${q(spec.domainname)}` });
  }
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    b.add(writeProcStep('/proc/sys/' + key.replace(/\./g, '/'), value, `set sysctl ${key}`));
  }
  restrictPaths(b, linux);
  securityLabels(b, process, host, 'config.json: ');
  if (linux.mountLabel && !host.securityModules.includes('selinux')) {
    throw new HuskError(`config.json: linux.mountLabel ${q(linux.mountLabel)}: SELinux is not enabled on this host`);
  }
  if (linux.personality) {
    const domains: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };
    const { domain, flags } = linux.personality;
    const persona = domains[domain];
    if (persona === undefined) {
      throw new HuskError(`config.json: linux.personality.domain ${q(domain)}: only LINUX and LINUX32 are supported`);
    }
    if (flags?.length) {
      throw new HuskError('config.json: linux.personality.flags: no personality flags are supported '
        + `(got ${flags.join(', ')})`);
    }
    b.add({ op: 'personality', persona, trace: `personality(${domain === 'LINUX32' ? 'PER_LINUX32' : 'PER_LINUX'})`,
      what: `set personality ${domain}` });
  }
  if (spec.root?.readonly) readonlyRoot(b);

  const warnings: string[] = [];
  const debug: string[] = [];
  processSteps(b, process, {
    env: processEnv(process, opts.rootfs, host), cwd, stdio: opts.stdio, preserveFds: opts.preserveFds,
    execFifo: opts.execFifo, denySetgroups: Boolean(userMaps?.plan.denySetgroups), host, warnings,
    seccomp: compiledSeccomp(spec, warnings, debug),
  });
  return { steps: b.steps, trace: Boolean(opts.trace), pausesForHooks, userMaps, warnings, debug };
}

export interface ExecPlanOptions {
  /** The container's init (its namespaces are joined through /proc/PID/ns). */
  initPid: number;
  rootfs: string;
  stdio?: [number, number, number];
  preserveFds?: number;
  trace?: boolean;
  /** The user namespace of husk itself, to skip joining it when the container shares it. */
  ownUserNamespace?: string;
  /** The container's user namespace, when it has one. */
  containerUserNamespace?: string;
  /** The container's user namespace denies setgroups (an unprivileged id map). */
  setgroupsDenied?: boolean;
}

/**
 * `husk exec`: a process joining a running container. Stage 1 joins every namespace the
 * container has (its user namespace first, the mount namespace last), then clones the
 * process, which lands in the container's pid namespace; it gets the container's view of
 * the filesystem, and the process's own user, capabilities, limits and terminal.
 */
export function buildExecPlan(spec: Spec, process: Process, opts: ExecPlanOptions, host: HostView): Plan {
  const b = new Builder();
  const types = new Set<string>((spec.linux?.namespaces ?? []).map((n) => n.type));
  if (opts.containerUserNamespace === opts.ownUserNamespace) types.delete('user');
  joinNamespaces(b, namespacesOf(opts.initPid, types), (j) => `join the container's ${j.type} namespace`);
  b.add(cloneStep(0));
  // Without a mount namespace of its own the container shares husk's: a process joining it
  // goes into its root as the init did (runc's would stay in the host's).
  if (!types.has('mount')) b.add(chrootStep(`/proc/${opts.initPid}/root`));
  if (process.terminal) {
    b.add({ op: 'setsid', trace: 'setsid()', what: 'start a new session' });
    b.add(consoleStep(process));
  }
  securityLabels(b, process, host, '');
  const warnings: string[] = [];
  const debug: string[] = [];
  processSteps(b, process, {
    env: processEnv(process, opts.rootfs, host), cwd: process.cwd || '/',
    stdio: opts.stdio, preserveFds: opts.preserveFds,
    denySetgroups: Boolean(opts.setgroupsDenied), host, warnings, seccomp: compiledSeccomp(spec, warnings, debug),
  });
  return { steps: b.steps, trace: Boolean(opts.trace), pausesForHooks: false, warnings, debug };
}
