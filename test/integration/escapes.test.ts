// The container escapes that real runtimes have shipped fixes for (issue 3). Each test sets up
// what the attack needs and asserts what the container (or the host) observes; each would fail
// on a runtime that does the naive thing, as explained above it.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  expectStatus,
  isHusk,
  isRunc,
  makeBundle,
  mountAt,
  newId,
  parseReport,
  rt,
  runBundle,
  state,
  tempDir,
  waitFor,
  type BundleOptions,
  type RtResult,
} from './harness';

afterEach(cleanup);

/** Mount points under `dir` in the host's mount table (this process's mount namespace). */
function hostMountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint) => mountPoint !== undefined && (mountPoint === dir || mountPoint.startsWith(dir + '/')));
}

/** Every file under `dir`, relative, sorted. */
function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      out.push(rel);
      if (entry.isDirectory()) walk(rel);
    }
  };
  walk('');
  return out.sort();
}

/** A refusal: exit 1 and, from husk, one `husk: ` line. */
function expectRefusedCleanly(res: RtResult): void {
  expect(res.status, res.stderr).toBe(1);
  if (isHusk) {
    const lines = res.stderr.split('\n').filter(Boolean);
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^husk: /);
  }
}

// ---------------------------------------------------------------------------------------------
// CVE-2021-30465 (runc < 1.0.0-rc95) and its family: a mount destination is a path inside the
// rootfs, but the rootfs belongs to the image (or to another container sharing a volume), which
// can make any component of it a symlink. A runtime that joins rootfs + destination and calls
// mount(2) on the result follows the symlink on the host: `/escape -> /` made runc mount over
// the host's directories. Every component must be resolved inside the rootfs (openat2 with
// RESOLVE_IN_ROOT, or a walk that treats absolute links and `..` as relative to the rootfs),
// and the mount made on the resolved fd.
describe('mount destinations through symlinks that point out of the rootfs', () => {
  interface Case {
    name: string;
    /** Creates the symlink(s) in the rootfs; returns the container path to mount on. */
    setup(rootfs: string, outside: string): string;
    /** Where the mount lands, seen from inside the container. */
    landsAt(outside: string): string;
  }
  const cases: Case[] = [
    {
      name: 'an absolute symlink',
      setup: (rootfs, outside) => {
        fs.symlinkSync(outside, path.join(rootfs, 'escape'));
        return '/escape/x';
      },
      landsAt: (outside) => `${outside}/x`,
    },
    {
      name: 'a ../../ symlink',
      setup: (rootfs, outside) => {
        fs.symlinkSync(`${'../'.repeat(12)}${outside.slice(1)}`, path.join(rootfs, 'escape'));
        return '/escape/x';
      },
      landsAt: (outside) => `${outside}/x`,
    },
    {
      name: 'a symlinked intermediate directory',
      setup: (rootfs, outside) => {
        fs.mkdirSync(path.join(rootfs, 'a', 'b'), { recursive: true });
        fs.symlinkSync(`../${'../'.repeat(12)}${outside.slice(1)}`, path.join(rootfs, 'a', 'b', 'link'));
        return '/a/b/link/c/x';
      },
      landsAt: (outside) => `${outside}/c/x`,
    },
    {
      name: 'a symlink as the last component',
      setup: (rootfs, outside) => {
        fs.symlinkSync(outside, path.join(rootfs, 'escape'));
        return '/escape';
      },
      landsAt: (outside) => outside,
    },
  ];

  function check(c: Case, type: 'tmpfs' | 'bind', targetExistsInRootfs: boolean) {
    const outside = tempDir('outside-');
    const source = tempDir('source-');
    fs.writeFileSync(path.join(source, 'from-source'), 'bound\n');
    let destination = '';
    const bundle = makeBundle({
      config: (config) => {
        config.root!.readonly = false;
      },
    });
    destination = c.setup(bundle.rootfs, outside);
    const inside = c.landsAt(outside);
    if (targetExistsInRootfs) fs.mkdirSync(bundle.path(inside), { recursive: true });
    bundle.patch((config) => {
      config.mounts!.push(
        type === 'tmpfs'
          ? { destination, type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }
          : { destination, type: 'bind', source, options: ['rbind', 'ro'] },
      );
      config.process!.args = ['/probe', 'report', 'then', 'ls', destination];
    });
    const before = listTree(outside);
    const res = runBundle(bundle);
    // Whatever happened, the host directory is untouched and nothing is mounted on it.
    expect(listTree(outside)).toEqual(before);
    expect(hostMountsUnder(outside)).toEqual([]);
    expectStatus(res, 0);
    const [reportLine, ...listing] = res.stdout.trimEnd().split('\n');
    const report = parseReport(reportLine);
    // The mount is inside the container, at the symlink's target resolved in the rootfs...
    expect(mountAt(report, inside)?.fsType).toBe(type === 'tmpfs' ? 'tmpfs' : 'ext4');
    // ...so the rootfs, not the host, got the directory it needed.
    expect(fs.statSync(bundle.path(inside)).isDirectory()).toBe(true);
    expect(listing).toEqual(type === 'bind' ? ['from-source'] : []);
  }

  for (const c of cases) {
    for (const type of ['tmpfs', 'bind'] as const) {
      it(`${c.name}: a ${type} mount lands inside the rootfs (target present in the rootfs)`, () => check(c, type, true));
      // runc creates the missing directories of the resolved target inside the rootfs (what
      // an image's dangling absolute symlink, like /etc/resolv.conf -> /run/..., needs).
      it(`${c.name}: a ${type} mount lands inside the rootfs (target created in the rootfs)`, () => check(c, type, false));
    }
  }
});

