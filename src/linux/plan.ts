// config.json -> the plan the addon's children execute (native/plan.h), one named step per
// kernel operation, in the order runc performs them. Each step carries two texts: `trace`,
// the system call as `husk --trace` prints it, and `what`, the words an error message uses.
//
// Pure policy: it reads the host only through the `host` seam, so it is unit-tested without
// root.
import * as path from 'path';
import { constants as osConstants } from 'os';
import { HuskError } from '../errors';
import type { NativeStep } from '../native';
import type { IDMapping, Mount, Process, Spec } from '../spec/types';
import { idMapPlan, type IdMapPlan } from './idmap';
import { capabilityMask } from './capabilities';
import { CLONE, MS, PR, S_IFBLK, S_IFCHR, S_IFIFO, flagNames } from './constants';
import { parseMountOptions } from './mountOptions';
import { JOIN_ORDER, NAMESPACES } from './namespaces';
import { RLIMITS } from './rlimits';
import type { CompiledSeccomp } from './seccomp';
import { Msg } from '../native/sync';

/** A step (src/native/steps.ts) with the words husk shows for it. */
export type PlanStep = NativeStep & {
  /** The system call, as `--trace` prints it: mount("proc", "/proc", "proc", MS_NOSUID, NULL). */
  trace: string;
  /** For error messages: mount "proc" on "/proc". */
  what: string;
  /** What an errno means for this step, where strerror would not say it: {[ENOTDIR]: ...}. */
  why?: Record<number, string>;
};

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
  /** Reads a small file of the rootfs (for /etc/passwd), or undefined. Never follows a symlink. */
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

const q = (s: string | null | undefined) => (s === null || s === undefined ? 'NULL' : JSON.stringify(s));
const ENOENT = osConstants.errno.ENOENT;
const EEXIST = osConstants.errno.EEXIST;
const ENOTDIR = osConstants.errno.ENOTDIR;
const EXDEV = osConstants.errno.EXDEV;
/** native/process.cc refuses a write under /proc that is not on a procfs with EXDEV. */
const notProcfs = (file: string) => ({ [EXDEV]: `${q(file)} is not on a procfs` });

export const DEFAULT_DEVICES = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
];

const DEV_SYMLINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['pts/ptmx', '/dev/ptmx'],
];

class Builder {
  readonly steps: PlanStep[] = [];
  add(step: PlanStep) {
    this.steps.push(step);
  }
}

function mountStep(source: string | null, target: string, fstype: string | null, flags: number, data: string | null,
  opts: { inRoot?: boolean; create?: 0 | 1 | 2 | 3; okErrno?: number; shown?: string } = {}): PlanStep {
  const shownTarget = opts.shown ?? target;
  const isRemount = (flags & MS.MS_REMOUNT) !== 0;
  const isPropagation = (flags & (MS.MS_PRIVATE | MS.MS_SLAVE | MS.MS_SHARED | MS.MS_UNBINDABLE)) !== 0;
  const what = isRemount ? `remount ${q(shownTarget)} with ${flagNames(flags, MS)}`
    : isPropagation ? `set propagation of ${q(shownTarget)} to ${flagNames(flags, MS)}`
      : `mount ${q(source ?? fstype)} on ${q(shownTarget)}`;
  return {
    op: 'mount', source, target, fstype, flags, data: data || null,
    inRoot: opts.inRoot, create: opts.create, okErrno: opts.okErrno,
    trace: `mount(${q(source)}, ${q(shownTarget)}, ${q(fstype)}, ${flagNames(flags, MS)}, ${data ? q(data) : 'NULL'})`,
    what,
  };
}

/** The candidates to try for process.args[0], in order: runc looks it up in the process's PATH. */
export function executableCandidates(arg0: string, env: string[]): string[] {
  if (arg0.includes('/')) return [arg0];
  const pathVar = env.filter((e) => e.startsWith('PATH=')).pop();
  if (!pathVar) return [];
  return pathVar.slice(5).split(':').map((dir) => path.posix.join(dir || '.', arg0));
}

/** The environment the process gets: its own, with HOME added as runc does. */
export function processEnv(process: Process, rootfs: string, host: HostView): string[] {
  const env = [...(process.env ?? [])];
  if (!env.some((e) => e.startsWith('HOME='))) {
    const uid = process.user?.uid ?? 0;
    let home = '/';
    const passwd = host.readRootfsFile(rootfs, '/etc/passwd');
    for (const line of passwd?.split('\n') ?? []) {
      const f = line.split(':');
      if (f.length >= 7 && Number(f[2]) === uid && f[5]) {
        home = f[5];
        break;
      }
    }
    env.push(`HOME=${home}`);
  }
  return env;
}

