// The cgroup v1 manager on a fake hybrid host shaped like this machine (v1 hierarchies, and
// cgroup2 at /sys/fs/cgroup/unified with only hugetlb): directories, files, values, refusals.
import * as fs from 'fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkResourcesApplicable, managerFor, type CgroupOptions } from '../../src/cgroups';
import { cgroupOf, prepareCgroup, removeCgroup } from '../../src/runtime/cgroup';
import { statsJson } from '../../src/cgroups/stats';
import type { ContainerRecord } from '../../src/runtime/store';
import type { Resources, Spec } from '../../src/spec/types';
import { fakeHybrid, tempRoot, type FakeCgroupFs } from './cgroups-fakefs';

let root: string;
let cfs: FakeCgroupFs;
let layout: ReturnType<typeof fakeHybrid>['layout'];
const opts = () => ({ fs: cfs, layout, signal: (pid: number, sig: number) => void cfs.signals.push([pid, sig]) });
const spec = (resources: Resources = {}): Spec => ({ ociVersion: '1.0.2', linux: { resources } }) as Spec;
const record = (): ContainerRecord => ({ id: 'c1' }) as ContainerRecord;
// create's two steps: the cgroup made before the init exists, then the init joined to it.
const enterCgroup = (rec: ContainerRecord, s: Spec, pid: number, o: CgroupOptions) => prepareCgroup(rec, s, o)?.join(pid);
const D = (h: string) => `/sys/fs/cgroup/${h}/c1`;
const MEM = '/sys/fs/cgroup/memory/session/abc/c1';

beforeEach(() => {
  root = tempRoot();
  ({ fs: cfs, layout } = fakeHybrid(root));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('creating the cgroups', () => {
  it('one directory per hierarchy (and the cgroup2 one), the init in each', () => {
    const rec = record();
    enterCgroup(rec, spec({ devices: [{ allow: false, access: 'rwm' }] }), 77, opts());
    expect(Object.keys(rec.cgroupPaths!)).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'name=systemd', '']);
    expect(rec.cgroupPaths!.memory).toBe(root + MEM);
    for (const dir of [D('cpu'), D('cpuacct'), D('cpuset'), MEM, D('devices'), D('freezer'), D('blkio'), D('pids'), D('systemd'), D('unified')]) {
      expect(cfs.writesTo(`${dir}/cgroup.procs`), dir).toEqual(['77']);
    }
    // Nothing enabled in the cgroup2 hierarchy when no hugetlb limit is asked for.
    expect(cfs.writesTo('/sys/fs/cgroup/unified/cgroup.subtree_control')).toEqual([]);
  });

  it('fills cpuset.cpus and cpuset.mems from the parent before the init joins', () => {
    enterCgroup(record(), spec(), 1, opts());
    expect(cfs.writesUnder(D('cpuset'))).toEqual([['cpuset.cpus', '0-1'], ['cpuset.mems', '0'], ['cgroup.procs', '1']]);
  });

  it('writes the config\'s cpus and fills only the mems', () => {
    enterCgroup(record(), spec({ cpu: { cpus: '1' } }), 1, opts());
    expect(cfs.writesUnder(D('cpuset'))).toEqual([['cpuset.cpus', '1'], ['cpuset.mems', '0'], ['cpuset.cpus', '1'], ['cgroup.procs', '1']]);
  });
});

