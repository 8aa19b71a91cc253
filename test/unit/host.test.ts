// The host package's readers: one parser per host fact, one rule per file read.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/host/atomicWrite';
import { parseLayout } from '../../src/host/cgroupLayout';
import { mountPointOf, parseMountInfo } from '../../src/host/mountinfo';
import { parseGroup, parsePasswd } from '../../src/host/passwd';
import { readFileInRoot, resolveInRoot } from '../../src/host/rootfs';
import { cgroupV1Mounts } from '../../src/linux/hostInfo';
import { HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP, UNIFIED_MOUNTINFO } from './cgroups-fakefs';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-host-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('parseMountInfo', () => {
  const text = [
    '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
    '31 30 0:28 /docker/abc /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '40 22 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw,mode=755',
    '',
  ].join('\n');
  it('reads the ids, root, mount point, type and super options, with escapes decoded', () => {
    expect(parseMountInfo(text)).toEqual([
      { id: 22, parent: 1, root: '/', mountPoint: '/', fsType: 'ext4', superOptions: 'rw' },
      { id: 31, parent: 30, root: '/docker/abc', mountPoint: '/sys/fs/cgroup/cpu', fsType: 'cgroup', superOptions: 'rw,cpu' },
      { id: 40, parent: 22, root: '/', mountPoint: '/mnt/with space', fsType: 'tmpfs', superOptions: 'rw,mode=755' },
    ]);
  });
  it('finds the mount that holds a path', () => {
    const mounts = parseMountInfo(text);
    expect(mountPointOf('/mnt/with space/a', mounts)).toBe('/mnt/with space');
    expect(mountPointOf('/mnt/with spaces', mounts)).toBe('/');
  });
});

describe('passwd and group', () => {
  it('skips comments and malformed lines', () => {
    expect(parsePasswd('# c\nroot:x:0:0:root:/root:/bin/sh\nbad:x:y:0\nbob:x:1000:100::/home/bob:/bin/sh\n')).toEqual([
      { name: 'root', uid: 0, gid: 0, home: '/root' },
      { name: 'bob', uid: 1000, gid: 100, home: '/home/bob' },
    ]);
    expect(parseGroup('wheel:x:10:bob, alice\nbad:x:\n')).toEqual([{ name: 'wheel', gid: 10, members: ['bob', 'alice'] }]);
  });
});

describe('readFileInRoot', () => {
  it('follows symlinks inside the root, never out of it', () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc', 'passwd.real'), 'inside\n');
    fs.symlinkSync('../../../etc/passwd.real', path.join(root, 'etc', 'passwd'));
    fs.symlinkSync('/etc', path.join(root, 'hostetc'));
    fs.symlinkSync('loop', path.join(root, 'loop'));
    expect(readFileInRoot(root, '/etc/passwd')).toBe('inside\n');
    expect(resolveInRoot(root, '/hostetc/passwd')).toBe(path.join(root, 'etc', 'passwd.real'));
    expect(readFileInRoot(root, '/hostetc/hostname')).toBeUndefined();
    expect(readFileInRoot(root, '/etc/passwd.real/x')).toBeUndefined();
    expect(readFileInRoot(root, '/etc')).toBeUndefined();
    expect(() => resolveInRoot(root, '/loop')).toThrow('too many levels of symbolic links');
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file with its mode and leaves no temporary file', () => {
    const dir = tmp();
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, 'old');
    writeFileAtomic(file, 'new', 0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['state.json']);
  });
});

describe('the plan\'s cgroup v1 mounts, from the one cgroup layout', () => {
  it('repeats each hierarchy under /sys/fs/cgroup with its controllers as mount options', () => {
    const mounts = cgroupV1Mounts(parseLayout(HYBRID_MOUNTINFO, HYBRID_PROC_CGROUP));
    expect(mounts.find((m) => m.name === 'memory')).toEqual({ name: 'memory', options: 'memory', cgroupPath: '/session/abc' });
    expect(mounts.find((m) => m.name === 'systemd')).toEqual({ name: 'systemd', options: 'none,name=systemd', cgroupPath: '/' });
    expect(mounts.find((m) => m.name === 'unified')).toEqual({ name: 'unified', options: '', cgroupPath: '/' });
    expect(mounts.map((m) => m.name)).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified']);
  });
  it('has none on a unified host', () => {
    expect(cgroupV1Mounts(parseLayout(UNIFIED_MOUNTINFO, '0::/\n'))).toEqual([]);
  });
});
