// The cgroup v2 manager on a fake unified hierarchy: which directories it makes, which
// controllers it enables, and exactly which files get which values; what it refuses.
import * as fs from 'fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkResourcesApplicable, managerFor, plannedManager, type CgroupOptions } from '../../src/cgroups';
import { cgroupOf, prepareCgroup, removeCgroup } from '../../src/runtime/cgroup';
import type { BpfPrimitives } from '../../src/cgroups/v2/devices';
import * as devicesV2 from '../../src/cgroups/v2/devices';
import { CgroupDir } from '../../src/cgroups/fs';
import { statsJson } from '../../src/cgroups/stats';
import type { ContainerRecord } from '../../src/runtime/store';
import type { Resources, Spec } from '../../src/spec/types';
import { fakeUnified, tempRoot, type FakeCgroupFs } from './cgroups-fakefs';

let root: string;
let cfs: FakeCgroupFs;
let layout: ReturnType<typeof fakeUnified>['layout'];
const warnings: string[] = [];
const opts = () => ({ fs: cfs, layout, bpf: null, warn: (m: string) => warnings.push(m), signal: (pid: number, sig: number) => void cfs.signals.push([pid, sig]) });
const C = '/sys/fs/cgroup/user.slice/c1';

beforeEach(() => {
  root = tempRoot();
  ({ fs: cfs, layout } = fakeUnified(root));
  warnings.length = 0;
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const spec = (resources: Resources = {}, cgroupsPath?: string): Spec => ({ ociVersion: '1.0.2', linux: { resources, ...(cgroupsPath ? { cgroupsPath } : {}) } }) as Spec;
const record = (): ContainerRecord => ({ id: 'c1' }) as ContainerRecord;
// create's two steps: the cgroup made before the init exists, then the init joined to it.
const enterCgroup = (rec: ContainerRecord, s: Spec, pid: number, o: CgroupOptions) => prepareCgroup(rec, s, o)?.join(pid);

describe('creating the cgroup', () => {
  it('makes it under the parent of husk\'s cgroup, enabling every controller on the way, and moves the init in', () => {
    const rec = record();
    enterCgroup(rec, spec(), 4321, opts());
    expect(rec.cgroupPaths).toEqual({ '': root + C });
    expect(cfs.writesTo('/sys/fs/cgroup/user.slice/cgroup.subtree_control')).toEqual(['+cpuset +cpu +io +memory +hugetlb +pids +rdma']);
    expect(cfs.read(`${root}${C}/cgroup.controllers`).trim()).toBe('cpuset cpu io memory hugetlb pids rdma');
    expect(cfs.writesTo(`${C}/cgroup.procs`)).toEqual(['4321']);
    // The root already had them all: nothing written there.
    expect(cfs.writesTo('/sys/fs/cgroup/cgroup.subtree_control')).toEqual([]);
  });

  it('makes the missing levels of a nested cgroupsPath, enabling controllers in each parent', () => {
    const rec = record();
    enterCgroup(rec, spec({}, '/pods/p1/c1'), 1, opts());
    expect(rec.cgroupPaths).toEqual({ '': `${root}/sys/fs/cgroup/pods/p1/c1` });
    expect(cfs.writesTo('/sys/fs/cgroup/pods/cgroup.subtree_control')).toEqual(['+cpuset +cpu +io +memory +hugetlb +pids +rdma']);
    expect(cfs.writesTo('/sys/fs/cgroup/pods/p1/cgroup.subtree_control')).toEqual(['+cpuset +cpu +io +memory +hugetlb +pids +rdma']);
  });

  it('refuses a cgroup that already holds processes (runc\'s message)', () => {
    cfs.mkdir('/sys/fs/cgroup/user.slice/c1');
    cfs.addProcess(C, 99);
    expect(() => enterCgroup(record(), spec(), 1, opts())).toThrow("container's cgroup is not empty: 1 process(es) found");
  });

  it('removes what it made when applying a resource fails', () => {
    cfs.failures.set(`${C}/memory.max`, 'EINVAL');
    const rec = record();
    expect(() => enterCgroup(rec, spec({ memory: { limit: 1 } }), 1, opts())).toThrow(
      `linux.resources.memory.limit: write "1" to ${root}${C}/memory.max: fake failure`,
    );
    expect(fs.existsSync(root + C)).toBe(false);
    expect(rec.cgroupPaths).toBeUndefined();
  });
});

describe('every resource, file by file', () => {
  it('writes what runc writes', () => {
    const r: Resources = {
      memory: { limit: 100 * 2 ** 20, reservation: 50 * 2 ** 20, swap: 300 * 2 ** 20 },
      cpu: { shares: 2048, quota: 50000, period: 100000, burst: 10000, idle: 0, cpus: '0-1', mems: '0' },
      pids: { limit: 64 },
      blockIO: {
        weight: 500,
        throttleReadBpsDevice: [{ major: 7, minor: 0, rate: 1048576 }],
        throttleWriteBpsDevice: [{ major: 7, minor: 0, rate: 2097152 }],
        throttleReadIOPSDevice: [{ major: 7, minor: 0, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 7, minor: 0, rate: 200 }],
      },
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
      rdma: { mlx5_0: { hcaHandles: 3, hcaObjects: 1000 } },
      unified: { 'memory.high': '90000000', 'io.max': '7:0 rbps=1000\n7:1 wbps=2000' },
    };
    enterCgroup(record(), spec(r), 7, opts());
    expect(cfs.writesUnder(C)).toEqual([
      ['pids.max', '64'],
      ['memory.swap.max', '209715200'], // 300M memory+swap - 100M memory
      ['memory.max', '104857600'],
      ['memory.low', '52428800'],
      ['io.weight', '4950'], // no BFQ here: blkio's 500 converted
      ['io.max', '7:0 rbps=1048576'],
      ['io.max', '7:0 wbps=2097152'],
      ['io.max', '7:0 riops=100'],
      ['io.max', '7:0 wiops=200'],
      ['cpu.idle', '0'],
      ['cpu.weight', '174'],
      ['cpu.max.burst', '10000'],
      ['cpu.max', '50000 100000'],
      ['cpuset.cpus', '0-1'],
      ['cpuset.mems', '0'],
      ['hugetlb.2MB.max', '4194304'],
      ['rdma.max', 'mlx5_0 hca_handle=3 hca_object=1000'],
      ['memory.high', '90000000'],
      ['io.max', '7:0 rbps=1000'],
      ['io.max', '7:1 wbps=2000'],
      ['cgroup.procs', '7'],
    ]);
  });

  it('swap equal to memory disables swap; -1 is max; unlimited memory makes swap unlimited', () => {
    enterCgroup(record(), spec({ memory: { limit: 1000, swap: 1000 } }), 1, opts());
    expect(cfs.writesTo(`${C}/memory.swap.max`)).toEqual(['0']);
    removeCgroup({ ...record(), cgroupPaths: { '': root + C } }, undefined, opts());
    enterCgroup(record(), spec({ memory: { limit: -1 } }), 1, opts());
    expect(cfs.writesTo(`${C}/memory.swap.max`).at(-1)).toBe('max');
    expect(cfs.writesTo(`${C}/memory.max`).at(-1)).toBe('max');
  });

  it('uses io.bfq.weight (unconverted) when BFQ offers it, and for per-device weights', () => {
    const m = plannedManager(spec(), 'c1', opts())!;
    m.create({});
    fs.writeFileSync(`${root}${C}/io.bfq.weight`, 'default 100\n');
    m.apply({ blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }] } }, { update: true });
    expect(cfs.writesUnder(C)).toEqual([['io.bfq.weight', '500'], ['io.bfq.weight', '8:0 300']]);
  });

  it('refuses a per-device weight without BFQ, naming it', () => {
    const m = plannedManager(spec(), 'c1', opts())!;
    m.create({});
    expect(() => m.apply({ blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 300 }] } }, { update: true })).toThrow(
      `linux.resources.blockIO.weightDevice[0]: per-device weights need the BFQ I/O scheduler, and ${root}${C}/io.bfq.weight does not exist`,
    );
  });

  it('cpu: quota alone keeps the kernel\'s period; a burst the kernel refuses first is retried after cpu.max', () => {
    const m = plannedManager(spec(), 'c1', opts())!;
    m.create({});
    m.apply({ cpu: { quota: 20000 } }, { update: true });
    expect(cfs.writesUnder(C)).toEqual([['cpu.max', '20000']]);
    cfs.failures.set(`${C}/cpu.max.burst`, 'EINVAL');
    m.apply({ cpu: { quota: 20000, burst: 5000 } }, { update: true });
    expect(cfs.writesUnder(C).slice(1)).toEqual([['cpu.max', '20000'], ['cpu.max.burst', '5000']]);
  });

  it('names the controller that is not enabled for the cgroup', () => {
    ({ fs: cfs, layout } = fakeUnified(tempRoot(), ['cpu', 'memory']));
    expect(() => enterCgroup(record(), spec({ pids: { limit: 10 } }), 1, opts())).toThrow(
      `linux.resources.pids.limit: the pids controller is not available in ${cfs.root}${C} (its cgroup.controllers: cpu memory)`,
    );
    fs.rmSync(cfs.root, { recursive: true, force: true });
  });

  it('refuses a hugepage size the host does not have', () => {
    expect(() => enterCgroup(record(), spec({ hugepageLimits: [{ pageSize: '3MB', limit: 1 }] }), 1, opts())).toThrow('linux.resources.hugepageLimits[0].pageSize: this host has no 3MB huge pages');
  });
});

