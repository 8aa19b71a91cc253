// Where a container's cgroup goes: the host's layout from mountinfo and /proc/self/cgroup,
// and linux.cgroupsPath placed as runc places it (cleaned, absolute, relative, default).
import { describe, expect, it } from 'vitest';
import { describeLayout, parseLayout, parseProcCgroup } from '../../src/host/cgroupLayout';
import { cgroupDirs, cleanPath, distinctDirs, innerPath } from '../../src/cgroups/paths';
import { HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, UNIFIED_MOUNTINFO } from './cgroups-fakefs';

describe('cleanPath (runc utils.CleanPath)', () => {
  it.each([
    ['', ''],
    ['/', '/'],
    ['/a/b/', '/a/b'],
    ['/a/../../b', '/b'],
    ['a/b', 'a/b'],
    ['../../a', 'a'],
    ['a/../../b', 'b'],
    ['./a//b/.', 'a/b'],
    ['..', '.'],
    ['.', '.'],
  ])('%j -> %j', (input, out) => expect(cleanPath(input)).toBe(out));
});

describe('innerPath', () => {
  it('is the container id when cgroupsPath is absent', () => {
    expect(innerPath(undefined, 'c1')).toBe('c1');
    expect(innerPath('', 'c1')).toBe('c1');
  });
  it('keeps an absolute path absolute and cleans it', () => {
    expect(innerPath('/machine/../pods/c1/', 'x')).toBe('/pods/c1');
  });
  it('never lets a relative path climb out of its parent', () => {
    expect(innerPath('../../../etc', 'x')).toBe('etc');
  });
  it('takes a colon path literally without --systemd-cgroup (as runc\'s cgroupfs driver)', () => {
    expect(innerPath('a:b:c', 'x')).toBe('a:b:c');
  });
});

describe('parseLayout', () => {
  it('reads this machine\'s hybrid layout', () => {
    const l = parseLayout(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
    expect(l.mode).toBe('hybrid');
    expect(l.unified).toEqual({ controllers: [], mountPoint: '/sys/fs/cgroup/unified', ownPath: '/', own: '/sys/fs/cgroup/unified' });
    expect(l.v1.map((h) => h.controllers.join(','))).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'name=systemd']);
    expect(l.v1.find((h) => h.controllers.includes('memory'))!.own).toBe('/sys/fs/cgroup/memory/session/abc');
    expect(describeLayout(l)).toBe('hybrid: cgroup v1 controllers, and cgroup v2 at /sys/fs/cgroup/unified');
  });
  it('reads a unified host', () => {
    const l = parseLayout(UNIFIED_MOUNTINFO, '0::/user.slice/user-0.slice/session-1.scope\n');
    expect(l.mode).toBe('unified');
    expect(l.v1).toEqual([]);
    expect(l.unified!.own).toBe('/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope');
  });
  it('reads a legacy host with co-mounted controllers', () => {
    const mi = [
      '1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
      '2 0 0:2 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
      '3 0 0:3 / /sys/fs/cgroup/net_cls rw - cgroup cgroup rw,net_cls,release_agent=/x',
    ].join('\n');
    const l = parseLayout(mi, '3:cpuacct,cpu:/a\n2:memory:/b\n1:net_cls:/\n');
    expect(l.mode).toBe('legacy');
    expect(l.unified).toBeUndefined();
    expect(l.v1.map((h) => [h.controllers, h.own])).toEqual([
      [['cpu', 'cpuacct'], '/sys/fs/cgroup/cpu,cpuacct/a'],
      [['memory'], '/sys/fs/cgroup/memory/b'],
      [['net_cls'], '/sys/fs/cgroup/net_cls'],
    ]);
  });
  it('places husk\'s own cgroup relative to a bind-mounted hierarchy root (inside a container)', () => {
    const l = parseLayout('1 0 0:1 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw', '0::/docker/abc/sub\n');
    expect(l.unified!.own).toBe('/sys/fs/cgroup/sub');
  });
  it('has no mode without cgroup mounts', () => {
    expect(parseLayout('1 0 0:1 / / rw - ext4 /dev/vda rw', '').mode).toBe('none');
  });
  it('parses /proc/self/cgroup keys', () => {
    expect([...parseProcCgroup(HYBRID_PROC_CGROUP)].slice(-2)).toEqual([['cpu', '/'], ['', '/']]);
  });
});

