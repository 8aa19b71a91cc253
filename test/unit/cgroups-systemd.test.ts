// The systemd cgroup driver without systemd: the unit named for linux.cgroupsPath as runc names
// it, where systemd puts its cgroup, the unit properties for linux.resources with the values
// runc's driver sends, busctl's arguments, and the manager's calls on a bus double.
import { describe, expect, it } from 'vitest';
import { cpuQuotaProperties, busctlArguments, deviceProperties, INFINITY, rangeToBits, resourceProperties, unifiedProperties, type UnitProperty } from '../../src/cgroups/systemd/properties';
import { expandSlice, unitCgroup, unitFor, unitObjectPath } from '../../src/cgroups/systemd/unit';
import { SystemdManager } from '../../src/cgroups/systemd/manager';
import { BusError, type SystemdBus } from '../../src/cgroups/systemd/dbus';
import type { CgroupManager } from '../../src/cgroups/manager';
import type { Resources } from '../../src/spec/types';

const byName = (props: UnitProperty[]) => Object.fromEntries(props.map((p) => [p.name, p.value]));

describe('unitFor (runc specconv and getUnitName)', () => {
  it('makes prefix-name.scope in the slice', () => {
    expect(unitFor('system.slice:docker:abc', 'x', false)).toEqual({ name: 'docker-abc.scope', slice: 'system.slice', user: false });
  });
  it('defaults the slice to system.slice for root and user.slice for rootless', () => {
    expect(unitFor(':docker:abc', 'x', false).slice).toBe('system.slice');
    expect(unitFor(':docker:abc', 'x', true).slice).toBe('user.slice');
  });
  it('defaults an absent path to :husk:<id>, as runc\'s is :runc:<id>', () => {
    expect(unitFor(undefined, 'c1', false)).toEqual({ name: 'husk-c1.scope', slice: 'system.slice', user: false });
    expect(unitFor('', 'c1', true)).toEqual({ name: 'husk-c1.scope', slice: 'user.slice', user: true });
  });
  it('takes a name ending in .slice as a slice unit of that name', () => {
    expect(unitFor('machine.slice:ignored:machine-pod1.slice', 'x', false).name).toBe('machine-pod1.slice');
  });
  it('leaves out an empty prefix', () => {
    expect(unitFor('system.slice::abc', 'x', false).name).toBe('abc.scope');
  });
  it('refuses other forms clearly', () => {
    expect(() => unitFor('/a/b', 'x', false)).toThrow('config.json: linux.cgroupsPath "/a/b": expected "slice:prefix:name" for systemd cgroups');
    expect(() => unitFor('system.slice:docker:', 'x', false)).toThrow('the unit\'s name (after the second ":") is empty');
    expect(() => unitFor('system:docker:abc', 'x', false)).toThrow('invalid slice name: system');
    expect(() => unitFor('system.slice:do/cker:abc', 'x', false)).toThrow('"do/cker-abc.scope" is not a valid systemd unit name');
  });
});

describe('expandSlice (runc ExpandSlice)', () => {
  it.each([
    ['system.slice', '/system.slice'],
    ['a-b.slice', '/a.slice/a-b.slice'],
    ['test-a-b.slice', '/test.slice/test-a.slice/test-a-b.slice'],
    ['-.slice', '/'],
  ])('%s -> %s', (slice, path) => expect(expandSlice(slice)).toBe(path));
  it.each(['a--b.slice', '-a.slice', 'a-.slice', '.slice', 'a', 'a/b.slice'])('refuses %s', (slice) => {
    expect(() => expandSlice(slice)).toThrow(`invalid slice name: ${slice}`);
  });
});

describe('unitCgroup', () => {
  it('puts a scope in its expanded slice under PID 1\'s root', () => {
    expect(unitCgroup(unitFor('a-b.slice:p:n', 'x', false), '/')).toBe('/a.slice/a-b.slice/p-n.scope');
    expect(unitCgroup(unitFor('system.slice:docker:abc', 'x', false), '')).toBe('/system.slice/docker-abc.scope');
  });
  it('puts a user manager\'s units under its own cgroup', () => {
    expect(unitCgroup(unitFor(':husk:c1', 'x', true), '/user.slice/user-1000.slice/user@1000.service'))
      .toBe('/user.slice/user-1000.slice/user@1000.service/user.slice/husk-c1.scope');
  });
  it('expands a slice unit itself', () => {
    expect(unitCgroup(unitFor('machine.slice:x:machine-pod1.slice', 'x', false), '/')).toBe('/machine.slice/machine-pod1.slice');
  });
  it('encodes the D-Bus object path as sd_bus_path_encode does', () => {
    expect(unitObjectPath('docker-abc.scope')).toBe('/org/freedesktop/systemd1/unit/docker_2dabc_2escope');
  });
});

