// --explain: the steps --trace prints, in words, for someone learning how a container is made.
//
// One table: every kind of step husk takes, the plan's ops (src/native/steps.ts) and husk's own
// steps in the parent (state file, cgroup files, hooks, the exec fifo...), with the phase of
// `docker run` it belongs to, one sentence saying why it is there and what would go wrong
// without it, the man page to read, and how one step of that kind reads in words.
// test/unit/explain.test.ts fails when an op of native/plan.h has no entry here.
//
// The steps of a call are held back and printed grouped in phases, in the order each phase
// has in `docker run`, just before the container's process runs (and the rest at the end of the
// call); inside a phase they keep the order in which they happened.
import { isatty } from 'tty';
import type { StepOp } from '../native/steps';
import { call } from '../host/call';
import type { Explainer, TraceEvent } from '../host/trace';
import { Msg } from '../native/sync';
import { CAPABILITIES } from './capabilities';
import { MS, PR, S_IFBLK, S_IFCHR, S_IFIFO } from './constants';
import { MOUNT_ATTR } from './mountOptions';
import { NAMESPACES } from './namespaces';
import type { PlanStep } from './planStep';
import { RLIMITS } from './rlimits';
import { SECCOMP_FILTER_FLAG } from './seccomp/abi';

/** The phases of `docker run`, in order; `cleanup` is what happens after the process exits. */
export const PHASES = {
  image: 'Image: find the image and unpack its layers',
  bundle: 'Bundle: the container\'s directory, its state and its exec fifo',
  cgroup: 'Cgroup: a group of processes the kernel counts and limits',
  namespaces: 'Namespaces: the container\'s own view of processes, network, hostname and mounts',
  rootfs: 'Root filesystem: mounts, then pivot_root into the image',
  devices: 'Devices: the few device files the container may use',
  security: 'Security: capabilities, seccomp and no_new_privs',
  user: 'User: become the container\'s user',
  exec: 'Exec: start the container\'s program',
  cleanup: 'Cleanup: remove what the container left behind',
} as const;

export type Phase = keyof typeof PHASES;

/** One kind of step: where it belongs, why it is there, what to read, and one step in words. */
export interface Explanation<E> {
  phase: Phase | ((e: E) => Phase);
  /** One plain sentence: why husk takes this step, and what would go wrong without it. */
  why: string;
  /** The man page to read, as `pivot_root(2)`. */
  man: string;
  /** The step in words (no system call syntax), without its result. */
  say(e: E): string;
}

type StepOf<O extends StepOp> = Extract<PlanStep, { op: O }>;

// ---- Numbers and flags in words ----------------------------------------------------------

const n = (v: number | bigint | undefined) => Number(v ?? 0);
const quote = (s: string | null | undefined) => `"${s ?? ''}"`;

/** A user id in words: "root (uid 0)", "uid 1000". */
export function uidWords(uid: number | bigint | undefined): string {
  return n(uid) === 0 ? 'root (uid 0)' : `uid ${n(uid)}`;
}

/** A group id in words: "root (gid 0)", "gid 100". */
export function gidWords(gid: number | bigint | undefined): string {
  return n(gid) === 0 ? 'root (gid 0)' : `gid ${n(gid)}`;
}