describe('what cgroup v2 cannot apply is refused by name, before anything is made', () => {
  it.each<[string, Resources, string]>([
    ['kernel memory', { memory: { kernel: 1 } }, 'config.json: linux.resources.memory.kernel: cgroup v2 has no kernel memory limit (memory.max counts kernel memory already)'],
    ['kernel TCP', { memory: { kernelTCP: 1 } }, 'config.json: linux.resources.memory.kernelTCP: cgroup v2 has no separate kernel TCP memory limit'],
    ['swappiness', { memory: { swappiness: 10 } }, 'config.json: linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness'],
    ['no OOM killer', { memory: { disableOOMKiller: true } }, 'config.json: linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer'],
    ['no hierarchy', { memory: { useHierarchy: false } }, 'config.json: linux.resources.memory.useHierarchy: false cannot be applied: cgroup v2 is always hierarchical'],
    ['realtime', { cpu: { realtimeRuntime: 1000 } }, 'config.json: linux.resources.cpu.realtimeRuntime: realtime scheduling limits are not supported by cgroup v2'],
    ['leaf weight', { blockIO: { leafWeight: 100 } }, 'config.json: linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight'],
    ['network', { network: { classID: 1 } }, 'config.json: linux.resources.network: cgroup v2 has no net_cls or net_prio controller'],
    ['unified path', { unified: { '../cgroup.procs': '1' } }, 'config.json: linux.resources.unified["../cgroup.procs"]: must be a file name in the container\'s cgroup, without any slash'],
    ['unified procs', { unified: { 'cgroup.procs': '1' } }, 'config.json: linux.resources.unified["cgroup.procs"]: cgroup.procs is managed by husk and cannot be set'],
    ['unified form', { unified: { memory: '1' } }, 'config.json: linux.resources.unified["memory"]: must be in the form CONTROLLER.PARAMETER'],
  ])('%s', (_name, r, message) => {
    expect(() => checkResourcesApplicable(spec(r), () => undefined, opts())).toThrow(message);
  });
  it('accepts useHierarchy true and zero realtime values', () => {
    expect(() => checkResourcesApplicable(spec({ memory: { useHierarchy: true }, cpu: { realtimeRuntime: 0, realtimePeriod: 0 } }), () => undefined, opts())).not.toThrow();
  });
});

