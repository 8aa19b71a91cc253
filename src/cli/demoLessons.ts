// The lessons of `husk demo LESSON`: each one runs the probe in two containers whose config.json
// differ only in one kind of isolation, and says what the kernel did differently. A lesson is
// data: how it changes the spec for each side, what the probe does, how to read what it printed,
// and the check that the difference it claims is really there (so the demo cannot show a lesson
// that did not happen).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { HuskError } from '../errors';
import type { Spec } from '../spec/types';

/** What one side's container printed and how it ended. */
export interface SideRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The directory of this side's bundle (the overlay lesson keeps its layers next to it). */
  dir: string;
}

/** What a lesson read from one side: plain-word lines for people, facts for --json and tests. */
export interface Observation {
  lines: string[];
  facts: Record<string, unknown>;
}

export interface HostView {
  namespaces: Record<string, string>;
  hostname: string;
}

export interface Lesson {
  name: string;
  /** One line for the list `husk demo` prints. */
  summary: string;
  /** Headings of the two columns: the isolation on, then off. */
  labels: [isolated: string, shared: string];
  /** Changes the default demo spec (which has every namespace but user) for one side. */
  configure(spec: Spec, isolated: boolean, dir: string): void;
  /** Prepares files the side's bundle needs beside its rootfs (before the run). */
  prepare?(dir: string): void;
  /** Undoes what prepare made outside the side's directory (called for each side, even after a failure). */
  release?(dir: string): void;
  /** The probe's command line. */
  probe: string[];
  /** Which exit statuses of `husk run` are part of the lesson (default: only 0). */
  expectsFailure?(isolated: boolean): boolean;
  observe(run: SideRun, isolated: boolean, host: HostView): Observation;
  /** Why the two sides differ, or null when they do not differ as the lesson claims. */
  check(isolated: Observation['facts'], shared: Observation['facts'], host: HostView): string | null;
  /** One or two sentences: what the kernel did. */
  kernel: string;
}

function withoutNamespace(spec: Spec, type: string) {
  spec.linux!.namespaces = (spec.linux!.namespaces ?? []).filter((n) => n.type !== type);
}

function words(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '');
}

/** The probe's `syscall NAME` line: "NAME = 3" or "NAME = -1 EPERM". */
function syscallResult(stdout: string, name: string): string | null {
  const line = words(stdout).find((l) => l.startsWith(`${name} = `));
  if (!line) return null;
  const value = line.slice(name.length + 3);
  return value.startsWith('-1 ') ? value.slice(3) : 'ok';
}

function list(items: string[], max = 8): string {
  if (items.length <= max) return items.join(' ');
  return `${items.slice(0, max).join(' ')} ... (${items.length - max} more)`;
}

const pid: Lesson = {
  name: 'pid',
  summary: 'a pid namespace: the container\'s first process is PID 1 and sees only its own processes',
  labels: ['with a pid namespace', 'without (the host\'s)'],
  configure(spec, isolated) {
    if (!isolated) withoutNamespace(spec, 'pid');
  },
  probe: ['pid', 'then', 'ls', '/proc'],
  observe(run) {
    const [self, ...entries] = words(run.stdout);
    const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number).sort((a, b) => a - b);
    return {
      lines: [`its own pid: ${self}`, `processes in /proc: ${pids.length}`, `  ${list(pids.map(String), 6)}`],
      facts: { pid: Number(self), processes: pids.length, pids },
    };
  },
  check(isolated, shared) {
    if (isolated.pid !== 1) return `the isolated probe is pid ${isolated.pid}, not 1`;
    if (shared.pid === 1) return 'the probe without a pid namespace is pid 1 too';
    if ((shared.processes as number) <= (isolated.processes as number)) return 'the host\'s process list is not longer';
    return null;
  },
  kernel: 'clone(CLONE_NEWPID) started the container\'s init as PID 1 of a new pid namespace; the proc file system '
    + 'mounted inside lists only that namespace\'s processes, so `ps` in a container shows PID 1 and little else.',
};