describe('every resource, file by file', () => {
  it('memory', () => {
    enterCgroup(record(), spec({ memory: { limit: 1000, reservation: 500, swap: 3000, kernel: 900, kernelTCP: 800, swappiness: 10, disableOOMKiller: true } }), 1, opts());
    // Raising memory+swap above the old memory limit: swap first (the kernel wants memsw >= memory).
    expect(cfs.writesUnder(MEM).filter(([f]) => f !== 'cgroup.procs')).toEqual([
      ['memory.limit_in_bytes', '1000'],
      ['memory.memsw.limit_in_bytes', '3000'],
      ['memory.soft_limit_in_bytes', '500'],
      ['memory.kmem.limit_in_bytes', '900'],
      ['memory.kmem.tcp.limit_in_bytes', '800'],
      ['memory.oom_control', '1'],
      ['memory.swappiness', '10'],
    ]);
  });

  it('memory and swap raised together: swap first; lowered: memory first', () => {
    const rec = record();
    enterCgroup(rec, spec(), 1, opts());
    const m = cgroupOf(rec, opts())!;
    fs.writeFileSync(`${root}${MEM}/memory.limit_in_bytes`, '1000\n');
    m.apply({ memory: { limit: 2000, swap: 4000 } }, { update: true });
    expect(cfs.writesUnder(MEM).slice(-2)).toEqual([['memory.memsw.limit_in_bytes', '4000'], ['memory.limit_in_bytes', '2000']]);
    fs.writeFileSync(`${root}${MEM}/memory.limit_in_bytes`, '2000\n');
    m.apply({ memory: { limit: 500, swap: 1000 } }, { update: true });
    expect(cfs.writesUnder(MEM).slice(-2)).toEqual([['memory.limit_in_bytes', '500'], ['memory.memsw.limit_in_bytes', '1000']]);
    m.apply({ memory: { limit: -1 } }, { update: true });
    expect(cfs.writesUnder(MEM).slice(-2)).toEqual([['memory.memsw.limit_in_bytes', '-1'], ['memory.limit_in_bytes', '-1']]);
  });

  it('memory: a limit below the usage is refused with runc\'s message', () => {
    const rec = record();
    enterCgroup(rec, spec(), 1, opts());
    cfs.failures.set(`${MEM}/memory.limit_in_bytes`, 'EBUSY');
    fs.writeFileSync(`${root}${MEM}/memory.usage_in_bytes`, '5000\n');
    fs.writeFileSync(`${root}${MEM}/memory.max_usage_in_bytes`, '6000\n');
    expect(() => cgroupOf(rec, opts())!.apply({ memory: { limit: 100 } }, { update: true })).toThrow(
      'linux.resources.memory.limit: unable to set memory limit to 100 (current usage: 5000, peak usage: 6000)',
    );
  });

  it('cpu, pids, blkio', () => {
    enterCgroup(record(), spec({
      cpu: { shares: 512, quota: 20000, period: 50000, burst: 1000, realtimePeriod: 1000000, realtimeRuntime: 950000, idle: 1 },
      pids: { limit: 32 },
      blockIO: {
        weight: 300,
        weightDevice: [{ major: 8, minor: 0, weight: 200 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 10 }],
      },
    }), 1, opts());
    expect(cfs.writesUnder(D('cpu')).filter(([f]) => f !== 'cgroup.procs')).toEqual([
      ['cpu.shares', '512'],
      ['cpu.cfs_period_us', '50000'],
      ['cpu.cfs_burst_us', '1000'],
      ['cpu.cfs_quota_us', '20000'],
      ['cpu.idle', '1'],
      ['cpu.rt_period_us', '1000000'],
      ['cpu.rt_runtime_us', '950000'],
    ]);
    expect(cfs.writesUnder(D('pids')).filter(([f]) => f !== 'cgroup.procs')).toEqual([['pids.max', '32']]);
    // No CFQ on this kernel: the BFQ files.
    expect(cfs.writesUnder(D('blkio')).filter(([f]) => f !== 'cgroup.procs')).toEqual([
      ['blkio.bfq.weight', '300'],
      ['blkio.bfq.weight_device', '8:0 200'],
      ['blkio.throttle.read_bps_device', '8:0 1048576'],
      ['blkio.throttle.write_iops_device', '8:0 10'],
    ]);
  });

  it('cpu.shares read back: the kernel\'s clamp is reported as runc does', () => {
    const rec = record();
    enterCgroup(rec, spec(), 1, opts());
    const m = cgroupOf(rec, opts())!;
    // The fake keeps what is written; make it look clamped by answering reads with 262144.
    const read = cfs.read.bind(cfs);
    cfs.read = (f: string) => (f.endsWith('cpu.shares') ? '262144\n' : read(f));
    expect(() => m.apply({ cpu: { shares: 500000 } }, { update: true })).toThrow('linux.resources.cpu.shares: the maximum allowed cpu-shares is 262144');
  });

  it('a leaf weight the kernel has no file for is refused naming it', () => {
    expect(() => enterCgroup(record(), spec({ blockIO: { leafWeight: 100 } }), 1, opts())).toThrow(
      `linux.resources.blockIO.leafWeight: write "100" to ${root}${D('blkio')}/blkio.leaf_weight: no such file or directory`,
    );
  });

  it('devices: reset to deny-all, then the allow list', () => {
    enterCgroup(record(), spec({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }] }), 1, opts());
    expect(cfs.writesUnder(D('devices')).filter(([f]) => f !== 'cgroup.procs')).toEqual([
      ['devices.deny', 'a'],
      ...['c 10:229 rwm', 'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:8 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 1:5 rwm', 'c 1:9 rwm', 'c 136:* rwm', 'c 5:2 rwm', 'c 10:200 rwm'].map((l) => ['devices.allow', l]),
    ]);
  });

  it('devices: an allow-all config denies its exceptions', () => {
    enterCgroup(record(), spec({ devices: [{ allow: true, access: 'rwm' }, { allow: false, type: 'b', major: 8, access: 'w' }] }), 1, opts());
    expect(cfs.writesUnder(D('devices')).filter(([f]) => f !== 'cgroup.procs')).toEqual([
      ['devices.deny', 'a'],
      ['devices.allow', 'a'],
      ['devices.deny', 'b 8:* w'],
    ]);
  });

  it('hugetlb goes to the cgroup2 hierarchy, enabled on the way down, when v1 has none', () => {
    enterCgroup(record(), spec({ hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }] }), 1, opts());
    expect(cfs.writesTo('/sys/fs/cgroup/unified/cgroup.subtree_control')).toEqual(['+hugetlb']);
    expect(cfs.writesUnder(D('unified'))).toEqual([['hugetlb.2MB.max', '2097152'], ['cgroup.procs', '1']]);
  });
});