describe('devices', () => {
  it('warns, naming the field, while the addon cannot load the program', () => {
    enterCgroup(record(), spec({ devices: [{ allow: false, access: 'rwm' }] }), 1, opts());
    expect(warnings).toEqual([expect.stringContaining('linux.resources.devices: device rules are not enforced on this cgroup v2 host')]);
  });
  it('loads the program, attaches it with BPF_F_ALLOW_MULTI, then detaches the old ones', () => {
    const calls: string[] = [];
    // Real fds (of /dev/null) stand for the programs', since the code closes them.
    const fds = new Map<number, string>();
    const fd = (name: string) => {
      const n = fs.openSync('/dev/null', 'r');
      fds.set(n, name);
      return n;
    };
    const bpf: BpfPrimitives = {
      bpfProgQuery: (_target, attachType) => (calls.push(`query ${attachType}`), [11, 12]),
      bpfProgLoad: (type, insns, license) => (calls.push(`load type ${type}, ${insns.length / 8} insns, ${license}`), fd('new')),
      bpfProgAttach: (p, _target, attachType, flags) => void calls.push(`attach ${fds.get(p)} ${attachType} flags ${flags}`),
      bpfProgGetFdById: (id) => fd(`old ${id}`),
      bpfProgDetach: (p, _target, attachType) => void calls.push(`detach ${fds.get(p)} ${attachType}`),
    };
    cfs.mkdir('/sys/fs/cgroup/user.slice/c1');
    devicesV2.apply(new CgroupDir(cfs, root + C, true), undefined, () => undefined, bpf);
    const insns = devicesV2.programFor(undefined).length / 8;
    expect(calls).toEqual(['query 6', `load type 15, ${insns} insns, Apache`, 'attach new 6 flags 2', 'detach old 11 6', 'detach old 12 6']);
  });
});