describe('resourceProperties, cgroup v2 (runc genV2ResourcesProperties)', () => {
  const v2 = (r: Resources, systemdVersion = 252) => byName(resourceProperties(r, { cgroup: 'v2', systemdVersion, update: true }));
  it('memory: MemoryMax, MemoryLow, MemorySwapMax as swap alone', () => {
    expect(v2({ memory: { limit: 64 << 20, reservation: 32 << 20, swap: 96 << 20 } })).toEqual({
      MemoryMax: BigInt(64 << 20), MemoryLow: BigInt(32 << 20), MemorySwapMax: BigInt(32 << 20),
    });
    expect(v2({ memory: { limit: -1 } })).toEqual({ MemoryMax: INFINITY, MemorySwapMax: INFINITY });
  });
  it('cpu.shares as CPUWeight, converted as for cpu.weight', () => {
    expect(v2({ cpu: { shares: 1024 } })).toEqual({ CPUWeight: 100n });
    expect(v2({ cpu: { shares: 2 } })).toEqual({ CPUWeight: 1n });
    expect(v2({ cpu: { shares: 262144 } })).toEqual({ CPUWeight: 10000n });
  });
  it('pids.limit as TasksMax, -1 as infinity', () => {
    expect(v2({ pids: { limit: 42 } })).toEqual({ TasksMax: 42n });
    expect(v2({ pids: { limit: -1 } })).toEqual({ TasksMax: INFINITY });
  });
  it('blockIO.weight as IOWeight, converted as for io.weight', () => {
    expect(v2({ blockIO: { weight: 500 } })).toEqual({ IOWeight: 4950n });
  });
  it('cpus and mems as bit masks, only from systemd 244', () => {
    expect(v2({ cpu: { cpus: '0-2,7', mems: '0' } })).toEqual({ AllowedCPUs: [0x87], AllowedMemoryNodes: [1] });
    expect(v2({ cpu: { cpus: '0-2,7' } }, 243)).toEqual({});
  });
  it('devices only when given on update', () => {
    expect(v2({})).toEqual({});
    expect(resourceProperties({}, { cgroup: 'v2', systemdVersion: 252 }).map((p) => p.name)).toEqual(['DevicePolicy', 'DeviceAllow', 'DeviceAllow']);
  });
});

describe('resourceProperties, cgroup v1 (runc genV1ResourcesProperties)', () => {
  it('uses the v1 names and values', () => {
    const props = resourceProperties({ memory: { limit: 1 << 20 }, cpu: { shares: 512 }, blockIO: { weight: 300 }, pids: { limit: 9 } }, { cgroup: 'v1', systemdVersion: 219, update: true });
    expect(byName(props)).toEqual({ MemoryLimit: BigInt(1 << 20), CPUShares: 512n, BlockIOWeight: 300n, TasksMax: 9n });
  });
});

describe('cpuQuotaProperties (runc addCpuQuota)', () => {
  it('is per second, rounded up to 10 ms, with the period from 242', () => {
    expect(byName(cpuQuotaProperties(50_000, 100_000, 252))).toEqual({ CPUQuotaPeriodUSec: 100_000n, CPUQuotaPerSecUSec: 500_000n });
    expect(byName(cpuQuotaProperties(33_333, 100_000, 252))).toEqual({ CPUQuotaPeriodUSec: 100_000n, CPUQuotaPerSecUSec: 340_000n });
    expect(byName(cpuQuotaProperties(20_000, 0, 252))).toEqual({ CPUQuotaPerSecUSec: 200_000n });
    expect(byName(cpuQuotaProperties(50_000, 200_000, 241))).toEqual({ CPUQuotaPerSecUSec: 250_000n });
  });
  it('a period without a quota is no quota (infinity)', () => {
    expect(byName(cpuQuotaProperties(-1, 50_000, 252))).toEqual({ CPUQuotaPeriodUSec: 50_000n, CPUQuotaPerSecUSec: INFINITY });
    expect(cpuQuotaProperties(0, 0, 252)).toEqual([]);
  });
});

describe('rangeToBits (runc RangeToBits)', () => {
  it.each([
    ['0', [1]],
    ['0-7', [0xff]],
    ['1,9', [2, 2]],
    ['0-2,7', [0x87]],
    ['16', [0, 0, 1]],
  ])('%s', (list, bytes) => expect(rangeToBits(list, 'f')).toEqual(bytes));
  it('refuses what is not a list', () => {
    expect(() => rangeToBits('a-b', 'linux.resources.cpu.cpus')).toThrow('linux.resources.cpu.cpus: invalid list "a-b"');
    expect(() => rangeToBits('3-1', 'f')).toThrow('f: invalid range "3-1"');
  });
});

