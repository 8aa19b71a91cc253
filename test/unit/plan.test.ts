// The plan built from config.json: which steps, in which order, with which arguments.
// Pure policy, no root: the host is a fake HostView.
import { describe, expect, it } from 'vitest';
import { buildPlan, executableCandidates, type HostView, type PlanOptions, type PlanStep } from '../../src/linux/plan';
import { parseMountOptions } from '../../src/linux/mountOptions';
import { idmappedMount } from '../../src/linux/idmap';
import { MS } from '../../src/linux/constants';

const host = (over: Partial<HostView> = {}): HostView => ({
  isDirectory: (p) => (p.endsWith('.txt') || p.startsWith('/dev/') ? false : p.startsWith('/missing') ? undefined : true),
  mountPointOf: () => '/',
  cgroupV1: [
    { name: 'cpu', options: 'cpu', cgroupPath: '/' },
    { name: 'systemd', options: 'none,name=systemd', cgroupPath: '/' },
    { name: 'unified', options: '', cgroupPath: '/' },
  ],
  cgroupV2Unified: false,
  readRootfsFile: () => 'root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n',
  euid: 0,
  egid: 0,
  lastCap: 40,
  securityModules: [],
  ...over,
});

function spec(over: any = {}): any {
  return {
    ociVersion: '1.2.0',
    root: { path: 'rootfs' },
    process: { args: ['/probe', 'report'], env: ['PATH=/usr/bin:/bin'], cwd: '/', user: { uid: 0, gid: 0 }, ...(over.process ?? {}) },
    hostname: 'web',
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'ipc' }], ...(over.linux ?? {}) },
    ...Object.fromEntries(Object.entries(over).filter(([k]) => k !== 'process' && k !== 'linux')),
  };
}

const opts: PlanOptions = { rootfs: '/b/rootfs', bundle: '/b', execFifo: { path: '/run/husk/x/exec.fifo', fd: 3 } };
const ops = (steps: PlanStep[]) => steps.map((s) => s.op);
/** Steps read by field name whatever their op: these tests look steps up by target or path. */
const loose = (steps: PlanStep[]) => steps as (PlanStep & Record<string, any>)[];