describe('the life of the cgroup', () => {
  const make = () => {
    const rec = record();
    enterCgroup(rec, spec(), 5, opts());
    return cgroupOf(rec, opts())!;
  };
  it('lists the processes of the cgroup and its children', () => {
    const m = make();
    cfs.mkdir(`${C}/inner`);
    cfs.addProcess(`${C}/inner`, 9);
    expect(m.pids()).toEqual([5, 9]);
  });
  it('freezes through cgroup.freeze and waits for cgroup.events, thaws', () => {
    const m = make();
    m.freeze();
    expect(m.frozen()).toBe(true);
    m.thaw();
    expect(m.frozen()).toBe(false);
    expect(cfs.writesTo(`${C}/cgroup.freeze`)).toEqual(['1', '0']);
  });
  it('kill --all with SIGKILL is one write to cgroup.kill; other signals freeze, signal each, thaw', () => {
    const m = make();
    m.signalAll(15);
    expect(cfs.signals).toEqual([[5, 15]]);
    expect(cfs.writesTo(`${C}/cgroup.freeze`)).toEqual(['1', '0']);
    m.signalAll(9);
    expect(cfs.writesTo(`${C}/cgroup.kill`)).toEqual(['1']);
  });
  it('destroy kills what is left (cgroup.kill) and removes the cgroup and its children', () => {
    const m = make();
    cfs.mkdir(`${C}/inner`);
    m.destroy();
    expect(cfs.writesTo(`${C}/cgroup.kill`)).toEqual(['1']);
    expect(fs.existsSync(root + C)).toBe(false);
    expect(m.exists()).toBe(false);
  });
  it('destroy gives up, naming the processes, when they do not go', () => {
    const m = make();
    fs.rmSync(`${root}${C}/cgroup.kill`);
    expect(() => m.destroy(50)).toThrow(`cannot remove the cgroup ${root}${C}: processes 5 are still in it after SIGKILL`);
    expect(cfs.signals.filter(([, s]) => s === 9).length).toBeGreaterThan(0);
  });
  it('reads the stats in runc\'s format', () => {
    const m = make();
    const w = (f: string, t: string) => fs.writeFileSync(`${root}${C}/${f}`, t);
    w('cpu.stat', 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 2000\n');
    w('memory.current', '4096\n');
    w('memory.max', '104857600\n');
    w('memory.peak', '8192\n');
    w('memory.swap.current', '0\n');
    w('memory.swap.max', 'max\n');
    w('memory.events', 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    w('memory.stat', 'anon 4096\nfile 0\n');
    w('pids.current', '2\n');
    w('pids.max', '64\n');
    w('io.stat', '7:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n');
    // (hugetlb stats depend on the page sizes of the machine running the test)
    for (const f of fs.readdirSync(root + C)) if (f.startsWith('hugetlb.')) fs.rmSync(`${root}${C}/${f}`);
    expect(statsJson(m.stats())).toBe(
      '{"cpu":{"usage":{"total":1500000,"kernel":500000,"user":1000000},"throttling":{"periods":10,"throttledPeriods":4,"throttledTime":2000000}},' +
        '"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
        '"memory":{"usage":{"limit":104857600,"usage":4096,"max":8192,"failcnt":3},"swap":{"limit":18446744073709551615,"usage":4096,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0},"raw":{"anon":4096,"file":0}},' +
        '"pids":{"current":2,"limit":64},' +
        '"blkio":{"ioServiceBytesRecursive":[{"major":7,"op":"Read","value":512},{"major":7,"op":"Write"}],"ioServicedRecursive":[{"major":7,"op":"Read","value":1},{"major":7,"op":"Write"}]},' +
        '"hugetlb":{},"intel_rdt":{},"network_interfaces":null}',
    );
    expect(m.oomKillCount()).toBe(1n);
  });
  it('managerFor picks v2 for a unified host', () => {
    expect(managerFor({ '': root + C }, opts()).version).toBe('v2');
  });
});