/** Become root of the user namespace just made or joined: files, mounts and ptys the init
 * makes must belong to an id that exists there (the host's ids do not). In a joined one,
 * setgroups may be denied (made by an unprivileged user): then there are none to clear. */
function becomeNamespaceRoot(b: Builder, joined: boolean) {
  if (joined) b.add({ op: 'setgroups', groups: [], okErrno: osConstants.errno.EPERM, trace: 'setgroups(0, [])', what: 'clear supplementary groups in the user namespace' });
  b.add({ op: 'setresgid', gid: 0, trace: 'setresgid(0, 0, 0)', what: 'become gid 0 in the user namespace' });
  b.add({ op: 'setresuid', uid: 0, trace: 'setresuid(0, 0, 0)', what: 'become uid 0 in the user namespace' });
}

function chrootStep(root: string): PlanStep {
  return { op: 'chroot', path: root, trace: `chdir(${q(root)}); chroot(".")`, what: `chroot to ${q(root)}` };
}

function cloneStep(flags: number, cgroupFd?: number): PlanStep {
  const into = cgroupFd !== undefined;
  return {
    op: 'cloneInit', flags, cgroupFd: cgroupFd ?? 0, intoCgroup: into ? 1 : 0,
    trace: into ? `clone3(${flagNames(flags, CLONE)}|CLONE_INTO_CGROUP, cgroup=${cgroupFd})` : `clone(${flagNames(flags, CLONE)})`,
    what: 'clone the container init',
  };
}

/** Mounts for a "cgroup" entry: cgroup2 on a unified host; on a v1/hybrid host, runc's
 * layout: a writable tmpfs holding one mount per v1 hierarchy (fresh ones in a new cgroup
 * namespace, binds of our own cgroup otherwise) with the entry's flags. Like runc, the
 * hybrid host's cgroup2 "unified" mount is not repeated inside. */
function cgroupMounts(b: Builder, m: Mount, flags: number, newCgroupNs: boolean, host: HostView) {
  const dest = m.destination;
  if (host.cgroupV2Unified || host.cgroupV1.length === 0) {
    b.add(mountStep('cgroup', dest, 'cgroup2', flags, null, { inRoot: true, create: 1 }));
    return;
  }
  b.add(mountStep('tmpfs', dest, 'tmpfs', MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC | MS.MS_RELATIME, 'mode=755', { inRoot: true, create: 1 }));
  for (const h of host.cgroupV1) {
    if (h.name === 'unified') continue;
    const target = path.posix.join(dest, h.name);
    if (newCgroupNs) {
      b.add(mountStep('cgroup', target, 'cgroup', flags, h.options, { inRoot: true, create: 1 }));
    } else {
      const source = path.posix.join('/sys/fs/cgroup', h.name, h.cgroupPath).replace(/(.)\/$/, '$1');
      b.add(mountStep(source, target, null, MS.MS_BIND | MS.MS_REC, null, { inRoot: true, create: 1 }));
      b.add(mountStep(null, target, null, MS.MS_BIND | MS.MS_REMOUNT | flags, null, { inRoot: true }));
    }
  }
}

/** What a mount's plan depends on besides the mount itself. */
interface MountContext {
  b: Builder;
  opts: PlanOptions;
  host: HostView;
  isNew(type: string): boolean;
}