const mount: Lesson = {
  name: 'mount',
  summary: 'a mount namespace: the container gets a mount table of its own, made from the bundle',
  labels: ['with a mount namespace', 'without (the host\'s)'],
  configure(spec, isolated) {
    if (isolated) return;
    // Masked and read-only paths need a mount namespace of their own (runc's rule); without
    // one, husk chroots into the rootfs and makes the container's mounts in the host's table
    // (and takes them away again when the container is deleted).
    withoutNamespace(spec, 'mount');
    spec.linux!.maskedPaths = [];
    spec.linux!.readonlyPaths = [];
  },
  probe: ['readlink', '/proc/self/ns/mnt', 'then', 'cat', '/proc/self/mountinfo'],
  observe(run, _isolated, host) {
    const [namespace, ...table] = words(run.stdout);
    const mounts = table.map((l) => l.split(' ')[4]);
    return {
      lines: [
        `mount namespace: ${namespace}`,
        namespace === host.namespaces.mnt ? 'the host\'s: its mounts are the host\'s' : 'a new one: its mounts are its own',
        `mounts it sees: ${mounts.length}`,
        `  ${list(mounts, 5)}`,
      ],
      facts: { namespace, sameAsHost: namespace === host.namespaces.mnt, mounts },
    };
  },
  check(isolated, shared) {
    if (isolated.sameAsHost) return 'the isolated side is in the host\'s mount namespace';
    if (!shared.sameAsHost) return 'the side without a mount namespace is not in the host\'s';
    return null;
  },
  kernel: 'clone(CLONE_NEWNS) gave the container a copy of the host\'s mount table; husk mounted /proc, /dev, ... '
    + 'in it, pivot_root made the bundle\'s rootfs its / and the old root was unmounted, so nothing it mounts '
    + 'reaches the host. Without one, the same mounts are made in the host\'s table and the process is only chrooted.',
};

const net: Lesson = {
  name: 'net',
  summary: 'a network namespace: the container has only a loopback interface',
  labels: ['with a network namespace', 'without (the host\'s)'],
  configure(spec, isolated) {
    if (!isolated) withoutNamespace(spec, 'network');
  },
  probe: ['report'],
  observe(run) {
    const report = JSON.parse(run.stdout);
    const interfaces = (report.interfaces ?? []) as { name: string; up: boolean; addresses: string[] }[];
    return {
      lines: [`interfaces: ${interfaces.length}`, ...interfaces.slice(0, 6).map((i) => `  ${i.name}${i.up ? '' : ' (down)'} ${i.addresses.join(' ')}`)],
      facts: { interfaces: interfaces.map((i) => i.name), namespace: report.namespaces?.net ?? null },
    };
  },
  check(isolated, shared, host) {
    const names = isolated.interfaces as string[];
    if (names.length !== 1 || names[0] !== 'lo') return `the isolated side sees ${names.join(', ') || 'no interface'}, not only lo`;
    if (shared.namespace !== host.namespaces.net) return 'the side without a network namespace is not in the host\'s';
    if ((shared.interfaces as string[]).length < 2) return 'the host has no interface but lo, so the two sides look alike';
    return null;
  },
  kernel: 'clone(CLONE_NEWNET) made a network namespace with nothing in it but a loopback device; a runtime or CNI '
    + 'plugin must move or create an interface (a veth) in it before the container can reach anything.',
};

const uts: Lesson = {
  name: 'uts',
  summary: 'a UTS namespace: the container has its own hostname',
  labels: ['with a UTS namespace', 'without (the host\'s)'],
  configure(spec, isolated) {
    if (!isolated) {
      withoutNamespace(spec, 'uts');
      delete spec.hostname;
    }
  },
  probe: ['hostname'],
  observe(run) {
    const hostname = words(run.stdout)[0] ?? '';
    return { lines: [`hostname: ${hostname}`], facts: { hostname } };
  },
  check(isolated, shared, host) {
    if (isolated.hostname !== 'husk-demo') return `the isolated hostname is ${isolated.hostname}, not husk-demo`;
    if (shared.hostname !== host.hostname) return `the shared hostname is ${shared.hostname}, not the host's ${host.hostname}`;
    return null;
  },
  kernel: 'clone(CLONE_NEWUTS) gave the container its own copy of the host and domain names, and sethostname(2) '
    + 'set "husk-demo" (config.json\'s hostname) in that copy only.',
};

/**
 * The file that keeps the id of the System V shared memory segment the ipc lesson makes on the
 * host: one segment for both sides, in the lesson's directory (the parent of each side's bundle).
 */
function hostSegmentFile(sideDir: string): string {
  return path.join(path.dirname(sideDir), 'host-shm-id');
}

/** The shmids listed in /proc/sysvipc/shm (the ipc namespace of the process that reads it). */
function segmentIds(table: string[]): number[] {
  return table.slice(1).map((l) => Number(l.trim().split(/\s+/)[1])).filter((n) => Number.isInteger(n));
}