function list(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** A capability mask in words: "3 capabilities (CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE)". */
export function capabilityWords(mask: number | bigint | undefined): string {
  const bits = BigInt(mask ?? 0);
  const names = CAPABILITIES.filter((_, bit) => (bits >> BigInt(bit)) & 1n);
  if (names.length === 0) return 'no capabilities';
  if (names.length === CAPABILITIES.length) return `all ${names.length} capabilities`;
  return `${names.length} ${names.length === 1 ? 'capability' : 'capabilities'} (${names.join(', ')})`;
}

/** Namespace names of CLONE_NEW* flags: ["mount", "uts", "pid"]. */
export function namespaceWords(flags: number): string[] {
  return Object.entries(NAMESPACES).filter(([, k]) => (flags & k.flag) !== 0).map(([name]) => name);
}

const MOUNT_OPTION_WORDS: [number, string][] = [
  [MS.MS_RDONLY, 'read-only'],
  [MS.MS_NOSUID, 'set-user-ID bits ignored'],
  [MS.MS_NODEV, 'device files unusable'],
  [MS.MS_NOEXEC, 'no programs run from it'],
  [MS.MS_NOSYMFOLLOW, 'symbolic links not followed'],
  [MS.MS_NOATIME, 'access times never written'],
  [MS.MS_STRICTATIME, 'access times always written'],
];

function optionWords(flags: number, data: string | null | undefined): string {
  const words = MOUNT_OPTION_WORDS.filter(([bit]) => (flags & bit) !== 0).map(([, w]) => w);
  if (data) words.push(`options ${data.split(',').join(', ')}`);
  return words.length ? ` (${words.join('; ')})` : '';
}

/** A mount(2) call in words: "a recursive bind mount of "/a" on "/b"", "a new proc filesystem on "/proc"". */
export function mountWords(source: string | null | undefined, target: string | null | undefined,
  fstype: string | null | undefined, flags: number, data?: string | null): string {
  const recursive = (flags & MS.MS_REC) !== 0;
  const propagation = ([[MS.MS_SLAVE, 'a slave: mounts made on the host still appear here, none made here go back'],
    [MS.MS_PRIVATE, 'private: no mount or unmount crosses between here and the host'],
    [MS.MS_SHARED, 'shared with its peers'],
    [MS.MS_UNBINDABLE, 'unbindable']] as const).find(([bit]) => (flags & bit) !== 0);
  if (propagation) {
    return `make ${recursive ? 'every mount under ' : 'the mount at '}${quote(target)} ${propagation[1]}`;
  }
  if (flags & MS.MS_REMOUNT) {
    const rest = optionWords(flags & ~MS.MS_RDONLY, data);
    return `${flags & MS.MS_RDONLY ? 'make' : 'change'} ${quote(target)}${recursive ? ' and every mount under it' : ''}`
      + `${flags & MS.MS_RDONLY ? ' read-only' : ' options'}${rest}`;
  }
  if (flags & MS.MS_MOVE) return `move the mount at ${quote(source)} to ${quote(target)}`;
  if (flags & MS.MS_BIND) {
    return `${recursive ? 'a recursive bind mount' : 'a bind mount'} of ${quote(source)} on ${quote(target)}`
      + `${source === target ? ' (itself: now a mount point of its own)' : ''}${optionWords(flags, data)}`;
  }
  const named = source && source !== fstype ? ` named ${quote(source)}` : '';
  return `a new ${fstype ?? 'unknown'} filesystem${named} on ${quote(target)}${optionWords(flags, data)}`;
}

const DEVICE_NAMES: Record<string, string> = {
  '1:3': 'the null device', '1:5': 'the zero device', '1:7': 'the full device', '1:8': 'the random device',
  '1:9': 'the urandom device', '5:0': 'the controlling terminal', '5:1': 'the console', '5:2': 'the pty multiplexer',
  '10:200': 'the tun/tap device', '10:229': 'the fuse device',
};

function permissionWords(mode: number): string {
  const perm = mode & 0o777;
  if (perm === 0o666) return 'readable and writable by everyone';
  if (perm === 0o600) return 'readable and writable by its owner only';
  return `permissions ${perm.toString(8).padStart(4, '0')}`;
}

const RLIMIT_WORDS: Record<string, string> = {
  RLIMIT_NOFILE: 'open files', RLIMIT_NPROC: 'processes of its user', RLIMIT_CORE: 'the size of a core dump',
  RLIMIT_STACK: 'the stack size', RLIMIT_AS: 'the address space', RLIMIT_MEMLOCK: 'locked memory',
  RLIMIT_CPU: 'CPU seconds', RLIMIT_FSIZE: 'the size of a file it writes', RLIMIT_DATA: 'the data segment',
};

function limitWords(v: number | bigint | undefined): string {
  return BigInt(v ?? 0) >= 0xffffffffffffffffn || n(v) === -1 ? 'unlimited' : String(v);
}

const PROCESS_FD = ['standard input', 'standard output', 'standard error'];

// ---- The plan's ops ------------------------------------------------------------------------

/** Every op of native/plan.h, explained. */
export const STEP_EXPLANATIONS: { [O in StepOp]: Explanation<StepOf<O>> } = {
  cloneInit: {
    phase: 'namespaces',
    why: 'The container\'s first process is cloned with new namespaces, so from its first instruction it sees its own process tree (with a pid namespace, it is PID 1 there), hostname, IPC and mounts; without them it would see and touch everything on the host.',
    man: 'clone(2), namespaces(7)',
    say: (s) => {
      const names = namespaceWords(n(s.flags));
      const into = s.intoCgroup ? ', straight into its cgroup' : '';
      return names.length ? `start the container's init in new ${list(names)} namespaces${into}`
        : `start the process as a new child (a joined pid namespace holds only the children of who joined it)${into}`;
    },
  },
  notify: {
    phase: 'namespaces',
    why: 'The init pauses and tells husk, which runs the hooks (often the network setup) while the namespaces exist but the container\'s program has not started; without the pause a hook would race the container.',
    man: 'runtime-spec config.md#posix-platform-hooks',
    say: (s) => (n(s.message) === Msg.Hooks ? 'pause while husk runs the createRuntime and createContainer hooks' : 'pause and wait for husk'),
  },
  setsid: {
    phase: 'exec',
    why: 'A new session makes the init the leader of its own session, detached from the terminal husk was called from; without it a Ctrl-C or hang-up meant for husk\'s terminal would reach the container.',
    man: 'setsid(2)',
    say: () => 'start a new session led by the init',
  },
  prctl: {
    phase: (s) => (n(s.option) === PR.PR_SET_NO_NEW_PRIVS ? 'security' : 'user'),
    why: 'prctl sets process attributes: no_new_privs makes sure no set-user-ID program can ever give the process more privileges, and keepcaps keeps its capabilities while it changes to the container\'s user (it would lose them all otherwise).',
    man: 'prctl(2)',
    say: (s) => {
      const on = n(s.arg2) ? 'on' : 'off';
      if (n(s.option) === PR.PR_SET_NO_NEW_PRIVS) return 'set no_new_privs: nothing it executes can gain privileges';
      if (n(s.option) === PR.PR_SET_KEEPCAPS) return `turn keeping capabilities across a change of user ${on}`;
      return `set process attribute ${n(s.option)} to ${n(s.arg2)}`;
    },
  },
  joinSessionKeyring: {
    phase: 'security',
    why: 'A keyring of its own keeps the kernel keys of the host (and of other containers) out of the container\'s reach; without it the container would share the session keyring of whoever started husk.',
    man: 'keyrings(7)',
    say: (s) => `join a new session keyring named ${quote(s.name)}`,
  },
  setns: {
    phase: 'namespaces',
    why: 'Joining an existing namespace puts the process in the same view as another one (a pod\'s network, or the running container for exec); without it the process would stay in husk\'s view of the host.',
    man: 'setns(2)',
    say: (s) => {
      const kind = namespaceWords(n(s.nstype))[0] ?? 'the';
      return `join the ${kind} namespace at ${quote(s.path)}`;
    },
  },
  unshare: {
    phase: 'namespaces',
    why: 'Some namespaces are made after the clone, when the process is already in place (the cgroup namespace after it joined its cgroup, so that its own cgroup looks like the root); made earlier it would show the host\'s cgroup paths.',
    man: 'unshare(2)',
    say: (s) => `create a new ${list(namespaceWords(n(s.flags)))} namespace`,
  },
  linkUp: {
    phase: 'namespaces',
    why: 'A new network namespace starts with only a loopback interface, and that one is down; without bringing it up, even 127.0.0.1 would not answer inside the container.',
    man: 'network_namespaces(7), netdevice(7)',
    say: (s) => `bring up the network interface ${quote(s.ifname)}`,
  },
  openRoot: {
    phase: 'rootfs',
    why: 'The root filesystem is opened once and every later path is resolved inside it (openat2 RESOLVE_IN_ROOT); without it a symbolic link planted in the image could send a mount to the host\'s /etc.',
    man: 'openat2(2)',
    say: (s) => `open the root filesystem ${quote(s.path)}; later paths are resolved inside it`,
  },
  mkdir: {
    phase: 'rootfs',
    why: 'Directories the config needs (a mount point, the working directory) are made inside the root filesystem when the image lacks them; without them the mount or chdir would fail.',
    man: 'mkdir(2)',
    say: (s) => `create the directory ${quote(s.path)} inside the root filesystem`,
  },
  mount: {
    phase: 'rootfs',
    why: 'Mounts build the container\'s file tree in its own mount namespace: /proc for its processes, /dev, /sys, and the bind mounts the config asks for; without them the programs in the container would find no /proc and no /dev, and none of it would be hidden from the host.',
    man: 'mount(2), mount_namespaces(7)',
    say: (s) => mountWords(s.source, s.target, s.fstype, n(s.flags), s.data),
  },
  copyUpMount: {
    phase: 'rootfs',
    why: 'A tmpfs mounted over a directory of the image would hide what the image put there; copying it in first (tmpcopyup) keeps those files while writes go to memory.',
    man: 'tmpfs(5)',
    say: (s) => `${mountWords(s.source, s.target, s.fstype, n(s.flags), s.data)}, with what the directory held copied in`,
  },
  mountSetattr: {
    phase: 'rootfs',
    why: 'mount_setattr changes the options of a whole tree of mounts at once (recursive read-only, nosuid...); a plain remount would change only the top mount and leave the ones below it writable.',
    man: 'mount_setattr(2)',
    say: (s) => {
      const words = (bits: number) => ([[MOUNT_ATTR.RDONLY, 'read-only'], [MOUNT_ATTR.NOSUID, 'set-user-ID bits ignored'],
        [MOUNT_ATTR.NODEV, 'device files unusable'], [MOUNT_ATTR.NOEXEC, 'no programs run'],
        [MOUNT_ATTR.NOSYMFOLLOW, 'symbolic links not followed']] as const).filter(([b]) => bits & b).map(([, w]) => w);
      const set = words(n(s.attrSet));
      const clear = words(n(s.attrClr));
      return `make every mount under ${quote(s.path)}${set.length ? ' ' + set.join(', ') : ''}${clear.length ? ', and no longer ' + clear.join(', ') : ''}`;
    },
  },
  moveMount: {
    phase: 'rootfs',
    why: 'An id-mapped mount is prepared by husk outside the container and attached here, so files owned by the host\'s ids show up with the container\'s ids; without it they would appear owned by nobody.',
    man: 'move_mount(2), mount_setattr(2)',
    say: (s) => `attach the id-mapped mount husk prepared on ${quote(s.toPath)}`,
  },
  remountReadonly: {
    phase: 'rootfs',
    why: 'Remounting read-only keeps the container from writing where the config says it must not (a read-only root, /proc/sys); without it a process in the container could change those files.',
    man: 'mount(2)',
    say: (s) => `make ${quote(s.path)}${n(s.flags) & MS.MS_REC ? ' and every mount under it' : ''} read-only`,
  },
  maskPath: {
    phase: 'security',
    why: 'Masking hides files of /proc and /sys that tell about or control the host (kernel memory, keys, timers) behind an empty read-only mount; without it the container could read host secrets there.',
    man: 'proc(5)',
    say: (s) => `hide ${quote(s.path)} (an empty read-only directory over a directory, /dev/null over a file)`,
  },
  mknod: {
    phase: 'devices',
    why: 'Only a short list of device files is created in the container\'s own /dev, so it can use the null device or a terminal but not the host\'s disks; without them many programs fail, with the host\'s /dev it could reach the hardware.',
    man: 'mknod(2), devices in the runtime-spec',
    say: (s) => {
      const mode = n(s.mode);
      const type = (mode & 0o170000) === S_IFBLK ? 'block device' : (mode & 0o170000) === S_IFIFO ? 'fifo'
        : (mode & 0o170000) === S_IFCHR ? 'character device' : 'file';
      const name = DEVICE_NAMES[`${n(s.major)}:${n(s.minor)}`];
      const owner = n(s.uid) || n(s.gid) ? `, owned by ${uidWords(s.uid)} and ${gidWords(s.gid)}` : '';
      return `create the ${type} ${quote(s.path)} (number ${n(s.major)}, ${n(s.minor)}${name ? ': ' + name : ''}), ${permissionWords(mode)}${owner}`;
    },
  },
  symlink: {
    phase: 'devices',
    why: 'The usual links of /dev (/dev/fd, /dev/stdin, /dev/ptmx...) point into /proc and /dev/pts; without them shells and programs that open /dev/stdin or a new terminal fail.',
    man: 'symlink(2)',
    say: (s) => `link ${quote(s.linkpath)} to ${quote(s.target)}`,
  },
  pivotRoot: {
    phase: 'rootfs',
    why: 'pivot_root makes the image\'s root filesystem "/" and detaches the host\'s old root entirely; without it (a plain chroot) the host\'s files would still be mounted in the namespace and a process could escape back to them.',
    man: 'pivot_root(2)',
    say: (s) => `make ${quote(s.path)} the root "/" and detach the host's old root`,
  },
  moveRoot: {
    phase: 'rootfs',
    why: 'With --no-pivot (a root filesystem on a ramdisk, where pivot_root is not possible) the root is moved over "/" and chrooted into; weaker than pivot_root, as the old root stays underneath.',
    man: 'mount(2), chroot(2)',
    say: (s) => `move ${quote(s.path)} over "/" and change the root to it`,
  },
  chroot: {
    phase: 'rootfs',
    why: 'Without a mount namespace of its own (or for exec into a container), changing the root is the way to give the process the container\'s files as "/"; without it the process would see the host\'s files.',
    man: 'chroot(2)',
    say: (s) => `change the root directory to ${quote(s.path)}`,
  },
  chdir: {
    phase: 'exec',
    why: 'The process starts in the working directory the config names (process.cwd); without it it would start wherever the init happened to be.',
    man: 'chdir(2)',
    say: (s) => `change to the working directory ${quote(s.path)}`,
  },
  writeFile: {
    phase: (s) => (s.path?.startsWith('/proc/sys/') ? 'namespaces' : 'security'),
    why: 'Some settings are files: sysctls under /proc/sys (for the container\'s own namespaces) and the security label of the next exec; without the write the container would run with the defaults.',
    man: 'sysctl(8), proc(5)',
    say: (s) => (s.path?.startsWith('/proc/sys/')
      ? `set the kernel setting ${s.path.slice('/proc/sys/'.length).replace(/\//g, '.')} to ${quote(s.contents)}`
      : `write ${quote(s.contents)} into ${quote(s.path)}`),
  },
  sethostname: {
    phase: 'namespaces',
    why: 'The container has its own UTS namespace, so it can have its own hostname without renaming the host.',
    man: 'sethostname(2), uts_namespaces(7)',
    say: (s) => `set the hostname to ${quote(s.name)}`,
  },
  setdomainname: {
    phase: 'namespaces',
    why: 'Like the hostname, the NIS domain name belongs to the container\'s UTS namespace and is set for it alone.',
    man: 'setdomainname(2)',
    say: (s) => `set the domain name to ${quote(s.name)}`,
  },
  setrlimit: {
    phase: 'exec',
    why: 'Resource limits (process.rlimits) cap what one process may take, open files for example; without them it would inherit husk\'s.',
    man: 'setrlimit(2)',
    say: (s) => {
      const name = Object.entries(RLIMITS).find(([, v]) => v === n(s.resource))?.[0];
      const what = (name && RLIMIT_WORDS[name]) ?? (name ? name.replace('RLIMIT_', '').toLowerCase() : `resource ${n(s.resource)}`);
      return `limit ${what} to ${limitWords(s.soft)} (at most ${limitWords(s.hard)})`;
    },
  },
  umask: {
    phase: 'user',
    why: 'The file creation mask decides the permissions of the files the process makes; without setting it the container would inherit husk\'s.',
    man: 'umask(2)',
    say: (s) => `set the file creation mask to ${n(s.mask).toString(8).padStart(4, '0')}`,
  },
  personality: {
    phase: 'exec',
    why: 'The execution domain lets a 64-bit host tell 32-bit programs they run on a 32-bit machine (uname shows i686); without it such a program may refuse to run.',
    man: 'personality(2)',
    say: (s) => (n(s.persona) === 0x0008 ? 'run as 32-bit Linux' : 'run as plain Linux'),
  },
  setgroups: {
    phase: 'user',
    why: 'The supplementary groups are replaced by the config\'s (process.user.additionalGids); without it the process would keep husk\'s groups, root\'s included.',
    man: 'setgroups(2)',
    say: (s) => (s.groups?.length ? `set the supplementary groups to ${list(s.groups.map(gidWords))}` : 'drop every supplementary group'),
  },
  setresgid: {
    phase: 'user',
    why: 'The process takes the group the config names (process.user.gid) before its user, while it still may; without it it would keep husk\'s group.',
    man: 'setresgid(2)',
    say: (s) => `take the group ${gidWords(s.gid)}`,
  },
  setresuid: {
    phase: 'user',
    why: 'The process becomes the user the config names (process.user.uid); without it, it would stay whoever started husk, root on most hosts.',
    man: 'setresuid(2), credentials(7)',
    say: (s) => `become the user ${uidWords(s.uid)}`,
  },
  dropBounding: {
    phase: 'security',
    why: 'The bounding set is the most capabilities the process and anything it runs can ever get; dropping all but the config\'s list means even root in the container, or a set-user-ID program, cannot get CAP_SYS_ADMIN back.',
    man: 'capabilities(7)',
    say: (s) => `keep only ${capabilityWords(s.keep)} in the bounding set, drop every other`,
  },
  capset: {
    phase: 'security',
    why: 'Root\'s power is split into capabilities; the process keeps only the few the config lists (killing its own processes, binding low ports...), so root in the container cannot load kernel modules or mount filesystems.',
    man: 'capset(2), capabilities(7)',
    say: (s) => {
      const sets: [string, bigint][] = [['effective', BigInt(s.effective ?? 0)], ['permitted', BigInt(s.permitted ?? 0)],
        ['inheritable', BigInt(s.inheritable ?? 0)], ['ambient', BigInt(s.ambient ?? 0)]];
      const groups = new Map<bigint, string[]>();
      for (const [name, mask] of sets) groups.set(mask, [...(groups.get(mask) ?? []), name]);
      return 'set the capabilities: ' + [...groups].map(([mask, names]) => `${list(names)}: ${capabilityWords(mask)}`).join('; ');
    },
  },
  console: {
    phase: 'exec',
    why: 'With process.terminal the container gets a terminal of its own (a pseudo-terminal), its side as the process\'s stdin, stdout and stderr and husk\'s side sent to the caller; without it an interactive shell would have no job control.',
    man: 'pty(7)',
    say: (s) => `make a pseudo-terminal (${n(s.cols)} columns, ${n(s.rows)} rows)${s.path ? ` and bind it on ${quote(s.path)}` : ''}; it becomes the process's terminal`,
  },
  dup2: {
    phase: 'exec',
    why: 'The container\'s standard input, output and error are set to what husk was given (pipes or files); without it the process would write into the wrong place.',
    man: 'dup2(2)',
    say: (s) => `make fd ${n(s.oldfd)} its ${PROCESS_FD[n(s.newfd)] ?? `fd ${n(s.newfd)}`}`,
  },
  closeFds: {
    phase: 'security',
    why: 'Every file husk had open beyond the standard ones is closed on exec; without it a leaked fd of the host (a directory, CVE-2024-21626) would let the container reach host files.',
    man: 'close_range(2)',
    say: (s) => `close every file descriptor from ${n(s.first)} up when the program starts`,
  },
  openExecFifo: {
    phase: 'bundle',
    why: 'The init keeps a handle on the exec fifo before pivot_root hides the host\'s files; without it the init could not wait for `husk start`.',
    man: 'fifo(7)',
    say: (s) => `keep the exec fifo open (fd ${n(s.fd)}) to wait on later`,
  },
  openExec: {
    phase: 'exec',
    why: 'A hook\'s program is opened where husk runs, before entering the container, so that the path means the host\'s file; opened after, it would name a file of the container.',
    man: 'execveat(2)',
    say: (s) => `open the program ${quote(s.path)}`,
  },
  findExecutable: {
    phase: 'exec',
    why: 'The program is looked up in the container\'s PATH, inside its own root filesystem, as a shell would; without it a bare name like "sh" could not be run.',
    man: 'execvp(3)',
    say: (s) => {
      const candidates = s.candidates ?? [];
      if (candidates.length === 1) return `check that ${quote(candidates[0])} can be executed`;
      const base = candidates[0]?.split('/').pop() ?? '';
      return `look for ${quote(base)} in ${candidates.length} directories of PATH`;
    },
  },
  seccomp: {
    phase: 'security',
    why: 'A seccomp filter makes the kernel check every system call of the container against a list, refusing the dangerous ones (loading modules, rebooting, kexec); it goes in last, just before exec, so that husk\'s own setup calls are not refused.',
    man: 'seccomp(2)',
    say: (s) => {
      const flags = n(s.flags);
      const extra = [flags & SECCOMP_FILTER_FLAG.TSYNC ? 'for every thread' : '', flags & SECCOMP_FILTER_FLAG.LOG ? 'logging what it refuses' : '',
        flags & SECCOMP_FILTER_FLAG.NEW_LISTENER ? 'with a notification fd for an agent' : ''].filter(Boolean);
      return `install a seccomp filter of ${(s.filter?.length ?? 0) / 8} instructions${extra.length ? ' ' + extra.join(', ') : ''}`;
    },
  },
  waitExecFifo: {
    phase: 'exec',
    why: 'Everything is ready: the init tells husk and blocks on the exec fifo, so that `husk create` can return and the engine can prepare the network before `husk start` lets the program run.',
    man: 'fifo(7)',
    say: () => 'tell husk it is ready, and wait on the exec fifo for `husk start`',
  },
  exec: {
    phase: 'exec',
    why: 'execve replaces the init with the container\'s program, which keeps the pid (PID 1 when the container has its own pid namespace), the namespaces, the cgroup and the restrictions set above.',
    man: 'execve(2)',
    say: (s) => `execute ${quote(s.argv?.[0])}`,
  },
};

// ---- husk's own steps, in the parent --------------------------------------------------------

type Fields = Record<string, unknown>;
const str = (v: unknown) => String(v ?? '');
const file = (p: unknown) => str(p).split('/').pop() ?? '';
const hookPhase = (e: Fields): Phase => (e.hook === 'poststop' ? 'cleanup' : e.hook === 'poststart' || e.hook === 'startContainer' ? 'exec' : 'namespaces');

/** The steps husk takes itself, by the kind its trace() calls give them. */
export const HOST_EXPLANATIONS: Record<string, Explanation<Fields>> = {
  execFifo: {
    phase: 'bundle',
    why: 'The exec fifo splits `create` from `start`: the init blocks opening it until `husk start` opens the other end; without it the program would run as soon as the container was made.',
    man: 'mkfifo(3), fifo(7)',
    say: (e) => `make the exec fifo ${quote(str(e.path))} in the container's state directory`,
  },
  stateFile: {
    phase: 'bundle',
    why: 'The state file records the container (its pid, with the pid\'s start time, its bundle, its status) so that later calls (`state`, `kill`, `delete`) find it; without it husk would forget the container as soon as it returned.',
    man: 'runtime-spec runtime.md#state',
    say: (e) => `record the container in ${quote(str(e.path))}: status ${str(e.status)}, init pid ${str(e.pid)}`,
  },
  stage1: {
    phase: 'namespaces',
    why: 'A first child (stage 1) prepares what must happen before the container\'s namespaces exist (joining namespaces by path, a new user namespace) and clones the init; it makes itself non-dumpable first, so no process of the container can read its memory.',
    man: 'clone(2), prctl(2) PR_SET_DUMPABLE',
    say: (e) => `clone the first child (stage 1)${e.byDoor ? ' from husk\'s front door' : ''}`,
  },
  initInCgroup: {
    phase: 'cgroup',
    why: 'clone3 with CLONE_INTO_CGROUP starts the init already inside its cgroup, so not one of its instructions runs outside the limits.',
    man: 'clone3(2)',
    say: () => 'the init started inside its cgroup directory already',
  },
  cgroupMkdir: {
    phase: 'cgroup',
    why: 'A cgroup is a directory in the cgroup filesystem: the container gets its own, so the kernel can count and limit its memory, CPU and processes, and freeze or kill them all at once; without it the container could use up the host.',
    man: 'cgroups(7)',
    say: (e) => `create the cgroup directory ${quote(str(e.dir))}`,
  },
  cgroupWrite: {
    phase: (e) => (file(e.file).startsWith('devices.') ? 'devices' : 'cgroup'),
    why: 'Writing a cgroup\'s files sets its limits (memory.max, pids.max, devices.allow...) and moves processes into it (cgroup.procs); the kernel then enforces them on every process inside.',
    man: 'cgroups(7)',
    say: (e) => {
      const name = file(e.file);
      const failed = e.errno ? ` (refused: ${str(e.errno)})` : '';
      if (name === 'cgroup.procs') return `move process ${str(e.value)} into the cgroup ${quote(str(e.file).slice(0, -name.length - 1))}${failed}`;
      if (name === 'devices.deny' && e.value === 'a') return `deny every device in ${quote(str(e.file))}${failed}`;
      if (name === 'devices.allow') return `allow the device rule "${str(e.value)}" in ${quote(str(e.file))}${failed}`;
      return `set ${name} to ${quote(str(e.value))} in ${quote(str(e.file).slice(0, -name.length - 1))}${failed}`;
    },
  },
  cgroupRmdir: {
    phase: 'cleanup',
    why: 'The container\'s cgroup is removed once its processes are gone; left behind, empty cgroups would pile up on the host.',
    man: 'cgroups(7)',
    say: (e) => `remove the cgroup directory ${quote(str(e.dir))}`,
  },
  devicesProgram: {
    phase: 'devices',
    why: 'On cgroup v2 the device rules are a small BPF program attached to the cgroup: the kernel runs it on every open of a device file, so the container cannot open a disk even if it made one.',
    man: 'bpf(2), cgroups(7)',
    say: (e) => (e.action === 'load' ? `load the device rules as a BPF program of ${str(e.instructions)} instructions`
      : e.action === 'attach' ? `attach it to the cgroup ${quote(str(e.dir))}` : `detach the previous device program from ${quote(str(e.dir))}`),
  },
  systemdStart: {
    phase: 'cgroup',
    why: 'With --systemd-cgroup, systemd owns the cgroup tree: husk asks it (over D-Bus) for a transient scope unit with the container\'s limits and Delegate=yes, and systemd makes the cgroup and puts the init in it; writing the cgroup behind systemd\'s back would be undone the next time systemd reorganises its tree.',
    man: 'systemd.scope(5), systemd.resource-control(5)',
    say: (e) => `ask systemd to start the scope ${quote(str(e.unit))} with the container's limits`,
  },
  systemdSet: {
    phase: 'cgroup',
    why: '`update` with --systemd-cgroup changes the unit\'s properties through systemd, so that systemd keeps the new limits (it would put back the old ones otherwise), then writes the cgroup files as well.',
    man: 'systemctl(1) set-property, systemd.resource-control(5)',
    say: (e) => `set the properties of ${quote(str(e.unit))}`,
  },
  busctl: {
    phase: 'cgroup',
    why: 'husk talks to systemd with busctl, systemd\'s own D-Bus client: one short process per call, which marshals exactly what systemd expects.',
    man: 'busctl(1)',
    say: (e) => `busctl ${Array.isArray(e.args) ? (e.args as string[]).join(' ') : ''} (exit ${str(e.status)})`,
  },
  oomScoreAdj: {
    phase: 'cgroup',
    why: 'The OOM score adjustment tells the kernel whom to kill first when memory runs out; without it the container would share husk\'s.',
    man: 'proc(5) oom_score_adj',
    say: (e) => `set the init's OOM score adjustment to ${str(e.value)}`,
  },
  idMapWrite: {
    phase: 'namespaces',
    why: 'A user namespace\'s id maps say which host ids the container\'s ids are (root inside may be an ordinary user outside); without them every id in the container would be "nobody".',
    man: 'user_namespaces(7)',
    say: (e) => (str(e.file).endsWith('/setgroups') ? `turn setgroups off in the new user namespace (${quote(str(e.file))}), as the kernel requires before an unprivileged gid map`
      : `map ids in ${quote(str(e.file))}: ${str(e.map).split('\n').map((l) => { const [inside, outside, count] = l.trim().split(/\s+/); return `${count} from ${inside} inside to ${outside} outside`; }).join('; ')}`),
  },
  idMapHelper: {
    phase: 'namespaces',
    why: 'Without root, the id maps are written by the set-user-ID helpers newuidmap and newgidmap, which check /etc/subuid and /etc/subgid.',
    man: 'newuidmap(1), subuid(5)',
    say: (e) => `run ${str(e.program)} to write the id maps`,
  },
  idmappedMount: {
    phase: 'rootfs',
    why: 'An id-mapped mount is cloned and given the container\'s id map by husk, then attached inside by the init.',
    man: 'open_tree(2), mount_setattr(2)',
    say: (e) => `prepare an id-mapped copy of the mount ${quote(str(e.source))}`,
  },
  hook: {
    phase: hookPhase,
    why: 'OCI hooks are programs the config asks husk to run at fixed points (creating the network, registering the container); without them an engine could not set up what the container needs.',
    man: 'runtime-spec config.md#posix-platform-hooks',
    say: (e) => `run the ${str(e.hook)} hook ${quote(str(e.path))}${e.inContainer ? ' inside the container\'s namespaces' : ''}`,
  },
  ownHook: {
    phase: hookPhase,
    why: 'A hook that names husk itself is done in husk\'s own process, not by starting another husk.',
    man: 'runtime-spec config.md#posix-platform-hooks',
    say: (e) => `do the ${str(e.hook)} hook (husk's own \`${str(e.verb)}\`) in this process`,
  },
  seccompListener: {
    phase: 'security',
    why: 'A seccomp notify fd lets an agent outside the container decide on some system calls; husk hands it to the agent\'s socket.',
    man: 'seccomp_unotify(2)',
    say: (e) => `send the seccomp notification fd to ${quote(str(e.path))}`,
  },
  consoleSocket: {
    phase: 'exec',
    why: 'The terminal\'s master side is sent to the engine\'s console socket, so the engine, not husk, relays the terminal.',
    man: 'unix(7) SCM_RIGHTS',
    say: (e) => `send the terminal to ${quote(str(e.path))}`,
  },
  start: {
    phase: 'exec',
    why: '`husk start` opens the exec fifo: the init, blocked on it, wakes and calls execve, which replaces it with the container\'s program (keeping its pid, PID 1 in its own pid namespace, its namespaces, cgroup and restrictions).',
    man: 'fifo(7), execve(2)',
    say: (e) => `open the exec fifo ${quote(str(e.path))}: the init executes the container's program`,
  },
  kill: {
    phase: 'exec',
    why: 'Signals reach the container\'s processes by their pids on the host; `--all` signals every process of its cgroup.',
    man: 'kill(2), signal(7)',
    say: (e) => `send signal ${str(e.signal)} to ${e.all ? 'every process of the container' : `the init (pid ${str(e.pid)})`}`,
  },
  registryRequest: {
    phase: 'image',
    why: 'An image lives in a registry as a manifest (the list of its layers and its config, by digest) and blobs, fetched over HTTPS with the registry\'s API; husk asks for the manifest first, then each blob it does not have yet.',
    man: 'OCI distribution-spec',
    say: (e) => {
      const url = new URL(str(e.url));
      const manifest = url.pathname.match(/^\/v2\/(.+)\/manifests\/(.+)$/);
      const blob = url.pathname.match(/^\/v2\/(.+)\/blobs\/(.+)$/);
      if (manifest) return `ask ${url.host} for the manifest of ${manifest[1]}:${decodeURIComponent(manifest[2])}`;
      if (blob) return `download the blob ${decodeURIComponent(blob[2])} of ${blob[1]} from ${url.host}`;
      if (url.pathname === '/v2/') return `ask ${url.host} whether it speaks the registry API and how to log in`;
      return `${e.method === 'GET' ? 'ask' : 'send'} ${url.host} ${url.pathname}`;
    },
  },
  registryToken: {
    phase: 'image',
    why: 'Most registries answer a pull with "401, get a token": husk asks the token service for a token good for pulling this repository only, anonymously or with your saved login, and sends it with every request.',
    man: 'Docker registry token authentication',
    say: (e) => `get a token from ${str(e.url)} to ${e.scope ? `pull ${str(e.scope).split(':')[1] ?? ''}` : 'log in'}${e.user ? ` as ${str(e.user)}` : ' (anonymous)'}`,
  },
  blobVerified: {
    phase: 'image',
    why: 'Every blob is named by the SHA-256 of its bytes: husk hashes what it downloaded and keeps it only if the digest matches, so a registry or a proxy cannot slip in other content.',
    man: 'OCI image-spec descriptor.md#digests',
    say: (e) => `check and keep ${str(e.digest)} (${str(e.size)} bytes): its SHA-256 is the one the manifest names`,
  },
  layerUnpacked: {
    phase: 'image',
    why: 'A layer is a tar of the files it adds or changes; husk unpacks each into a directory of its own, turning whiteouts (.wh. files) into what overlayfs reads as "deleted here", and never writes outside the layer.',
    man: 'OCI image-spec layer.md, overlayfs',
    say: (e) => `unpack the layer ${str(e.diffID)} (${str(e.entries)} entries)`,
  },
  overlayMount: {
    phase: 'bundle',
    why: 'The container\'s root filesystem is an overlay: the image\'s layers stacked read-only, with an empty upper directory above them that takes every write, so many containers share one copy of the image and none changes it.',
    man: 'overlayfs (Documentation/filesystems/overlayfs.rst), fsopen(2)',
    say: (e) => `mount an overlay of ${str(e.layers)} ${e.layers === 1 ? 'layer' : 'layers'} on ${quote(str(e.target))}, writes going to ${quote(str(e.upperdir))}`,
  },
  unmount: {
    phase: 'cleanup',
    why: 'The bundle\'s overlay is unmounted when the container is removed; left mounted it would keep the layers busy.',
    man: 'umount(2)',
    say: (e) => `unmount ${quote(str(e.target))}`,
  },
  copyUpAttributes: {
    phase: 'bundle',
    why: 'A directory a layer only passed through (the tar did not list it) gets the owner and mode the lower layer gave it, as overlayfs would show it; otherwise it would appear owned by root with default permissions.',
    man: 'chown(2), chmod(2)',
    say: (e) => `give ${quote(str(e.target))} the owner, mode and times of the lower layer`,
  },
  bundleRemoved: {
    phase: 'cleanup',
    why: 'The bundle husk made from the image (overlay, config.json, /etc/hosts...) is removed with the container; the image itself stays in the store.',
    man: 'runtime-spec bundle.md',
    say: (e) => `remove the bundle ${quote(str(e.bundle))}`,
  },
  network: {
    phase: 'namespaces',
    why: 'A network namespace starts with no way out; CNI plugins give it an interface (a veth pair to a bridge), an address and routes.',
    man: 'network_namespaces(7), veth(4)',
    say: (e) => `network: ${str(e.line)}`,
  },
};

/** Every kind of step, the plan's ops and husk's own. */
export const EXPLANATIONS: Record<string, Explanation<any>> = { ...HOST_EXPLANATIONS, ...STEP_EXPLANATIONS };

// ---- The explainer of one call --------------------------------------------------------------

interface Held {
  phase: Phase;
  kind: string;
  who: string;
  words: string;
}

const WHO: Record<string, string> = { husk: 'husk', door: 'husk', stage1: 'stage 1', init: 'init' };

/** Colours (bold headings, dim man pages) only for a terminal, and not with NO_COLOR. */
export function wantsColour(fd = call.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  return isatty(fd) && env.NO_COLOR === undefined;
}

/** The words of one step, and its phase; a step husk gives no event for is described plainly. */
export function describeStep(event: TraceEvent | undefined): { kind: string; phase: Phase; words: string } | undefined {
  if (!event) return undefined;
  const isStep = event.kind === 'step';
  const step = isStep ? (event.step as PlanStep) : undefined;
  const kind = step ? step.op : event.kind;
  const explanation = EXPLANATIONS[kind];
  if (!explanation) return undefined;
  const data = step ?? event;
  const phase = typeof explanation.phase === 'function' ? explanation.phase(data) : explanation.phase;
  let words = explanation.say(data);
  if (step && kind === 'findExecutable' && typeof event.value === 'number') {
    const found = step.op === 'findExecutable' ? step.candidates?.[event.value] : undefined;
    if (found) words += `: found ${quote(found)}`;
  }
  if (step && kind === 'cloneInit' && typeof event.value === 'number') words += ` (pid ${event.value} on the host)`;
  if (event.errno) words += `: failed, ${str(event.message ?? event.errno)} (${str(event.errno)})`;
  return { kind, phase, words };
}

/** The explainer for one call: it holds the steps back and prints them grouped in phases. */
export function explainer(write: (text: string) => void, colour: boolean): Explainer {
  const bold = (s: string) => (colour ? `\x1b[1m${s}\x1b[0m` : s);
  const dim = (s: string) => (colour ? `\x1b[2m${s}\x1b[0m` : s);
  const explained = new Set<string>();
  const phases = Object.keys(PHASES) as Phase[];
  let held: Held[] = [];
  let lastPhase: Phase | undefined;
  return {
    step(who, line, event) {
      const described = describeStep(event);
      // A step with no words yet still shows, under the phase of the step before it.
      const d = described ?? { kind: '', phase: held[held.length - 1]?.phase ?? lastPhase ?? 'bundle', words: `another step: ${line}` };
      held.push({ ...d, who: WHO[who] ?? who });
    },
    flush() {
      const order = held.map((h, i) => [h, i] as const)
        .sort(([a, i], [b, j]) => phases.indexOf(a.phase) - phases.indexOf(b.phase) || i - j);
      held = [];
      let out = '';
      for (const [h] of order) {
        if (h.phase !== lastPhase) {
          out += `\n${bold(`== ${PHASES[h.phase]} ==`)}\n`;
          lastPhase = h.phase;
        }
        if (h.kind && !explained.has(h.kind)) {
          explained.add(h.kind);
          const e = EXPLANATIONS[h.kind];
          out += `  ${e.why} ${dim(`[man ${e.man}]`)}\n`;
        }
        out += `    ${h.who.padEnd(7)} ${h.words}\n`;
      }
      if (out) write(out);
    },
  };
}