describe('cgroupDirs', () => {
  const hybrid = parseLayout(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
  const unified = parseLayout(UNIFIED_MOUNTINFO, '0::/user.slice/husk.scope\n');

  it('hybrid, default (relative) path: under husk\'s own cgroup in every hierarchy, and in cgroup2', () => {
    const dirs = cgroupDirs(hybrid, innerPath(undefined, 'c1'));
    expect(dirs).toEqual({
      cpu: '/sys/fs/cgroup/cpu/c1',
      cpuacct: '/sys/fs/cgroup/cpuacct/c1',
      cpuset: '/sys/fs/cgroup/cpuset/c1',
      memory: '/sys/fs/cgroup/memory/session/abc/c1',
      devices: '/sys/fs/cgroup/devices/c1',
      freezer: '/sys/fs/cgroup/freezer/c1',
      blkio: '/sys/fs/cgroup/blkio/c1',
      pids: '/sys/fs/cgroup/pids/c1',
      'name=systemd': '/sys/fs/cgroup/systemd/c1',
      '': '/sys/fs/cgroup/unified/c1',
    });
  });
  it('hybrid, absolute path: under each hierarchy\'s root', () => {
    expect(cgroupDirs(hybrid, innerPath('/pods/c1', 'x')).memory).toBe('/sys/fs/cgroup/memory/pods/c1');
  });
  it('unified, relative path: under the parent of husk\'s own cgroup (which has processes)', () => {
    expect(cgroupDirs(unified, innerPath(undefined, 'c1'))).toEqual({ '': '/sys/fs/cgroup/user.slice/c1' });
    expect(cgroupDirs(unified, innerPath('k8s/pod1', 'x'))).toEqual({ '': '/sys/fs/cgroup/user.slice/k8s/pod1' });
  });
  it('unified, husk in the root cgroup: directly under the root', () => {
    expect(cgroupDirs(parseLayout(UNIFIED_MOUNTINFO, '0::/\n'), 'c1')).toEqual({ '': '/sys/fs/cgroup/c1' });
  });
  it('unified, absolute path', () => {
    expect(cgroupDirs(unified, innerPath('/machine.slice/c1', 'x'))).toEqual({ '': '/sys/fs/cgroup/machine.slice/c1' });
  });
  it('co-mounted controllers share one directory', () => {
    const l = parseLayout('1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct', '1:cpu,cpuacct:/\n');
    const dirs = cgroupDirs(l, 'c1');
    expect(dirs).toEqual({ cpu: '/sys/fs/cgroup/cpu,cpuacct/c1', cpuacct: '/sys/fs/cgroup/cpu,cpuacct/c1' });
    expect(distinctDirs(dirs)).toEqual(['/sys/fs/cgroup/cpu,cpuacct/c1']);
  });
});

describe('cgroupDirs refuses a cgroup that is not the container\'s own', () => {
  const hybrid = parseLayout(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP);
  const unified = parseLayout(UNIFIED_MOUNTINFO, '0::/user.slice/husk.scope\n');
  it('the root of a hierarchy ("/")', () => {
    expect(() => cgroupDirs(unified, innerPath('/', 'x'))).toThrow(
      'config.json: linux.cgroupsPath "/" resolves to /sys/fs/cgroup, the root of the cgroup hierarchy; a container needs a cgroup of its own',
    );
  });
  it('husk\'s own cgroup or an ancestor of it', () => {
    expect(() => cgroupDirs(hybrid, innerPath('.', 'x'))).toThrow('resolves to /sys/fs/cgroup/cpu, the root of the cgroup hierarchy');
    expect(() => cgroupDirs(unified, innerPath('.', 'x'))).toThrow('resolves to /sys/fs/cgroup/user.slice, which holds husk\'s own cgroup');
    expect(() => cgroupDirs(unified, innerPath('/user.slice', 'x'))).toThrow('resolves to /sys/fs/cgroup/user.slice, which holds husk\'s own cgroup');
  });
});