const ipc: Lesson = {
  name: 'ipc',
  summary: 'an IPC namespace: System V IPC objects and POSIX message queues of its own',
  labels: ['with an IPC namespace', 'without (the host\'s)'],
  configure(spec, isolated) {
    if (!isolated) withoutNamespace(spec, 'ipc');
  },
  prepare(dir) {
    if (fs.existsSync(hostSegmentFile(dir))) return;
    // ipcmk (util-linux) makes a 4 KiB segment in the host's ipc namespace; Node has no shmget.
    const made = spawnSync('ipcmk', ['-M', '4096'], { encoding: 'utf8' });
    const id = /Shared memory id: (\d+)/.exec(made.stdout ?? '')?.[1];
    if (made.status !== 0 || id === undefined) {
      throw new HuskError(`ipcmk -M 4096 could not make a shared memory segment on the host: ${(made.stderr || made.error?.message || '').trim()}`);
    }
    fs.writeFileSync(hostSegmentFile(dir), id);
  },
  release(dir) {
    const file = hostSegmentFile(dir);
    if (!fs.existsSync(file)) return;
    spawnSync('ipcrm', ['-m', fs.readFileSync(file, 'utf8').trim()], { stdio: 'ignore' });
    fs.rmSync(file, { force: true });
  },
  probe: ['readlink', '/proc/self/ns/ipc', 'then', 'cat', '/proc/sysvipc/shm'],
  observe(run, _isolated, host) {
    const [namespace, ...table] = words(run.stdout);
    const hostSegment = Number(fs.readFileSync(hostSegmentFile(run.dir), 'utf8'));
    const ids = segmentIds(table);
    const seesHostSegment = ids.includes(hostSegment);
    return {
      lines: [
        `ipc namespace: ${namespace}`,
        `${namespace === host.namespaces.ipc ? 'the host\'s' : 'a new one'} (the host's is ${host.namespaces.ipc})`,
        `shared memory segments: ${ids.length}`,
        `the host's segment ${hostSegment}: ${seesHostSegment ? 'seen' : 'not there'}`,
      ],
      facts: { namespace, sameAsHost: namespace === host.namespaces.ipc, segments: ids.length, seesHostSegment },
    };
  },
  check(isolated, shared) {
    if (isolated.sameAsHost) return 'the isolated side is in the host\'s ipc namespace';
    if (!shared.sameAsHost) return 'the side without an ipc namespace is not in the host\'s';
    if (isolated.seesHostSegment || isolated.segments !== 0) return 'the isolated side sees shared memory segments of the host';
    if (!shared.seesHostSegment) return 'the side without an ipc namespace does not see the host\'s segment';
    return null;
  },
  kernel: 'clone(CLONE_NEWIPC) gave the container empty tables of System V shared memory, semaphores and message '
    + 'queues, and its own POSIX message queue file system: the segment made on the host (ipcmk -M, a shmget(2)) '
    + 'is listed in /proc/sysvipc/shm only without the namespace, so with one the container cannot reach it by key.',
};

const user: Lesson = {
  name: 'user',
  summary: 'a user namespace: root inside is an unprivileged uid outside',
  labels: ['with a user namespace', 'without (the host\'s ids)'],
  configure(spec, isolated) {
    if (!isolated) return;
    spec.linux!.namespaces!.push({ type: 'user' });
    spec.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    spec.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  },
  probe: ['id', 'then', 'cat', '/proc/self/uid_map', 'then', 'stat', '/probe'],
  observe(run) {
    const lines = words(run.stdout);
    const id = lines[0];
    const uidMap = lines[1].trim().split(/\s+/).map(Number);
    const owner = JSON.parse(lines[lines.length - 1]).uid as number;
    return {
      lines: [id, `uid_map: inside ${uidMap[0]} = outside ${uidMap[1]} (${uidMap[2]} ids)`, `/probe (root's on the host) is owned by ${owner}`],
      facts: { uid: Number(/uid=(\d+)/.exec(id)?.[1]), uidMap, probeOwner: owner },
    };
  },
  check(isolated, shared) {
    const map = isolated.uidMap as number[];
    if (isolated.uid !== 0 || map[1] !== 100000) return 'the isolated side is not root mapped to uid 100000';
    if (isolated.probeOwner !== 65534) return `the host's root shows as ${isolated.probeOwner} inside, not as the overflow uid 65534`;
    if ((shared.uidMap as number[])[1] !== 0 || shared.probeOwner !== 0) return 'the side without a user namespace does not have the host\'s ids';
    return null;
  },
  kernel: 'clone(CLONE_NEWUSER) and the uid_map husk wrote made uid 0 inside be uid 100000 outside: the kernel checks '
    + 'permissions as 100000, and shows ids with no mapping (the host\'s root) as the overflow uid 65534 (nobody).',
};