describe('what this layout cannot apply is refused by name', () => {
  it('unified (cgroup v2 files) on a hybrid host', () => {
    expect(() => checkResourcesApplicable(spec({ unified: { 'memory.high': '100M' } }), () => undefined, opts())).toThrow(
      'config.json: linux.resources.unified: cgroup v2 files cannot be set on this host, whose resource controllers are cgroup v1 (hybrid: cgroup v1 controllers, and cgroup v2 at ' + root + '/sys/fs/cgroup/unified)',
    );
  });
  it('a controller that is not mounted', () => {
    expect(() => checkResourcesApplicable(spec({ network: { classID: 0x100001 } }), () => undefined, opts())).toThrow(
      'config.json: linux.resources.network.classID: the net_cls cgroup controller is not mounted on this host',
    );
    expect(() => checkResourcesApplicable(spec({ rdma: { mlx5_0: { hcaHandles: 1 } } }), () => undefined, opts())).toThrow('config.json: linux.resources.rdma: the rdma cgroup controller is not mounted');
  });
  it('swappiness out of range (runc\'s message)', () => {
    expect(() => enterCgroup(record(), spec({ memory: { swappiness: 200 } }), 1, opts())).toThrow('linux.resources.memory.swappiness: invalid memory swappiness value: 200 (valid range is 0-100)');
  });
});