function configMount(ctx: MountContext, original: Mount, index: number) {
  const { b, opts, host } = ctx;
  const where = `mounts[${index}]`;
  let m = original;
  // Inside a new user namespace, sysfs and mqueue can only be mounted fresh when the network
  // and ipc namespaces are new too (owned by it); otherwise the host's are bound, as runc does.
  if (ctx.isNew('user') && m.type === 'sysfs' && !ctx.isNew('network')) m = { ...m, type: 'bind', source: '/sys', options: ['rbind', ...(m.options ?? [])] };
  if (ctx.isNew('user') && m.type === 'mqueue' && !ctx.isNew('ipc')) m = { ...m, type: 'bind', source: '/dev/mqueue', options: ['rbind', ...(m.options ?? [])] };
  const dest = m.destination.startsWith('/') ? m.destination : '/' + m.destination;
  const parsed = parseMountOptions(m.options);
  const isBind = m.type === 'bind' || (parsed.flags & MS.MS_BIND) !== 0;
  if (m.type === 'cgroup') {
    cgroupMounts(b, { ...m, destination: dest }, parsed.flags, ctx.isNew('cgroup'), host);
    return;
  }
  if (isBind) {
    if (!m.source) throw new HuskError(`config.json: ${where}: a bind mount needs a source`);
    const source = path.isAbsolute(m.source) ? m.source : path.join(opts.bundle, m.source);
    const isDir = host.isDirectory(source);
    if (isDir === undefined) throw new HuskError(`config.json: ${where}: bind source ${q(source)} does not exist`);
    const bindFlags = MS.MS_BIND | (parsed.flags & MS.MS_REC);
    const tree = opts.mountTrees?.get(index);
    if (tree !== undefined) {
      b.add({ op: 'moveMount', fromFd: tree, toPath: dest, inRoot: true, create: isDir ? 1 : 2, trace: `move_mount(${tree} [idmapped ${q(source)}], ${q(dest)})`, what: `mount idmapped ${q(source)} on ${q(dest)}` });
    } else {
      b.add(mountStep(source, dest, null, bindFlags, null, { inRoot: true, create: isDir ? 1 : 2 }));
    }
    const rest = parsed.flags & ~(MS.MS_BIND | MS.MS_REC | MS.MS_REMOUNT);
    if (rest) b.add(mountStep(null, dest, null, MS.MS_BIND | MS.MS_REMOUNT | rest, null, { inRoot: true }));
  } else if (parsed.copyUp) {
    if (m.type !== 'tmpfs') throw new HuskError(`config.json: ${where}: tmpcopyup applies to tmpfs mounts only (type is ${q(m.type ?? '')})`);
    const data = parsed.data || null;
    b.add({
      op: 'copyUpMount', source: m.source ?? 'tmpfs', target: dest, fstype: 'tmpfs', flags: parsed.flags & ~MS.MS_RDONLY, data, inRoot: true,
      trace: `mount("tmpfs", ${q(dest)}, "tmpfs", ${flagNames(parsed.flags & ~MS.MS_RDONLY, MS)}, ${data ? q(data) : 'NULL'}); copy what ${q(dest)} held into it`,
      what: `mount "tmpfs" on ${q(dest)} with a copy of its contents`,
    });
    if (parsed.flags & MS.MS_RDONLY) b.add(mountStep(null, dest, null, MS.MS_BIND | MS.MS_REMOUNT | parsed.flags, null, { inRoot: true }));
  } else if (m.type === 'tmpfs' && parsed.flags & MS.MS_RDONLY) {
    // As runc: a read-only tmpfs is mounted writable and made read-only per mount, so its
    // superblock stays writable (what tmpcopyup and later binds of it expect).
    b.add(mountStep(m.source ?? 'tmpfs', dest, 'tmpfs', parsed.flags & ~MS.MS_RDONLY, parsed.data, { inRoot: true, create: 1 }));
    b.add(mountStep(null, dest, null, MS.MS_BIND | MS.MS_REMOUNT | parsed.flags, null, { inRoot: true }));
  } else if (m.type === 'proc' || m.type === 'sysfs') {
    // Only on an ordinary directory: a symlink the image planted would move procfs elsewhere
    // and leave the image's own files where attr/exec and sysctls are written (CVE-2019-16884).
    b.add({
      ...mountStep(m.source ?? m.type, dest, m.type, parsed.flags, parsed.data, { inRoot: true, create: 3 }),
      why: { [ENOTDIR]: `${m.type} must be mounted on an ordinary directory` },
    });
  } else {
    b.add(mountStep(m.source ?? m.type ?? 'none', dest, m.type ?? null, parsed.flags, parsed.data, { inRoot: true, create: 1 }));
  }
  if (parsed.recursive) {
    const { set, clear } = parsed.recursive;
    b.add({ op: 'mountSetattr', path: dest, inRoot: true, attrSet: set, attrClr: clear, trace: `mount_setattr(${q(dest)}, AT_RECURSIVE, {set 0x${set.toString(16)}, clear 0x${clear.toString(16)}})`, what: `apply recursive options to ${q(dest)}` });
  }
  for (const p of parsed.propagation) b.add(mountStep(null, dest, null, p, null, { inRoot: true }));
}

interface ProcessContext {
  env: string[];
  cwd: string;
  stdio?: [number, number, number];
  preserveFds?: number;
  execFifo?: { path: string; fd: number };
  /** setgroups is denied in the user namespace (an unprivileged id map). */
  denySetgroups: boolean;
  host: HostView;
  warnings: string[];
  seccomp?: CompiledSeccomp;
}

function seccompStep(seccomp: CompiledSeccomp): PlanStep {
  return {
    op: 'seccomp', filter: seccomp.filter, flags: seccomp.flags,
    trace: `seccomp(SECCOMP_SET_MODE_FILTER, ${seccomp.flags}, {${seccomp.filter.length / 8} instructions})`,
    what: 'install the seccomp filter',
  };
}