describe('deviceProperties (runc devices/systemd.go)', () => {
  it('runc\'s default list: strict, emptied, then the paths systemd takes', () => {
    const props = deviceProperties({});
    expect(props[0]).toEqual({ name: 'DevicePolicy', signature: 's', value: 'strict' });
    expect(props[1]).toEqual({ name: 'DeviceAllow', signature: 'a(ss)', value: [] });
    expect(props[2].value).toEqual([
      ['char-*', 'm'], ['block-*', 'm'], ['/dev/char/1:3', 'rwm'], ['/dev/char/1:8', 'rwm'], ['/dev/char/1:7', 'rwm'],
      ['/dev/char/5:0', 'rwm'], ['/dev/char/1:5', 'rwm'], ['/dev/char/1:9', 'rwm'], ['char-136', 'rwm'], ['/dev/char/5:2', 'rwm'],
      ['/dev/char/10:200', 'rwm'],
    ]);
  });
  it('a config rule adds its device; a deny of a default takes it out', () => {
    const props = deviceProperties({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'b', major: 7, minor: 0, access: 'rw' }] });
    expect(props[2].value).toContainEqual(['/dev/block/7:0', 'rw']);
  });
  it('allow-all is auto with no list', () => {
    const props = deviceProperties({ devices: [{ allow: true, access: 'rwm' }] });
    expect(byName(props)).toEqual({ DevicePolicy: 'auto', DeviceAllow: [] });
  });
  it('allow-all with exceptions cannot be said: strict, nothing allowed, and a warning', () => {
    const warnings: string[] = [];
    const props = deviceProperties({ devices: [{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 1, access: 'w' }] }, (m) => warnings.push(m));
    expect(props).toHaveLength(2);
    expect(props[0].value).toBe('strict');
    expect(warnings).toHaveLength(1);
  });
});

describe('unifiedProperties (runc unifiedResToSystemdProps)', () => {
  it('maps what systemd has a property for and leaves the rest to the files', () => {
    expect(byName(unifiedProperties({ 'cpu.max': '50000 100000', 'memory.high': '1048576', 'memory.min': 'max', 'pids.max': '7', 'cpu.weight': '10', 'io.weight': '100', 'memory.oom.group': '1' }, 252))).toEqual({
      CPUQuotaPeriodUSec: 100_000n, CPUQuotaPerSecUSec: 500_000n, MemoryHigh: 1048576n, MemoryMin: INFINITY, TasksMax: 7n, CPUWeight: 10n,
    });
  });
  it('refuses a value that is not a number', () => {
    expect(() => unifiedProperties({ 'memory.max': 'lots' }, 252)).toThrow('linux.resources.unified["memory.max"]: "lots" is not a number or "max"');
  });
});

describe('busctlArguments', () => {
  it('writes a(sv) as busctl takes it', () => {
    expect(busctlArguments([
      { name: 'Delegate', signature: 'b', value: true },
      { name: 'PIDs', signature: 'au', value: [42] },
      { name: 'MemoryMax', signature: 't', value: INFINITY },
      { name: 'DeviceAllow', signature: 'a(ss)', value: [['/dev/char/1:3', 'rwm']] },
      { name: 'Wants', signature: 'as', value: ['a.slice'] },
    ])).toEqual(['5', 'Delegate', 'b', 'true', 'PIDs', 'au', '1', '42', 'MemoryMax', 't', '18446744073709551615',
      'DeviceAllow', 'a(ss)', '1', '/dev/char/1:3', 'rwm', 'Wants', 'as', '1', 'a.slice']);
  });
});

/** A bus that records its calls; `unknown` names properties this "systemd" refuses. */
function fakeBus(unknown: string[] = []) {
  const calls: string[] = [];
  const units = new Map<string, UnitProperty[]>();
  const refuse = (props: UnitProperty[]) => {
    const bad = props.find((p) => unknown.includes(p.name));
    if (bad) throw new BusError(`StartTransientUnit: Cannot set property ${bad.name}, or unknown property`);
  };
  const bus: SystemdBus = {
    user: false,
    version: () => 252,
    managerCgroup: () => '/',
    startTransientUnit(unit, props) {
      calls.push(`start ${unit} ${props.map((p) => p.name).join(',')}`);
      refuse(props);
      units.set(unit, props);
    },
    setUnitProperties(unit, props) {
      calls.push(`set ${unit} ${props.map((p) => p.name).join(',')}`);
      refuse(props);
    },
    stopUnit(unit) {
      calls.push(`stop ${unit}`);
      units.delete(unit);
    },
    activeState: (unit) => (units.has(unit) ? 'active' : undefined),
  };
  return { bus, calls, units };
}