// ---------------------------------------------------------------------------------------------
// maskedPaths and readonlyPaths are container paths too. A runtime that applies them before
// pivot_root as rootfs + path follows an absolute symlink in the rootfs to the host: with the
// rootfs's /data -> /etc it would bind the host's /etc read-only (or mask it) inside the
// container's mount namespace, and leave the container's own /etc as it was. Resolved in the
// container's root, /data is the container's /etc.
describe('maskedPaths and readonlyPaths through a symlink in the rootfs', () => {
  function symlinkBundle(args: string[], config: BundleOptions['config']) {
    const bundle = makeBundle({
      args,
      config: (c) => {
        c.root!.readonly = false;
        config?.(c);
      },
    });
    fs.writeFileSync(bundle.path('etc/marker'), 'container\n');
    fs.symlinkSync('/etc', bundle.path('data'));
    return bundle;
  }

  it("a read-only path makes the container's /etc read-only, not the host's", () => {
    const bundle = symlinkBundle(['cat', '/etc/marker', 'then', 'write', '/tmp/writable', 'then', 'write', '/etc/new'], (c) =>
      c.linux!.readonlyPaths!.push('/data'),
    );
    const res = runBundle(bundle);
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('container\n');
    expect(res.stderr).toBe('write /etc/new: EROFS Read-only file system\n');
    expect(fs.existsSync(bundle.path('tmp/writable'))).toBe(true);
    expect(fs.existsSync(bundle.path('etc/new'))).toBe(false);
    expect(hostMountsUnder('/etc')).toEqual([]);
  });

  it("a masked path masks the container's /etc, not the host's", () => {
    const bundle = symlinkBundle(['ls', '/etc', 'then', 'cat', '/etc/marker'], (c) => c.linux!.maskedPaths!.push('/data'));
    const res = runBundle(bundle);
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe('cat /etc/marker: ENOENT No such file or directory\n');
    expect(fs.readFileSync(bundle.path('etc/marker'), 'utf8')).toBe('container\n');
    expect(hostMountsUnder('/etc')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// CVE-2019-5736: a process in the container opens /proc/<pid>/exe of a runtime process that
// has joined the container (runc exec, or runc's init before its execve), which is the host's
// runtime binary, and writes through it once that process has gone (ETXTBSY only lasts while
// the binary runs). The same access to a runtime process gives its environment, its memory and
// its file descriptors (host fds, host /proc). The fix: the process is non-dumpable while it
// holds host resources, so no other process of the container passes the ptrace access check
// that /proc/<pid>/{exe,environ,mem,fd/*,cwd,root} require (root in the container has no
// CAP_SYS_PTRACE by default).
//
// The victim here is a container in the `created` state: its init is still the runtime's
// process (husk: a clone of node; runc: runc init) waiting on the exec fifo. The attacker is a
// second container that joins the victim's pid namespace by path, where the victim's init is
// pid 1, and has the same capabilities and uid (so only dumpability stands in its way).
describe("another container in the same pid namespace and the runtime's init", () => {
  const SECRET = `husk-it-secret-${process.pid}`;
  const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE'];

  function victim(): { id: string; pid: number } {
    const bundle = makeBundle({
      args: ['sleep', 'inf'],
      config: (c) => (c.process!.capabilities = { bounding: caps, effective: caps, permitted: caps }),
    });
    const id = newId('victim');
    // The secret is in the runtime's environment: what /proc/<init>/environ would give away.
    expectStatus(rt(['create', '--bundle', bundle.dir, id], { env: { HUSK_IT_SECRET: SECRET } }), 0);
    return { id, pid: state(id)!.pid };
  }

  function attack(victimPid: number, args: string[]): RtResult {
    const bundle = makeBundle({
      args,
      config: (c) => {
        c.process!.capabilities = { bounding: caps, effective: caps, permitted: caps };
        c.linux!.namespaces = c.linux!.namespaces!.map((n) => (n.type === 'pid' ? { type: 'pid', path: `/proc/${victimPid}/ns/pid` } : n));
      },
    });
    return runBundle(bundle);
  }

  it("sees the victim's init as pid 1 (so the refusals below are not for want of seeing it)", () => {
    const v = victim();
    const res = expectStatus(attack(v.pid, ['cat', '/proc/1/stat']), 0);
    expect(res.stdout).toMatch(/^1 \(/);
  });

  it("cannot open the runtime's binary for writing through /proc/1/exe", () => {
    const v = victim();
    const exe = fs.readlinkSync(`/proc/${v.pid}/exe`);
    const before = fs.existsSync(exe) ? fs.statSync(exe) : undefined;
    const res = attack(v.pid, ['write', '/proc/1/exe', '']);
    expect(res.status).toBe(1);
    // Not ETXTBSY, which only holds while the binary runs: either the link cannot be followed
    // (EACCES, non-dumpable), or what it leads to is not the host's file (runc 1.1: a sealed
    // memfd copy of itself, EROFS... or EPERM).
    expect(res.stderr).toMatch(/^write \/proc\/1\/exe: (EACCES|EPERM|EROFS) /);
    if (before) {
      const after = fs.statSync(exe);
      expect([after.size, after.mtimeMs]).toEqual([before.size, before.mtimeMs]);
    }
  });

  // runc 1.1.5's init waiting on the exec fifo is dumpable: it relies on running from a sealed
  // memfd copy of its binary instead, and the container can read its environment
  // (_LIBCONTAINER_* variables), memory, cwd, root and fds. Issue 3 asks for a non-dumpable
  // init, as runc 1.2 has.
  it.skipIf(isRunc).each([
    ['readlink', '/proc/1/exe'],
    ['cat', '/proc/1/environ'],
    ['cat', '/proc/1/mem'],
    ['readlink', '/proc/1/cwd'],
    ['ls', '/proc/1/root'],
    ['cat', '/proc/1/fd/0'],
  ])('cannot %s %s of the init', (command, file) => {
    const v = victim();
    const res = attack(v.pid, [command, file]);
    expect(res.status).toBe(1);
    expect(res.stdout).not.toContain(SECRET);
    expect(res.stderr).toMatch(new RegExp(`^${command} ${file}: (EACCES|EPERM) `));
  });

  it('can read /proc/1/environ once the init has become the container process (start)', async () => {
    const v = victim();
    expectStatus(rt(['start', v.id]), 0);
    // execve made it an ordinary, dumpable process: the same read that was refused works, and
    // gives the container's environment, not the runtime's.
    let res: RtResult | undefined;
    for (let i = 0; i < 50; i++) {
      res = attack(v.pid, ['cat', '/proc/1/environ']);
      if (res.status === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expectStatus(res!, 0);
    expect(res!.stdout).toContain('PATH=');
    expect(res!.stdout).not.toContain(SECRET);
  });
});

// ---------------------------------------------------------------------------------------------
// CVE-2024-21626 (runc < 1.1.12): runc leaked an fd of the host's /sys/fs/cgroup into the
// container's init, and `process.cwd: /proc/self/fd/7` (or an image's WORKDIR, or `runc exec
// --cwd`) made the process start in a host directory, from which `..` walks to the host's root.
// Every fd above 2 (and the --preserve-fds / LISTEN_FDS ones) must be closed at execve, and
// the cwd must be resolved inside the new root.
describe('file descriptors and the working directory', () => {
  function hostDirectoryFd(): { fd: number; dir: string } {
    const dir = tempDir('hostdir-');
    fs.writeFileSync(path.join(dir, 'host-secret'), 'host\n');
    return { fd: fs.openSync(dir, 'r'), dir };
  }

  it('gives the process only fds 0-2, none of them a host directory, even when the runtime has more', () => {
    const { fd, dir } = hostDirectoryFd();
    try {
      const bundle = makeBundle({ args: ['report', 'then', 'ls', '/proc/self/fd'] });
      const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()], { extraFds: [fd, fd, fd] }), 0);
      const report = parseReport(res.stdout);
      expect(report.fds.map((f) => f.fd)).toEqual([0, 1, 2]);
      for (const f of report.fds) expect(f.target ?? '').not.toContain(dir);
      // `ls /proc/self/fd` also shows the fd of the directory it reads (3).
      expect(res.stdout.trimEnd().split('\n').slice(1)).toEqual(['0', '1', '2', '3']);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('gives the same after create and start', async () => {
    const { fd, dir } = hostDirectoryFd();
    try {
      const bundle = makeBundle({ args: ['report'] });
      const id = newId();
      const created = expectStatus(rt(['create', '--bundle', bundle.dir, id], { extraFds: [fd, fd] }), 0);
      expectStatus(rt(['start', id], { extraFds: [fd] }), 0);
      const out = await waitFor('the probe\'s report', () => created.readStdout().includes('\n') && created.readStdout());
      const report = parseReport(out);
      expect(report.fds.map((f) => f.fd)).toEqual([0, 1, 2]);
      for (const f of report.fds) expect(f.target ?? '').not.toContain(dir);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('passes on exactly the --preserve-fds ones', () => {
    const { fd, dir } = hostDirectoryFd();
    try {
      const bundle = makeBundle({ args: ['report'] });
      const res = expectStatus(rt(['run', '--preserve-fds', '1', '--bundle', bundle.dir, newId()], { extraFds: [fd, fd] }), 0);
      const report = parseReport(res.stdout);
      expect(report.fds.map((f) => f.fd)).toEqual([0, 1, 2, 3]);
      expect(report.fds[3].target).toBe(dir);
    } finally {
      fs.closeSync(fd);
    }
  });

  // The attack itself: the cwd through /proc/self/fd/N for each N a runtime might hold, then
  // `..` up to the host's root and down to a file of the host's. The runtime must either refuse
  // the config or start the process inside its root.
  it.each([3, 4, 5, 6, 7, 8, 9, 10, 11, 12])('process.cwd /proc/self/fd/%i does not lead out of the root', async (n) => {
    const { fd, dir } = hostDirectoryFd();
    try {
      const climb = `${'../'.repeat(16)}${dir.slice(1)}/host-secret`;
      const bundle = makeBundle({
        args: ['cat', climb],
        config: (c) => (c.process!.cwd = `/proc/self/fd/${n}`),
      });
      const res = rt(['run', '--bundle', bundle.dir, newId()], { extraFds: [fd] });
      expect(res.stdout).not.toContain('host');
      if (res.status === 0) throw new Error(`the process read ${climb} from cwd /proc/self/fd/${n}: ${res.stdout}`);
      // Refused by the runtime (exit 1), or the process ran inside the root and found nothing.
      if (!/^cat /.test(res.stderr)) {
        expectRefusedCleanly(res);
        await expectNothingLeft();
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it.each([3, 5, 7, 9])('a cwd symlink in the rootfs to /proc/self/fd/%i does not lead out of the root', async (n) => {
    const { fd, dir } = hostDirectoryFd();
    try {
      const climb = `${'../'.repeat(16)}${dir.slice(1)}/host-secret`;
      const bundle = makeBundle({ args: ['cat', climb], config: (c) => (c.process!.cwd = '/work') });
      fs.symlinkSync(`/proc/self/fd/${n}`, bundle.path('work'));
      const res = rt(['run', '--bundle', bundle.dir, newId()], { extraFds: [fd] });
      expect(res.stdout).not.toContain('host');
      if (res.status === 0) throw new Error(`the process read ${climb}: ${res.stdout}`);
      if (!/^cat /.test(res.stderr)) {
        expectRefusedCleanly(res);
        await expectNothingLeft();
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it.each([
    ['absolute', (outside: string) => outside],
    ['../../', (outside: string) => `${'../'.repeat(12)}${outside.slice(1)}`],
  ])('a cwd that is an %s symlink to a host path starts inside the rootfs', (_, target) => {
    const outside = tempDir('outside-');
    fs.writeFileSync(path.join(outside, 'marker'), 'host\n');
    const bundle = makeBundle({ args: ['cwd', 'then', 'cat', 'marker'], config: (c) => (c.process!.cwd = '/workdir') });
    fs.symlinkSync(target(outside), bundle.path('workdir'));
    // The same path inside the rootfs, with its own marker.
    fs.mkdirSync(bundle.path(outside), { recursive: true });
    fs.writeFileSync(path.join(bundle.path(outside), 'marker'), 'rootfs\n');
    const res = expectStatus(runBundle(bundle), 0);
    expect(res.stdout).toBe(`${outside}\nrootfs\n`);
  });
});

// ---------------------------------------------------------------------------------------------
// /proc and /sys hold the host's kernel knobs; the default config's readonlyPaths and
// maskedPaths (Docker's) keep a root process in the container from using them: sysrq-trigger
// can crash or reboot the host, /proc/sys holds the host-wide sysctls, /proc/kcore is the
// host's memory, /sys/firmware its firmware tables.
describe('/proc and /sys', () => {
  // Only what this kernel has can be tested (the machine these tests were written on has no
  // /proc/sysrq-trigger nor /proc/kcore); each list keeps the entries the host has.
  const present = (paths: string[]) => paths.filter((p) => fs.existsSync(p));
  const nonEmptyDirectories = (paths: string[]) => present(paths).filter((p) => fs.readdirSync(p).length > 0);

  const readOnly = present(['/proc/sysrq-trigger', '/proc/sys/kernel/domainname', '/proc/sys/vm/drop_caches']);
  it.each(readOnly)('%s is read-only', (file) => {
    // An empty write: opening for writing is the test; nothing is written even if it opens.
    const res = runBundle(makeBundle({ args: ['write', file, ''] }));
    expect(res.status).toBe(1);
    expect(res.stderr).toBe(`write ${file}: EROFS Read-only file system\n`);
  });

  it('tests /proc/sys at least', () => expect(readOnly).toContain('/proc/sys/vm/drop_caches'));

  // Masked files become /dev/null: stat shows 1:3 and they read empty. /proc/kcore is only
  // stat'ed, never read: unmasked, it reads as the host's whole memory.
  const maskedFiles = present(['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/latency_stats', '/proc/timer_stats', '/proc/sched_debug']);
  it.each(maskedFiles)('masks %s', (file) => {
    const args = ['stat', file, ...(file === '/proc/kcore' ? [] : ['then', 'cat', file])];
    const res = expectStatus(runBundle(makeBundle({ args })), 0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines, 'only the stat line: the file reads empty').toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ type: 'char', rdevMajor: 1, rdevMinor: 3 });
  });

  it('has host files to mask: /proc/keys and /proc/timer_list are not empty on the host', () => {
    expect(maskedFiles).toEqual(expect.arrayContaining(['/proc/keys', '/proc/timer_list']));
    expect(fs.readFileSync('/proc/keys', 'utf8')).not.toBe('');
  });

  const maskedDirectories = nonEmptyDirectories(['/sys/firmware', '/proc/acpi', '/proc/scsi', '/proc/asound']);
  it.each(maskedDirectories)('masks the directory %s (empty inside)', (dir) => {
    const res = expectStatus(runBundle(makeBundle({ args: ['ls', dir] })), 0);
    expect(res.stdout).toBe('');
  });

  it('has host directories to mask: /sys/firmware', () => expect(maskedDirectories).toContain('/sys/firmware'));

  it('has a read-only /sys', () => {
    expect(fs.existsSync('/sys/kernel/profiling')).toBe(true);
    const res = runBundle(makeBundle({ args: ['write', '/sys/kernel/profiling', ''] }));
    expect(res.status).toBe(1);
    expect(res.stderr).toBe('write /sys/kernel/profiling: EROFS Read-only file system\n');
  });
});

// ---------------------------------------------------------------------------------------------
// Keyrings are not namespaced: a container that inherits the runtime's session keyring can read
// and use the host user's keys. Each container gets a new session keyring named after it (runc
// names it "_ses.<id>", husk "<id>"). From inside, /proc/keys is masked and the probe cannot
// ask which session keyring it is in (keyctl(KEYCTL_GET_KEYRING_ID) is not one of its calls),
// so the host's /proc/keys, which lists every keyring root can view, is what shows it.
describe('session keyring', () => {
  const keyringOf = (id: string) => fs.readFileSync('/proc/keys', 'utf8').split('\n').filter((l) => new RegExp(`keyring\\s+(_ses\\.)?${id}: `).test(l));

  it('is a new one named after the container', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    expect(keyringOf(id)).toHaveLength(1);
  });

  it('is not made with --no-new-keyring', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--no-new-keyring', '--bundle', bundle.dir, id]), 0);
    expect(keyringOf(id)).toHaveLength(0);
  });
});