describe('buildPlan', () => {
  it('clones the init with every new namespace but cgroup, then runs the setup in runc order', () => {
    const plan = buildPlan(spec({ linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'cgroup' }] } }), opts, host());
    const clone = plan.steps.find((s) => s.op === 'cloneInit')!;
    expect(clone.trace).toBe('clone(CLONE_NEWNS|CLONE_NEWPID)');
    expect(plan.steps.findIndex((s) => s.op === 'unshare')).toBeGreaterThan(plan.steps.indexOf(clone));
    const order = ops(plan.steps);
    const at = (op: PlanStep['op']) => order.indexOf(op);
    expect(at('openRoot')).toBeLessThan(plan.steps.findIndex((s) => s.op === 'mount' && s.inRoot));
    expect(at('openExecFifo')).toBeLessThan(at('pivotRoot'));
    expect(at('pivotRoot')).toBeLessThan(at('sethostname'));
    expect(at('closeFds')).toBeLessThan(at('setresuid'));
    expect(at('findExecutable')).toBeLessThan(at('waitExecFifo'));
    expect(order[order.length - 1]).toBe('exec');
    expect(order[order.length - 2]).toBe('waitExecFifo');
  });

  it('joins namespaces given by path before the clone, the user namespace first and mount last', () => {
    const plan = buildPlan(spec({ linux: { namespaces: [{ type: 'mount' }, { type: 'network', path: '/var/run/netns/x' }, { type: 'user', path: '/proc/1/ns/user' }, { type: 'pid' }] } }), opts, host());
    const setns = plan.steps.filter((s) => s.op === 'setns');
    expect(setns.map((s) => s.path)).toEqual(['/proc/1/ns/user', '/var/run/netns/x']);
    // After joining the user namespace, stage 1 becomes its root (the host's ids are unmapped there).
    expect(plan.steps.slice(1, 4).map((s) => s.trace)).toEqual(['setgroups(0, [])', 'setresgid(0, 0, 0)', 'setresuid(0, 0, 0)']);
    const clone = plan.steps.findIndex((s) => s.op === 'cloneInit');
    expect(clone).toBe(5);
    expect(plan.steps[clone].trace).toBe('clone(CLONE_NEWNS|CLONE_NEWPID)');
  });

  it('without a mount namespace: mounts on a private bind of the rootfs, the host\'s "/" untouched, then chroot', () => {
    const plan = buildPlan(spec({ linux: { namespaces: [{ type: 'pid' }] } }), opts, host());
    const mounts = plan.steps.filter((s) => s.op === 'mount' && !s.inRoot);
    expect(mounts.map((s) => s.trace)).toEqual([
      'mount("/b/rootfs", "/b/rootfs", NULL, MS_BIND|MS_REC, NULL)',
      'mount(NULL, "/b/rootfs", NULL, MS_REC|MS_PRIVATE, NULL)',
    ]);
    expect(ops(plan.steps)).toContain('chroot');
    expect(ops(plan.steps)).not.toContain('pivotRoot');
    expect(() => buildPlan(spec({ linux: { namespaces: [{ type: 'pid' }] } }), { ...opts, noPivot: true }, host())).toThrow(
      '--no-pivot needs a private mount namespace',
    );
  });

  it('resolves every config mount inside the rootfs and creates its target', () => {
    const plan = buildPlan(spec(), opts, host());
    const proc = plan.steps.find((s) => s.op === 'mount' && s.fstype === 'proc')!;
    // create 3: an ordinary directory, refused when the image made it a symlink (CVE-2019-16884).
    expect(proc).toMatchObject({ target: '/proc', inRoot: true, create: 3, source: 'proc' });
    expect(proc.what).toBe('mount "proc" on "/proc"');
    expect(proc.why?.[20 /* ENOTDIR */]).toBe('proc must be mounted on an ordinary directory');
  });

  it('bind mounts: the source decides file or directory, options become a remount, propagation a third call', () => {
    const plan = buildPlan(spec({ mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/x/hosts.txt', options: ['rbind', 'ro', 'nosuid', 'rprivate'] }] }), opts, host());
    const mounts = loose(plan.steps).filter((s) => s.op === 'mount' && s.target === '/etc/hosts');
    expect(mounts.map((m) => m.flags)).toEqual([
      MS.MS_BIND | MS.MS_REC,
      MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY | MS.MS_NOSUID,
      MS.MS_PRIVATE | MS.MS_REC,
    ]);
    expect(mounts[0].create).toBe(2);
  });

  it('a relative bind source is relative to the bundle; a missing one is an error naming the mount', () => {
    const plan = buildPlan(spec({ mounts: [{ destination: '/data', type: 'bind', source: 'data', options: ['bind'] }] }), opts, host());
    expect(loose(plan.steps).find((s) => s.target === '/data')!.source).toBe('/b/data');
    expect(() => buildPlan(spec({ mounts: [{ destination: '/d', type: 'bind', source: '/missing/x' }] }), opts, host()))
      .toThrow('config.json: mounts[0]: bind source "/missing/x" does not exist');
  });

  it('cgroup mounts on a hybrid host: a tmpfs with one bind per v1 hierarchy, or fresh mounts in a new cgroup namespace', () => {
    const m = [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid'] }];
    const plain = loose(buildPlan(spec({ mounts: m }), opts, host()).steps).filter((s) => s.target?.startsWith('/sys/fs/cgroup'));
    expect(plain.map((s) => [s.target, s.source])).toEqual([
      ['/sys/fs/cgroup', 'tmpfs'],
      ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu'],
      ['/sys/fs/cgroup/cpu', null],
      ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/systemd'],
      ['/sys/fs/cgroup/systemd', null],
    ]);
    const withNs = loose(buildPlan(spec({ mounts: m, linux: { namespaces: [{ type: 'mount' }, { type: 'cgroup' }] } }), opts, host()).steps).filter((s) => s.target?.startsWith('/sys/fs/cgroup/'));
    expect(withNs.map((s) => [s.fstype, s.data])).toEqual([['cgroup', 'cpu'], ['cgroup', 'none,name=systemd']]);
    const v2 = loose(buildPlan(spec({ mounts: m }), opts, host({ cgroupV2Unified: true })).steps).filter((s) => s.target?.startsWith('/sys/fs/cgroup'));
    expect(v2.map((s) => s.fstype)).toEqual(['cgroup2']);
  });

  it('makes the default devices and /dev links unless /dev is bound from the host', () => {
    const plan = buildPlan(spec(), opts, host());
    expect(plan.steps.filter((s) => s.op === 'mknod').map((s) => s.path)).toEqual(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    expect(loose(plan.steps).find((s) => s.op === 'symlink' && s.linkpath === '/dev/ptmx')!.target).toBe('pts/ptmx');
    const bound = buildPlan(spec({ mounts: [{ destination: '/dev', type: 'bind', source: '/dev', options: ['rbind'] }] }), opts, host());
    expect(bound.steps.some((s) => s.op === 'mknod')).toBe(false);
  });

  it('masked and read-only paths skip what does not exist (ENOENT)', () => {
    const plan = buildPlan(spec({ linux: { namespaces: [{ type: 'mount' }], maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'] } }), opts, host());
    expect(plan.steps.find((s) => s.op === 'maskPath')!.okErrno).toBe(2);
    expect(loose(plan.steps).filter((s) => (s.target ?? s.path) === '/proc/sys').map((s) => s.op)).toEqual(['mount', 'remountReadonly']);
  });

  it('capabilities: bounding before setuid with keep-caps around it, the sets after', () => {
    const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const plan = buildPlan(spec({ process: { user: { uid: 1000, gid: 1000, additionalGids: [5] }, capabilities: { bounding: caps, effective: caps, permitted: caps } } }), opts, host());
    const order = ops(plan.steps);
    expect(order.indexOf('dropBounding')).toBeLessThan(order.indexOf('setresuid'));
    expect(order.indexOf('capset')).toBeGreaterThan(order.indexOf('setresuid'));
    const capset = plan.steps.find((s) => s.op === 'capset')!;
    expect(capset.effective).toBe((1n << 5n) | (1n << 10n));
    expect(plan.steps.find((s) => s.op === 'setgroups')!.groups).toEqual([5]);
    expect(() => buildPlan(spec({ process: { capabilities: { bounding: ['CAP_NOPE'] } } }), opts, host())).toThrow('unknown capability "CAP_NOPE"');
  });

  it('adds HOME from the rootfs /etc/passwd when the env has none, as runc does', () => {
    const plan = buildPlan(spec({ process: { user: { uid: 1000, gid: 1000 } } }), opts, host());
    expect(plan.steps.find((s) => s.op === 'exec')!.envp).toContain('HOME=/home/bob');
  });

  it('--preserve-fds keeps fds 3..3+N-1 open', () => {
    const plan = buildPlan(spec(), { ...opts, preserveFds: 2 }, host());
    expect(plan.steps.find((s) => s.op === 'closeFds')!.first).toBe(5);
  });

  it('no exec fifo (hooks, exec): no fifo steps', () => {
    const plan = buildPlan(spec(), { rootfs: '/b/rootfs', bundle: '/b' }, host());
    expect(ops(plan.steps)).not.toContain('waitExecFifo');
  });

  it('pauses for hooks only when there are createRuntime, createContainer or prestart hooks', () => {
    expect(buildPlan(spec(), opts, host()).pausesForHooks).toBe(false);
    const plan = buildPlan(spec({ hooks: { createRuntime: [{ path: '/bin/true' }] } }), opts, host());
    expect(plan.pausesForHooks).toBe(true);
    expect(ops(plan.steps).indexOf('notify')).toBeLessThan(ops(plan.steps).indexOf('pivotRoot'));
  });

  it('--no-pivot moves the rootfs instead of pivot_root', () => {
    expect(ops(buildPlan(spec(), { ...opts, noPivot: true }, host()).steps)).toContain('moveRoot');
  });
});

describe('user namespaces', () => {
  const userns = (over: any = {}) => spec({
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'user' }, { type: 'ipc' }],
      uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    },
    ...over,
  });

  it('stage 1 makes the user namespace, waits for the maps, becomes its root, then clones the rest', () => {
    const plan = buildPlan(userns(), opts, host());
    const head = plan.steps.slice(0, 6).map((s) => s.trace);
    expect(head).toEqual([
      'unshare(CLONE_NEWUSER)',
      'notify(parent, user maps) and wait',
      'setgroups(0, [])',
      'setresgid(0, 0, 0)',
      'setresuid(0, 0, 0)',
      'clone(CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWPID)',
    ]);
    expect(plan.userMaps).toMatchObject({ uid: [{ hostID: 100000 }], plan: { direct: true, denySetgroups: false } });
  });

  it('binds the host devices instead of mknod, and the host sysfs and mqueue where their namespaces are not new', () => {
    const plan = buildPlan(userns({ mounts: [{ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro'] }, { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue' }] }), opts, host({ isDirectory: (p) => (p === '/sys' || p === '/dev/mqueue' ? true : p.startsWith('/dev/') ? false : true) }));
    expect(plan.steps.some((s) => s.op === 'mknod')).toBe(false);
    expect(loose(plan.steps).find((s) => s.target === '/dev/null')).toMatchObject({ op: 'mount', source: '/dev/null', create: 2 });
    expect(loose(plan.steps).find((s) => s.target === '/sys')).toMatchObject({ source: '/sys', flags: MS.MS_BIND | MS.MS_REC });
    expect(loose(plan.steps).find((s) => s.target === '/dev/mqueue')).toMatchObject({ fstype: 'mqueue' });
  });

  it('an unprivileged husk maps only itself: setgroups is denied, so supplementary groups cannot be set', () => {
    const self = spec({ linux: { namespaces: [{ type: 'mount' }, { type: 'user' }], uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] } });
    const plan = buildPlan(self, opts, host({ euid: 1000, egid: 1000 }));
    expect(plan.userMaps!.plan).toEqual({ direct: true, denySetgroups: true });
    expect(plan.steps.some((s) => s.op === 'setgroups')).toBe(false);
    self.process.user.additionalGids = [5];
    expect(() => buildPlan(self, opts, host({ euid: 1000, egid: 1000 }))).toThrow('denies setgroups');
  });

  it('an unprivileged husk maps a range through newuidmap and newgidmap, found through the host seam', () => {
    const range = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const ranged = spec({ linux: { namespaces: [{ type: 'mount' }, { type: 'user' }], uidMappings: range, gidMappings: range } });
    const withHelpers = host({ euid: 1000, egid: 1000, isDirectory: (p) => !(/\/new[ug]idmap$/.test(p) || p.startsWith('/dev/')) });
    expect(buildPlan(ranged, opts, withHelpers).userMaps!.plan).toEqual({ direct: false, denySetgroups: false });
    const without = host({ euid: 1000, egid: 1000, isDirectory: (p) => (/\/new[ug]idmap$/.test(p) ? undefined : !p.startsWith('/dev/')) });
    expect(() => buildPlan(ranged, opts, without)).toThrow('needs newuidmap and newgidmap');
  });
});

describe('time namespace', () => {
  it('stage 1 unshares it and writes the offsets (CLONE_NEWTIME cannot go through clone)', () => {
    const plan = buildPlan(spec({ linux: { namespaces: [{ type: 'mount' }, { type: 'time' }], timeOffsets: { boottime: { secs: 5 }, monotonic: { secs: 1, nanosecs: 2 } } } }), opts, host());
    expect(plan.steps.slice(0, 3).map((s) => s.trace)).toEqual([
      'unshare(CLONE_NEWTIME)',
      'write("/proc/self/timens_offsets", "boottime 5 0\\nmonotonic 1 2\\n")',
      'clone(CLONE_NEWNS)',
    ]);
  });
});

describe('security modules, personality and capabilities this kernel lacks', () => {
  it('refuses an AppArmor profile or SELinux label on a host without the module, and applies them where it has it', () => {
    expect(() => buildPlan(spec({ process: { apparmorProfile: 'docker-default' } }), opts, host())).toThrow('config.json: process.apparmorProfile "docker-default": AppArmor is not enabled on this host');
    expect(() => buildPlan(spec({ process: { selinuxLabel: 'system_u:system_r:container_t:s0' } }), opts, host())).toThrow('SELinux is not enabled on this host');
    const plan = buildPlan(spec({ process: { apparmorProfile: 'docker-default' } }), opts, host({ securityModules: ['apparmor'] }));
    expect(loose(plan.steps).find((s) => s.path === '/proc/self/attr/apparmor/exec')!.contents).toBe('exec docker-default');
  });

  it('sets the LINUX32 personality and refuses unknown domains', () => {
    const plan = buildPlan(spec({ linux: { namespaces: [{ type: 'mount' }], personality: { domain: 'LINUX32' } } }), opts, host());
    expect(plan.steps.find((s) => s.op === 'personality')!.persona).toBe(8);
    expect(() => buildPlan(spec({ linux: { namespaces: [{ type: 'mount' }], personality: { domain: 'BSD' } } }), opts, host())).toThrow('only LINUX and LINUX32');
  });

  it('leaves out a capability the kernel does not know, with a warning', () => {
    const plan = buildPlan(spec({ process: { capabilities: { bounding: ['CAP_KILL', 'CAP_CHECKPOINT_RESTORE'] } } }), opts, host({ lastCap: 39 }));
    expect(plan.steps.find((s) => s.op === 'dropBounding')!.keep).toBe(1n << 5n);
    expect(plan.warnings).toEqual(['process.capabilities.bounding: CAP_CHECKPOINT_RESTORE is not known to this kernel; leaving it out']);
  });
});

describe('executableCandidates', () => {
  it('a path is tried as it is; a name is looked up in the process PATH, in order', () => {
    expect(executableCandidates('/bin/sh', [])).toEqual(['/bin/sh']);
    expect(executableCandidates('./run', [])).toEqual(['./run']);
    expect(executableCandidates('sh', ['PATH=/usr/bin:/bin'])).toEqual(['/usr/bin/sh', '/bin/sh']);
    expect(executableCandidates('sh', [])).toEqual([]);
  });
});

describe('idmapped mounts', () => {
  it('a mount with its own maps, or "idmap" with the container maps; recursive for ridmap or rbind', () => {
    const container = { uidMappings: [{ containerID: 0, hostID: 1, size: 9 }], gidMappings: [{ containerID: 0, hostID: 2, size: 9 }] };
    expect(idmappedMount({ options: ['bind'] }, container)).toBeUndefined();
    expect(idmappedMount({ options: ['bind', 'idmap'] }, container)).toEqual({ uid: container.uidMappings, gid: container.gidMappings, recursive: false });
    expect(idmappedMount({ options: ['rbind', 'idmap'] }, container)!.recursive).toBe(true);
    const own = [{ containerID: 5, hostID: 6, size: 1 }];
    expect(idmappedMount({ options: ['ridmap'], uidMappings: own, gidMappings: own }, container)).toEqual({ uid: own, gid: own, recursive: true });
    expect(parseMountOptions(['bind', 'idmap']).data).toBe('');
  });

  it('attaches the prepared tree instead of a bind mount, then applies the remaining flags', () => {
    const plan = buildPlan(spec({ mounts: [{ destination: '/data', type: 'bind', source: '/srv', options: ['bind', 'idmap', 'ro'] }] }), { ...opts, mountTrees: new Map([[0, 42]]) }, host());
    const steps = loose(plan.steps).filter((s) => (s.toPath ?? s.target) === '/data');
    expect(steps.map((s) => s.op)).toEqual(['moveMount', 'mount']);
    expect(steps[0].fromFd).toBe(42);
    expect(steps[1].flags).toBe(MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY);
  });
});

describe('parseMountOptions', () => {
  it('splits flags, propagation and filesystem data', () => {
    expect(parseMountOptions(['nosuid', 'noexec', 'rw', 'mode=755', 'size=65536k', 'rslave'])).toEqual({
      flags: MS.MS_NOSUID | MS.MS_NOEXEC,
      propagation: [MS.MS_SLAVE | MS.MS_REC],
      data: 'mode=755,size=65536k',
    });
    expect(parseMountOptions(['ro', 'rw']).flags).toBe(0);
  });
});