/** linux.seccomp compiled to BPF, or undefined; a notify rule needs a listener to send to. */
function compiledSeccomp(spec: Spec, warnings: string[], debug: string[]): CompiledSeccomp | undefined {
  const config = spec.linux?.seccomp;
  if (!config) return undefined;
  // Docker's and Podman's profiles name system calls of other architectures: as runc does,
  // skipping those is only said with --debug.
  // The compiler and its syscall tables are loaded only for a config that has a filter.
  const { compileSeccomp } = require('./seccomp') as typeof import('./seccomp');
  const compiled = compileSeccomp(config, { warn: (w) => (/unknown system call/.test(w) ? debug : warnings).push(w) });
  if (compiled.notify && !config.listenerPath) throw new HuskError('config.json: linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath');
  return compiled;
}

/** The end of every plan, the container's init or a process joining it (exec): limits,
 * privileges and identity in runc's order, then the wait for `start` (if any) and execve. */
function processSteps(b: Builder, process: Process, ctx: ProcessContext) {
  const { env, cwd, host, warnings } = ctx;
  for (const r of process.rlimits ?? []) {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new HuskError(`config.json: process.rlimits: unknown type ${q(r.type)}`);
    b.add({ op: 'setrlimit', resource, soft: BigInt(r.soft), hard: BigInt(r.hard), trace: `prlimit64(0, ${r.type}, {${r.soft}, ${r.hard}})`, what: `set ${r.type}` });
  }
  if (process.noNewPrivileges) b.add({ op: 'prctl', option: PR.PR_SET_NO_NEW_PRIVS, arg2: 1, trace: 'prctl(PR_SET_NO_NEW_PRIVS, 1)', what: 'set no_new_privs' });
  if (process.user?.umask !== undefined) b.add({ op: 'umask', mask: process.user.umask, trace: `umask(0${process.user.umask.toString(8)})`, what: 'set umask' });
  for (const [target, fd] of (ctx.stdio ?? []).entries()) {
    b.add({ op: 'dup2', oldfd: fd, newfd: target, trace: `dup2(${fd}, ${target})`, what: `set up fd ${target}` });
  }
  // Inherited fds are marked close-on-exec before any seccomp filter goes in: a profile
  // written before Linux 5.9 refuses close_range (CVE-2024-21626 is why none may stay open).
  const preserve = ctx.preserveFds ?? 0;
  b.add({ op: 'closeFds', first: 3 + preserve, trace: `close_range(${3 + preserve}, ~0, CLOSE_RANGE_CLOEXEC)`, what: 'close inherited file descriptors' });
  // Seccomp as late as it can be: without no_new_privs the filter needs CAP_SYS_ADMIN, so it
  // goes in before the capabilities are dropped; with it, just before waiting for start.
  if (ctx.seccomp && !process.noNewPrivileges) b.add(seccompStep(ctx.seccomp));

  const caps = process.capabilities;
  const mask = (names: string[] | undefined, field: string) => capabilityMask(names, `process.capabilities.${field}`, host.lastCap, (w) => warnings.push(w));
  if (caps) {
    const bounding = mask(caps.bounding, 'bounding');
    b.add({ op: 'dropBounding', keep: bounding, trace: `prctl(PR_CAPBSET_DROP, ...) keeping 0x${bounding.toString(16)}`, what: 'drop capabilities from the bounding set' });
    b.add({ op: 'prctl', option: PR.PR_SET_KEEPCAPS, arg2: 1, trace: 'prctl(PR_SET_KEEPCAPS, 1)', what: 'keep capabilities across setuid' });
  }
  const user = process.user ?? { uid: 0, gid: 0 };
  const groups = user.additionalGids ?? [];
  if (ctx.denySetgroups) {
    // setgroups is denied in this user namespace (an unprivileged map): nothing to clear.
    if (groups.length) throw new HuskError('config.json: process.user.additionalGids cannot be set: this user namespace denies setgroups (an unprivileged id map)');
  } else {
    b.add({ op: 'setgroups', groups, trace: `setgroups(${groups.length}, [${groups.join(', ')}])`, what: 'set supplementary groups' });
  }
  b.add({ op: 'setresgid', gid: user.gid, trace: `setresgid(${user.gid}, ${user.gid}, ${user.gid})`, what: `set gid ${user.gid}` });
  b.add({ op: 'setresuid', uid: user.uid, trace: `setresuid(${user.uid}, ${user.uid}, ${user.uid})`, what: `set uid ${user.uid}` });
  b.add({ op: 'chdir', path: cwd, trace: `chdir(${q(cwd)})`, what: `change to working directory ${q(cwd)}` });
  if (caps) {
    b.add({ op: 'prctl', option: PR.PR_SET_KEEPCAPS, arg2: 0, trace: 'prctl(PR_SET_KEEPCAPS, 0)', what: 'stop keeping capabilities' });
    const eff = mask(caps.effective, 'effective');
    const perm = mask(caps.permitted, 'permitted');
    const inh = mask(caps.inheritable, 'inheritable');
    const amb = mask(caps.ambient, 'ambient');
    b.add({ op: 'capset', effective: eff, permitted: perm, inheritable: inh, ambient: amb, trace: `capset(effective=0x${eff.toString(16)}, permitted=0x${perm.toString(16)}, inheritable=0x${inh.toString(16)}); ambient=0x${amb.toString(16)}`, what: 'set capabilities' });
  }
  const candidates = executableCandidates(process.args[0], env);
  b.add({ op: 'findExecutable', candidates, trace: `access(${candidates.map(q).join(' | ')}, X_OK)`, what: `exec: ${q(process.args[0])}` });
  if (ctx.seccomp && process.noNewPrivileges) b.add(seccompStep(ctx.seccomp));
  if (ctx.execFifo) {
    b.add({ op: 'waitExecFifo', trace: `open(${q(ctx.execFifo.path)}, O_WRONLY) blocks until start`, what: 'wait for start on the exec fifo' });
  }
  b.add({ op: 'exec', argv: process.args, envp: env, trace: `execve(${q(process.args[0])}, [${process.args.map(q).join(', ')}], [${env.length} vars])`, what: `exec ${q(process.args[0])}` });
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
  for (const type of JOIN_ORDER) {
    const ns = namespaces.find((n) => n.type === type && n.path);
    if (!ns) continue;
    const kind = NAMESPACES[type];
    b.add({ op: 'setns', path: ns.path, nstype: kind.flag, trace: `setns(open(${q(ns.path)}), ${kind.flagName})`, what: `join ${type} namespace ${q(ns.path)}` });
    if (type === 'user') becomeNamespaceRoot(b, true);
  }
  // A new user namespace is made by stage 1 itself, so that the parent can write its id maps
  // while stage 1 waits; the init, cloned after, is inside it and owns the other new ones.
  let userMaps: Plan['userMaps'];
  if (isNew('user')) {
    const uid = linux.uidMappings ?? [];
    const gid = linux.gidMappings ?? [];
    userMaps = { uid, gid, plan: idMapPlan(uid, gid, host.euid, host.egid) };
    b.add({ op: 'unshare', flags: CLONE.CLONE_NEWUSER, trace: 'unshare(CLONE_NEWUSER)', what: 'create the user namespace' });
    // An unprivileged husk may write the maps of its own processes only while they are
    // dumpable (a non-dumpable one's /proc files belong to root): briefly, as runc does. Stage 1
    // is alone in a new, empty user namespace then: no container process can reach it.
    const unprivileged = host.euid !== 0;
    if (unprivileged) b.add({ op: 'prctl', option: PR.PR_SET_DUMPABLE, arg2: 1, trace: 'prctl(PR_SET_DUMPABLE, 1)', what: 'let husk write the id maps' });
    b.add({ op: 'notify', message: Msg.UserMaps, trace: 'notify(parent, user maps) and wait', what: 'write the uid and gid maps' });
    if (unprivileged) b.add({ op: 'prctl', option: PR.PR_SET_DUMPABLE, arg2: 0, trace: 'prctl(PR_SET_DUMPABLE, 0)', what: 'make stage 1 non-dumpable again' });
    if (!userMaps.plan.denySetgroups) b.add({ op: 'setgroups', groups: [], trace: 'setgroups(0, [])', what: 'clear supplementary groups in the user namespace' });
    becomeNamespaceRoot(b, false);
  }
  // A new time namespace: CLONE_NEWTIME shares its bit with clone()'s exit signal, so stage 1
  // unshares it (its children enter it) and sets the clock offsets, which the kernel only
  // takes before any process is inside.
  if (isNew('time')) {
    b.add({ op: 'unshare', flags: CLONE.CLONE_NEWTIME, trace: 'unshare(CLONE_NEWTIME)', what: 'create the time namespace' });
    const offsets = Object.entries(linux.timeOffsets ?? {}).map(([clock, o]) => `${clock} ${o?.secs ?? 0} ${o?.nanosecs ?? 0}`);
    if (offsets.length) {
      const text = offsets.join('\n') + '\n';
      b.add({ op: 'writeFile', path: '/proc/self/timens_offsets', contents: text, trace: `write("/proc/self/timens_offsets", ${q(text)})`, what: 'set the time namespace offsets' });
    }
  }
  let cloneFlags = 0;
  for (const n of namespaces) if (!n.path && n.type !== 'cgroup' && n.type !== 'user' && n.type !== 'time') cloneFlags |= NAMESPACES[n.type].flag;
  b.add(cloneStep(cloneFlags, opts.cgroupFd));

  // The init. (Stage 1 made itself non-dumpable before its first step, and the init
  // inherits that until execve: see native/addon.cc.)
  b.add({ op: 'setsid', trace: 'setsid()', what: 'start a new session' });
  if (!opts.noNewKeyring && opts.id) {
    b.add({ op: 'joinSessionKeyring', name: opts.id, trace: `keyctl(KEYCTL_JOIN_SESSION_KEYRING, ${q(opts.id)})`, what: 'create a session keyring' });
  }
  if (isNew('cgroup')) b.add({ op: 'unshare', flags: CLONE.CLONE_NEWCGROUP, trace: 'unshare(CLONE_NEWCGROUP)', what: 'create the cgroup namespace' });
  if (isNew('network')) b.add({ op: 'linkUp', ifname: 'lo', trace: 'ioctl(SIOCSIFFLAGS, "lo", IFF_UP)', what: 'bring up the loopback interface' });
  // (oomScoreAdj is written by the parent: lowering it needs a capability the init may not
  // have inside a user namespace.)

  // The root filesystem, prepared while the host's paths are still reachable.
  const hasMountNs = namespaces.some((n) => n.type === 'mount');
  const rootPropagation = linux.rootfsPropagation ? parseMountOptions([linux.rootfsPropagation]).propagation[0] : undefined;
  if (hasMountNs) {
    b.add(mountStep(null, '/', null, MS.MS_SLAVE | MS.MS_REC, null));
    const parentMount = host.mountPointOf(path.dirname(opts.rootfs));
    b.add(mountStep(null, parentMount, null, MS.MS_PRIVATE, null));
    b.add(mountStep(opts.rootfs, opts.rootfs, null, MS.MS_BIND | MS.MS_REC, null));
  } else {
    // No mount namespace: the container shares husk's (the runtime spec: a namespace not
    // listed is inherited), as runc allows. Its mounts go into the host's mount table, on a
    // bind of the rootfs made private so that none of them propagates; delete detaches that
    // bind and everything on it (src/linux/hostMounts.ts). Nothing of the host's own mount
    // tree changes: "/" is not made a slave, and root.readonly and rootfsPropagation apply to
    // that bind, which is the container's "/" after chroot. (Masked and read-only paths are
    // refused in src/spec/validate.ts, as runc does.)
    if (opts.noPivot) throw new HuskError('--no-pivot needs a private mount namespace (linux.namespaces has none)');
    b.add(mountStep(opts.rootfs, opts.rootfs, null, MS.MS_BIND | MS.MS_REC, null));
    b.add(mountStep(null, opts.rootfs, null, MS.MS_PRIVATE | MS.MS_REC, null));
  }
  b.add({ op: 'openRoot', path: opts.rootfs, trace: `open(${q(opts.rootfs)}, O_PATH|O_DIRECTORY)`, what: `open rootfs ${q(opts.rootfs)}` });

  const mounts = spec.mounts ?? [];
  mounts.forEach((m, i) => configMount({ b, opts, host, isNew }, m, i));

  // /dev: unless the host's /dev is bound in, make the standard nodes and links.
  const devIsBind = mounts.some((m) => path.posix.normalize(m.destination) === '/dev' && (m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind')));
  if (!devIsBind) {
    const configured = linux.devices ?? [];
    const devices = [
      ...DEFAULT_DEVICES.filter((d) => !configured.some((c) => c.path === d.path)).map((d) => ({ ...d, type: 'c', fileMode: 0o666, uid: 0, gid: 0 })),
      ...configured,
    ];
    // mknod is not allowed inside a user namespace (nor to a non-root husk): there the
    // host's device nodes are bound in instead.
    const bindDevices = namespaces.some((n) => n.type === 'user') || host.euid !== 0;
    for (const d of devices) {
      if (bindDevices) {
        if (host.isDirectory(d.path) !== false) throw new HuskError(`config.json: linux.devices: ${q(d.path)} does not exist on the host, so it cannot be bound into a user namespace`);
        b.add(mountStep(d.path, d.path, null, MS.MS_BIND, null, { inRoot: true, create: 2 }));
        continue;
      }
      const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
      const mode = kind | ((d.fileMode ?? 0o666) & 0o7777);
      b.add({
        op: 'mknod', path: d.path, inRoot: true, okErrno: EEXIST,
        mode, major: d.major ?? 0, minor: d.minor ?? 0, uid: d.uid ?? 0, gid: d.gid ?? 0,
        trace: `mknod(${q(d.path)}, ${d.type === 'b' ? 'S_IFBLK' : d.type === 'p' ? 'S_IFIFO' : 'S_IFCHR'}|0${((d.fileMode ?? 0o666) & 0o7777).toString(8)}, makedev(${d.major ?? 0}, ${d.minor ?? 0}))`,
        what: `create device ${q(d.path)}`,
      });
    }
    for (const [target, link] of DEV_SYMLINKS) {
      if (configured.some((c) => c.path === link)) continue;
      b.add({ op: 'symlink', target, linkpath: link, inRoot: true, okErrno: EEXIST, trace: `symlink(${q(target)}, ${q(link)})`, what: `create symlink ${q(link)}` });
    }
  }

  const cwd = process.cwd || '/';
  b.add({ op: 'mkdir', path: cwd, inRoot: true, trace: `mkdir(${q(cwd)})`, what: `create working directory ${q(cwd)}` });
  if (opts.execFifo) {
    b.add({ op: 'openExecFifo', fd: opts.execFifo.fd, trace: `keep fd ${opts.execFifo.fd} (${q(opts.execFifo.path)}, O_PATH) and open("/proc", O_PATH)`, what: `open exec fifo ${q(opts.execFifo.path)}` });
  }
  const hooks = spec.hooks ?? {};
  const pausesForHooks = Boolean(hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length);
  if (pausesForHooks) {
    b.add({ op: 'notify', message: Msg.Hooks, trace: 'notify(parent, hooks) and wait', what: 'run createRuntime and createContainer hooks' });
  }

  // The switch to the new root.
  if (!hasMountNs) {
    // pivot_root or a move over "/" would change the host's root: the process is chrooted.
    b.add(chrootStep(opts.rootfs));
  } else if (opts.noPivot) {
    b.add({ op: 'moveRoot', path: opts.rootfs, trace: `mount(${q(opts.rootfs)}, "/", NULL, MS_MOVE, NULL); chroot(".")`, what: `move rootfs ${q(opts.rootfs)} to /` });
  } else {
    b.add({ op: 'pivotRoot', path: opts.rootfs, trace: `pivot_root(".", ".") in ${q(opts.rootfs)}; umount2(".", MNT_DETACH)`, what: `pivot_root to ${q(opts.rootfs)}` });
  }
  if (rootPropagation !== undefined) b.add(mountStep(null, '/', null, rootPropagation, null));

  if (process.terminal) {
    const uid = process.user?.uid ?? 0;
    const gid = process.user?.gid ?? 0;
    const rows = process.consoleSize?.height ?? 0;
    const cols = process.consoleSize?.width ?? 0;
    b.add({ op: 'console', path: '/dev/console', rows, cols, uid, gid, trace: `open("/dev/ptmx"); ioctl(TIOCGPTPEER); mount(pts, "/dev/console", MS_BIND); ioctl(0, TIOCSCTTY)`, what: 'set up the terminal' });
  }
  if (spec.hostname !== undefined) b.add({ op: 'sethostname', name: spec.hostname, trace: `sethostname(${q(spec.hostname)})`, what: `set hostname ${q(spec.hostname)}` });
  if (spec.domainname !== undefined) b.add({ op: 'setdomainname', name: spec.domainname, trace: `setdomainname(${q(spec.domainname)})`, what: `set domainname ${q(spec.domainname)}` });
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    const file = '/proc/sys/' + key.replace(/\./g, '/');
    b.add({ op: 'writeFile', path: file, contents: value, why: notProcfs(file), trace: `write(${q(file)}, ${q(value)})`, what: `set sysctl ${key}` });
  }
  for (const p of linux.readonlyPaths ?? []) {
    b.add(mountStep(p, p, null, MS.MS_BIND | MS.MS_REC, null, { okErrno: ENOENT }));
    b.add({ op: 'remountReadonly', path: p, flags: MS.MS_REC, okErrno: ENOENT, trace: `mount(NULL, ${q(p)}, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|MS_REC, NULL)`, what: `make ${q(p)} read-only` });
  }
  for (const p of linux.maskedPaths ?? []) {
    b.add({ op: 'maskPath', path: p, okErrno: ENOENT, trace: `mount("/dev/null" or "tmpfs", ${q(p)}, ..., MS_BIND or MS_RDONLY)`, what: `mask ${q(p)}` });
  }
  // Security modules: applied at execve through /proc/self/attr/exec; refused where the host
  // does not have the module (a profile asked for is never dropped silently).
  if (process.apparmorProfile) {
    if (!host.securityModules.includes('apparmor')) throw new HuskError(`config.json: process.apparmorProfile ${q(process.apparmorProfile)}: AppArmor is not enabled on this host`);
    b.add({ op: 'writeFile', path: '/proc/self/attr/apparmor/exec', contents: `exec ${process.apparmorProfile}`, why: notProcfs('/proc/self/attr/apparmor/exec'), trace: `write("/proc/self/attr/apparmor/exec", ${q('exec ' + process.apparmorProfile)})`, what: `set AppArmor profile ${q(process.apparmorProfile)}` });
  }
  if (process.selinuxLabel) {
    if (!host.securityModules.includes('selinux')) throw new HuskError(`config.json: process.selinuxLabel ${q(process.selinuxLabel)}: SELinux is not enabled on this host`);
    b.add({ op: 'writeFile', path: '/proc/self/attr/exec', contents: process.selinuxLabel, why: notProcfs('/proc/self/attr/exec'), trace: `write("/proc/self/attr/exec", ${q(process.selinuxLabel)})`, what: `set SELinux label ${q(process.selinuxLabel)}` });
  }
  if (linux.mountLabel && !host.securityModules.includes('selinux')) {
    throw new HuskError(`config.json: linux.mountLabel ${q(linux.mountLabel)}: SELinux is not enabled on this host`);
  }
  if (linux.personality) {
    const domains: Record<string, number> = { LINUX: 0x0000, LINUX32: 0x0008 };
    const value = domains[linux.personality.domain];
    if (value === undefined) throw new HuskError(`config.json: linux.personality.domain ${q(linux.personality.domain)}: only LINUX and LINUX32 are supported`);
    if (linux.personality.flags?.length) throw new HuskError(`config.json: linux.personality.flags: no personality flags are supported (got ${linux.personality.flags.join(', ')})`);
    b.add({ op: 'personality', persona: value, trace: `personality(${linux.personality.domain === 'LINUX32' ? 'PER_LINUX32' : 'PER_LINUX'})`, what: `set personality ${linux.personality.domain}` });
  }
  if (spec.root?.readonly) {
    b.add({ op: 'remountReadonly', path: '/', trace: 'mount(NULL, "/", NULL, MS_BIND|MS_REMOUNT|MS_RDONLY, NULL)', what: 'remount the rootfs read-only' });
  }

  const warnings: string[] = [];
  const debug: string[] = [];
  processSteps(b, process, {
    env: processEnv(process, opts.rootfs, host), cwd, stdio: opts.stdio, preserveFds: opts.preserveFds, execFifo: opts.execFifo,
    denySetgroups: Boolean(userMaps?.plan.denySetgroups), host, warnings, seccomp: compiledSeccomp(spec, warnings, debug),
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
  for (const type of JOIN_ORDER) {
    if (!types.has(type)) continue;
    if (type === 'user' && opts.containerUserNamespace === opts.ownUserNamespace) continue;
    const kind = NAMESPACES[type];
    const file = `/proc/${opts.initPid}/ns/${kind.file}`;
    b.add({ op: 'setns', path: file, nstype: kind.flag, trace: `setns(open(${q(file)}), ${kind.flagName})`, what: `join the container's ${type} namespace` });
  }
  b.add(cloneStep(0));
  // Without a mount namespace of its own the container shares husk's: a process joining it
  // goes into its root as the init did (runc's would stay in the host's).
  if (!types.has('mount')) b.add(chrootStep(`/proc/${opts.initPid}/root`));
  if (process.terminal) {
    const rows = process.consoleSize?.height ?? 0;
    const cols = process.consoleSize?.width ?? 0;
    b.add({ op: 'setsid', trace: 'setsid()', what: 'start a new session' });
    b.add({ op: 'console', rows, cols, uid: process.user?.uid ?? 0, gid: process.user?.gid ?? 0, trace: 'open("/dev/ptmx"); ioctl(TIOCGPTPEER); ioctl(0, TIOCSCTTY)', what: 'set up the terminal' });
  }
  if (process.apparmorProfile) {
    if (!host.securityModules.includes('apparmor')) throw new HuskError(`process.apparmorProfile ${q(process.apparmorProfile)}: AppArmor is not enabled on this host`);
    b.add({ op: 'writeFile', path: '/proc/self/attr/apparmor/exec', contents: `exec ${process.apparmorProfile}`, why: notProcfs('/proc/self/attr/apparmor/exec'), trace: `write("/proc/self/attr/apparmor/exec", ${q('exec ' + process.apparmorProfile)})`, what: `set AppArmor profile ${q(process.apparmorProfile)}` });
  }
  if (process.selinuxLabel) {
    if (!host.securityModules.includes('selinux')) throw new HuskError(`process.selinuxLabel ${q(process.selinuxLabel)}: SELinux is not enabled on this host`);
    b.add({ op: 'writeFile', path: '/proc/self/attr/exec', contents: process.selinuxLabel, why: notProcfs('/proc/self/attr/exec'), trace: `write("/proc/self/attr/exec", ${q(process.selinuxLabel)})`, what: `set SELinux label ${q(process.selinuxLabel)}` });
  }
  const warnings: string[] = [];
  const debug: string[] = [];
  processSteps(b, process, {
    env: processEnv(process, opts.rootfs, host), cwd: process.cwd || '/', stdio: opts.stdio, preserveFds: opts.preserveFds,
    denySetgroups: Boolean(opts.setgroupsDenied), host, warnings, seccomp: compiledSeccomp(spec, warnings, debug),
  });
  return { steps: b.steps, trace: Boolean(opts.trace), pausesForHooks: false, warnings, debug };
}