/** The v2 manager's part, recorded. */
function fakeInner(calls: string[]): CgroupManager {
  const rec = (what: string) => () => void calls.push(what);
  return {
    version: 'v2', paths: { '': '/sys/fs/cgroup/system.slice/docker-abc.scope' },
    check: () => undefined, create: rec('files: create'), apply: rec('files: apply'), join: (pid: number) => void calls.push(`files: join ${pid}`),
    pids: () => [], frozen: () => false, freeze: rec('freeze'), thaw: rec('thaw'), signalAll: rec('signalAll'),
    destroy: rec('files: destroy'), stats: () => { throw new Error('unused'); }, oomKillCount: () => 0n, exists: () => true,
  };
}

describe('SystemdManager', () => {
  const unit = unitFor('system.slice:docker:abc', 'abc', false);
  it('starts the unit with the init\'s pid at the first join, then writes the files; exec joins by file', () => {
    const { bus, calls, units } = fakeBus();
    const m = new SystemdManager(unit, fakeInner(calls), bus, { id: 'abc', started: false });
    m.create({ memory: { limit: 1 << 20 } });
    m.apply({ memory: { limit: 1 << 20 } });
    expect(calls).toEqual([]);
    m.join(42);
    m.join(43);
    expect(calls).toEqual([
      'start docker-abc.scope Description,Slice,PIDs,Delegate,MemoryAccounting,CPUAccounting,IOAccounting,TasksAccounting,DefaultDependencies,DevicePolicy,DeviceAllow,DeviceAllow,MemoryMax',
      'files: create', 'files: apply', 'files: join 43',
    ]);
    expect(byName(units.get('docker-abc.scope')!)).toMatchObject({ Slice: 'system.slice', Delegate: true, PIDs: [42], MemoryMax: BigInt(1 << 20) });
  });
  it('update: SetUnitProperties, then the files', () => {
    const { bus, calls } = fakeBus();
    new SystemdManager(unit, fakeInner(calls), bus, { id: 'abc', started: true }).apply({ pids: { limit: 5 } }, { update: true });
    expect(calls).toEqual(['set docker-abc.scope TasksMax', 'files: apply']);
  });
  it('leaves out a resource property this systemd does not know, with a warning', () => {
    const { bus, calls } = fakeBus(['MemorySwapMax']);
    const warnings: string[] = [];
    const m = new SystemdManager(unit, fakeInner(calls), bus, { id: 'abc', started: false, warn: (w) => warnings.push(w) });
    m.apply({ memory: { limit: 1 << 20, swap: 2 << 20 } });
    m.join(42);
    expect(calls[1]).not.toContain('MemorySwapMax');
    expect(warnings).toEqual(['systemd 252 has no unit property MemorySwapMax: the limit is written to the cgroup\'s files only']);
  });
  it('fails in one line when systemd refuses one of its own properties', () => {
    const { bus } = fakeBus(['Delegate']);
    const m = new SystemdManager(unit, fakeInner([]), bus, { id: 'abc', started: false });
    expect(() => m.join(42)).toThrow('--systemd-cgroup: cannot start the unit docker-abc.scope in system.slice: StartTransientUnit: Cannot set property Delegate, or unknown property');
  });
  it('destroy empties the cgroup first, then stops the unit', () => {
    const { bus, calls } = fakeBus();
    new SystemdManager(unit, fakeInner(calls), bus, { id: 'abc', started: true }).destroy();
    expect(calls).toEqual(['files: destroy', 'stop docker-abc.scope']);
  });
});

describe('MemorySwapMax when swap equals the limit', () => {
  it('is 0, as the file memory.swap.max', () => {
    expect(byName(resourceProperties({ memory: { limit: 1 << 27, swap: 1 << 27 } }, { cgroup: 'v2', systemdVersion: 252, update: true }))).toEqual({ MemoryMax: BigInt(1 << 27), MemorySwapMax: 0n });
  });
});

describe('SystemdManager.create', () => {
  it('fails in one line, before the init exists, when the bus refuses', () => {
    const { bus } = fakeBus();
    bus.version = () => { throw new BusError('systemd (system bus): read the manager\'s Version: Failed to connect to bus: No such file or directory'); };
    const m = new SystemdManager(unitFor(':husk:c1', 'c1', false), fakeInner([]), bus, { id: 'c1', started: false });
    expect(() => m.create({})).toThrow('--systemd-cgroup: systemd (system bus): read the manager\'s Version: Failed to connect to bus: No such file or directory');
  });
});