const MEMORY_LIMIT = 32 << 20;

const cgroup: Lesson = {
  name: 'cgroup',
  summary: 'a memory cgroup: the kernel kills the container when it goes over its limit',
  labels: ['memory limit 32 MiB', 'no limit'],
  configure(spec, isolated) {
    if (isolated) spec.linux!.resources = { ...spec.linux!.resources, memory: { limit: MEMORY_LIMIT, swap: MEMORY_LIMIT } };
  },
  probe: ['hog-memory', '64'],
  expectsFailure: (isolated) => isolated,
  observe(run) {
    const allocated = words(run.stdout).filter((l) => l.startsWith('allocated ')).map((l) => Number(l.split(' ')[1]));
    const done = words(run.stdout).includes('done');
    const killed = run.status === 128 + 9;
    return {
      lines: [
        'allocates and touches 64 MiB',
        `allocated: ${allocated.length ? allocated[allocated.length - 1] : 0} MiB or more`,
        done ? 'finished' : killed ? 'killed by SIGKILL' : `exit status ${run.status}`,
      ],
      facts: { finished: done, killed, exitStatus: run.status, allocatedMiB: allocated[allocated.length - 1] ?? 0 },
    };
  },
  check(isolated, shared) {
    if (!isolated.killed || isolated.finished) return 'the container under the limit was not killed';
    if (!shared.finished) return 'the container without a limit did not finish';
    return null;
  },
  kernel: 'husk made a memory cgroup with this limit (memory.limit_in_bytes on cgroup v1, memory.max on v2) and put '
    + 'the container in it; when its pages went over the limit and none could be reclaimed, the OOM killer sent SIGKILL.',
};

const caps: Lesson = {
  name: 'caps',
  summary: 'capabilities: root in a container lacks CAP_SYS_ADMIN, so sethostname(2) is refused',
  labels: ['runc\'s default capabilities', 'plus CAP_SYS_ADMIN'],
  configure(spec, isolated) {
    if (isolated) return;
    for (const set of ['bounding', 'effective', 'permitted'] as const) spec.process!.capabilities![set]!.push('CAP_SYS_ADMIN');
  },
  probe: ['cap-check', 'CAP_SYS_ADMIN', 'then', 'syscall', 'sethostname', 'renamed', 'then', 'hostname'],
  observe(run) {
    const [capability, , hostname] = words(run.stdout);
    const result = syscallResult(run.stdout, 'sethostname');
    return {
      lines: [`uid 0 with ${capability}`, `sethostname("renamed"): ${result === 'ok' ? 'done' : `-1 ${result}`}`, `hostname now: ${hostname}`],
      facts: { capSysAdmin: capability.endsWith(' yes'), sethostname: result, hostname },
    };
  },
  check(isolated, shared) {
    if (isolated.capSysAdmin || isolated.sethostname !== 'EPERM') return `the isolated side's sethostname gave ${isolated.sethostname}, not EPERM`;
    if (!shared.capSysAdmin || shared.sethostname !== 'ok') return `the side with CAP_SYS_ADMIN could not sethostname: ${shared.sethostname}`;
    return null;
  },
  kernel: 'husk dropped every capability not in config.json with capset(2) and PR_CAPBSET_DROP before execve; '
    + 'sethostname(2) checks CAP_SYS_ADMIN and returned EPERM, even to uid 0.',
};