describe('the life of the cgroups', () => {
  const make = () => {
    const rec = record();
    enterCgroup(rec, spec(), 5, opts());
    return { rec, m: cgroupOf(rec, opts())! };
  };
  it('v1 manager for recorded v1 paths', () => {
    expect(managerFor({ memory: root + MEM }, opts()).version).toBe('v1');
  });
  it('pids from every hierarchy, once each', () => {
    const { m } = make();
    cfs.addProcess(D('pids'), 6);
    expect(m.pids()).toEqual([5, 6]);
  });
  it('freezer.state FROZEN and THAWED', () => {
    const { m } = make();
    m.freeze();
    expect(m.frozen()).toBe(true);
    m.thaw();
    expect(cfs.writesTo(`${D('freezer')}/freezer.state`)).toEqual(['FROZEN', 'THAWED']);
  });
  it('kill --all: frozen while every process is signalled; SIGKILL thaws a paused container', () => {
    const { m } = make();
    m.signalAll(15);
    expect(cfs.signals).toEqual([[5, 15]]);
    expect(cfs.writesTo(`${D('freezer')}/freezer.state`)).toEqual(['FROZEN', 'THAWED']);
    m.freeze();
    m.signalAll(15);
    expect(cfs.writesTo(`${D('freezer')}/freezer.state`).at(-1)).toBe('FROZEN');
    m.signalAll(9);
    expect(cfs.writesTo(`${D('freezer')}/freezer.state`).at(-1)).toBe('THAWED');
  });
  it('delete: SIGKILL to what is left, then every directory removed', () => {
    const { rec } = make();
    // The fake "kernel" empties cgroup.procs when the processes die.
    const signal = (pid: number, sig: number) => {
      cfs.signals.push([pid, sig]);
      for (const d of Object.values(rec.cgroupPaths!)) fs.writeFileSync(`${d}/cgroup.procs`, '');
    };
    removeCgroup(rec, undefined, { ...opts(), signal });
    expect(cfs.signals).toEqual([[5, 9]]);
    for (const d of [D('cpu'), MEM, D('unified'), D('systemd')]) expect(fs.existsSync(root + d), d).toBe(false);
    expect(rec.cgroupPaths).toBeUndefined();
  });
  it('stats in runc\'s v1 format', () => {
    const { m } = make();
    const w = (d: string, f: string, t: string) => fs.writeFileSync(`${root}${d}/${f}`, t);
    w(D('cpu'), 'cpu.stat', 'nr_periods 20\nnr_throttled 5\nthrottled_time 123456\n');
    w(D('cpuacct'), 'cpuacct.usage', '7767204\n');
    w(D('cpuacct'), 'cpuacct.usage_percpu', '2063780 5703424 \n');
    w(D('cpuacct'), 'cpuacct.usage_all', 'cpu user system\n0 0 0\n1 4000000 0\n');
    w(D('cpuacct'), 'cpuacct.stat', 'user 1\nsystem 2\n');
    w(MEM, 'memory.limit_in_bytes', '104857600\n');
    w(MEM, 'memory.usage_in_bytes', '987136\n');
    w(MEM, 'memory.max_usage_in_bytes', '2494464\n');
    w(MEM, 'memory.stat', 'cache 0\nrss 53248\n');
    fs.rmSync(`${root}${MEM}/memory.kmem.limit_in_bytes`);
    w(D('pids'), 'pids.current', '1\n');
    w(D('pids'), 'pids.max', '50\n');
    w(D('blkio'), 'blkio.bfq.io_service_bytes_recursive', '7:0 Read 4096\n7:0 Write 0\nTotal 4096\n');
    expect(statsJson(m.stats())).toBe(
      '{"cpu":{"usage":{"total":7767204,"percpu":[2063780,5703424],"percpu_kernel":[0,0],"percpu_user":[0,4000000],"kernel":20000000,"user":10000000},"throttling":{"periods":20,"throttledPeriods":5,"throttledTime":123456}},' +
        '"cpuset":{"cpus":[0,1],"cpu_exclusive":0,"mems":[0],"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
        '"memory":{"usage":{"limit":104857600,"usage":987136,"max":2494464,"failcnt":0},"swap":{"limit":9223372036854771712,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0},"raw":{"cache":0,"rss":53248}},' +
        '"pids":{"current":1,"limit":50},' +
        '"blkio":{"ioServiceBytesRecursive":[{"major":7,"op":"Read","value":4096},{"major":7,"op":"Write"}]},' +
        '"hugetlb":{},"intel_rdt":{},"network_interfaces":null}',
    );
  });
});