const seccomp: Lesson = {
  name: 'seccomp',
  summary: 'a seccomp filter: a system call is refused with EPERM before the kernel runs it',
  labels: ['with a seccomp filter', 'without'],
  configure(spec, isolated) {
    if (!isolated) return;
    spec.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['keyctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    };
  },
  probe: ['syscall', 'keyctl', 'then', 'report'],
  observe(run) {
    const result = syscallResult(run.stdout, 'keyctl');
    const report = JSON.parse(words(run.stdout).slice(1).join('\n'));
    return {
      lines: [`keyctl(JOIN_SESSION_KEYRING): ${result === 'ok' ? 'done' : `-1 ${result}`}`, `seccomp mode ${report.seccomp} (${['off', 'strict', 'filter'][report.seccomp] ?? '?'})`],
      facts: { keyctl: result, seccompMode: report.seccomp },
    };
  },
  check(isolated, shared) {
    if (isolated.keyctl !== 'EPERM') return `the filtered keyctl gave ${isolated.keyctl}, not EPERM`;
    if (shared.keyctl !== 'ok') return `keyctl without the filter failed: ${shared.keyctl}`;
    return null;
  },
  kernel: 'husk compiled linux.seccomp into a BPF program and loaded it with seccomp(SECCOMP_SET_MODE_FILTER) just '
    + 'before execve; the program answered keyctl with errno 1 (EPERM) without running it. Docker refuses keyctl '
    + 'this way because the kernel\'s keyrings are not namespaced.',
};

/** The overlay lesson's layers, beside the side's bundle. */
function layers(dir: string) {
  return { lower: path.join(dir, 'lower'), upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
}

const overlay: Lesson = {
  name: 'overlay',
  summary: 'an overlay mount: what the container writes lands in the upper layer, the image stays unchanged',
  labels: ['/data is an overlay', '/data is the lower dir'],
  prepare(dir) {
    const { lower, upper, work } = layers(dir);
    for (const d of [lower, upper, work]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(lower, 'from-the-image'), 'a file of the lower layer\n');
    fs.mkdirSync(path.join(dir, 'rootfs', 'data'));
  },
  configure(spec, isolated, dir) {
    const { lower, upper, work } = layers(dir);
    spec.mounts!.push(isolated
      ? { destination: '/data', type: 'overlay', source: 'overlay', options: [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`] }
      : { destination: '/data', type: 'bind', source: lower, options: ['rbind', 'rw'] });
  },
  probe: ['write', '/data/written-inside', 'written in the container\n', 'then', 'ls', '/data'],
  observe(run, _isolated) {
    const { lower, upper } = layers(run.dir);
    const seen = words(run.stdout);
    const lowerFiles = fs.readdirSync(lower).sort();
    const upperFiles = fs.readdirSync(upper).sort();
    return {
      lines: [`it sees in /data: ${seen.join(' ')}`, `lower dir on the host: ${lowerFiles.join(' ')}`, `upper dir on the host: ${upperFiles.join(' ') || '(empty)'}`],
      facts: { inside: seen, lower: lowerFiles, upper: upperFiles },
    };
  },
  check(isolated, shared) {
    const both = ['from-the-image', 'written-inside'];
    if (JSON.stringify(isolated.inside) !== JSON.stringify(both)) return 'the container does not see both layers\' files in the overlay';
    if (JSON.stringify(isolated.lower) !== JSON.stringify(['from-the-image'])) return 'the write through the overlay changed the lower dir';
    if (JSON.stringify(isolated.upper) !== JSON.stringify(['written-inside'])) return 'the write through the overlay is not in the upper dir';
    if (!(shared.lower as string[]).includes('written-inside')) return 'the write without an overlay is not in the lower dir';
    return null;
  },
  kernel: 'mount(2) of type overlay merged the read-only lower dir and the writable upper dir into one tree; a new '
    + 'file is created in the upper dir (a changed one is copied up first), so the lower layer, like an image\'s '
    + 'layers, is never written.',
};

export const LESSONS: Lesson[] = [pid, mount, net, uts, ipc, user, cgroup, caps, seccomp, overlay];

/** One line of a config.json difference: the path, and the value only one side has. */
export interface ConfigChange {
  side: 'isolated' | 'shared';
  path: string;
  value: unknown;
}

/**
 * The difference between the two sides' specs, as the lines a reader would change in
 * config.json. Arrays are compared as sets of their items (a namespace removed from the middle
 * of linux.namespaces is one change, not a shift of every later item).
 */
export function specDiff(isolated: unknown, shared: unknown, at = ''): ConfigChange[] {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (same(isolated, shared)) return [];
  if (Array.isArray(isolated) && Array.isArray(shared)) {
    return [
      ...isolated.filter((x) => !shared.some((y) => same(x, y))).map((value) => ({ side: 'isolated' as const, path: `${at}[]`, value })),
      ...shared.filter((x) => !isolated.some((y) => same(x, y))).map((value) => ({ side: 'shared' as const, path: `${at}[]`, value })),
    ];
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(isolated) && isObject(shared)) {
    const keys = [...new Set([...Object.keys(isolated), ...Object.keys(shared)])];
    return keys.flatMap((k) => specDiff(isolated[k], shared[k], at ? `${at}.${k}` : k));
  }
  return [
    ...(isolated === undefined ? [] : [{ side: 'isolated' as const, path: at, value: isolated }]),
    ...(shared === undefined ? [] : [{ side: 'shared' as const, path: at, value: shared }]),
  ];
}
