// Rootless (issue 3): the runtime run by an unprivileged user, with `spec --rootless`, a user
// namespace that maps only the caller's own id, or whole subordinate ranges through
// newuidmap/newgidmap (Debian's uidmap package, with /etc/subuid and /etc/subgid), its state
// under $XDG_RUNTIME_DIR, and a clear refusal of what an unprivileged user cannot have
// (cgroup resource limits).
//
// The tests make a throw-away user, husk-rootless-test (a fixed name: a copy left by a run that
// was killed is reused, and removed at the end), give it the subordinate ids 200000-265535, and
// run the runtime under test as that user with `runuser -u husk-rootless-test --` and a clean
// environment (PATH, HOME, XDG_RUNTIME_DIR). The bundle directory is the user's; the rootfs
// (root's, 0755) only needs to be readable.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  hostNamespace,
  isHusk,
  isRunc,
  makeBundle,
  newId,
  parseReport,
  REFERENCE,
  RUNTIME,
  stateEntries,
  tempDir,
  which,
  type Spec,
} from './harness';

const USER = 'husk-rootless-test';
const SUBORDINATE = { start: 200000, count: 65536 };
const SUBID_LINE = `${USER}:${SUBORDINATE.start}:${SUBORDINATE.count}`;

let uid = -1;
let gid = -1;

function sh(file: string, args: string[]): void {
  const res = spawnSync(file, args, { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${res.stderr || res.error}`);
}

function removeLine(file: string, line: string): void {
  if (!fs.existsSync(file)) return;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const kept = lines.filter((l) => l !== line);
  if (kept.length !== lines.length) fs.writeFileSync(file, kept.join('\n'));
}

function addLine(file: string, line: string): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (text.split('\n').includes(line)) return;
  fs.writeFileSync(file, text + (text && !text.endsWith('\n') ? '\n' : '') + line + '\n');
}

beforeAll(() => {
  if (spawnSync('id', ['-u', USER]).status !== 0) sh('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  uid = Number(spawnSync('id', ['-u', USER], { encoding: 'utf8' }).stdout.trim());
  gid = Number(spawnSync('id', ['-g', USER], { encoding: 'utf8' }).stdout.trim());
  addLine('/etc/subuid', SUBID_LINE);
  addLine('/etc/subgid', SUBID_LINE);
});

afterAll(() => {
  removeLine('/etc/subuid', SUBID_LINE);
  removeLine('/etc/subgid', SUBID_LINE);
  spawnSync('userdel', [USER], { stdio: 'ignore' });
});

// ---------------------------------------------------------------------- running as the user

interface UserRun {
  command: string;
  status: number | null;
  stdout: string;
  stderr: string;
  readStdout(): string;
}

interface UserDirs {
  xdg: string;
  home: string;
}

/** A user-owned $XDG_RUNTIME_DIR (0700, as pam_systemd makes it) and $HOME for this test. */
function userDirs(): UserDirs {
  const xdg = tempDir('xdg-');
  const home = tempDir('home-');
  for (const dir of [xdg, home]) fs.chownSync(dir, uid, gid);
  fs.chmodSync(xdg, 0o700);
  return { xdg, home };
}

interface UserOptions {
  /** `--root DIR`; without it the runtime picks its default. */
  root?: string;
  /** Set XDG_RUNTIME_DIR (default true). */
  xdg?: boolean;
  runtime?: string;
}

/** Containers started as the user, deleted (as the user, the same way) after each test. */
const started: { id: string; dirs: UserDirs; opts: UserOptions }[] = [];

/**
 * Runs the runtime as the user with a clean environment. `root` adds `--root`; without it the
 * runtime picks its default. Output goes through files, so a detached container's inherited
 * stdout does not hold the call.
 */
function asUser(args: string[], dirs: UserDirs, opts: UserOptions = {}): UserRun {
  const runtime = opts.runtime ?? RUNTIME;
  const io = tempDir('io-');
  const out = path.join(io, 'stdout');
  const err = path.join(io, 'stderr');
  const outFd = fs.openSync(out, 'w');
  const errFd = fs.openSync(err, 'w');
  const env = ['PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', `HOME=${dirs.home}`];
  if (opts.xdg ?? true) env.push(`XDG_RUNTIME_DIR=${dirs.xdg}`);
  const argv = [...(opts.root ? ['--root', opts.root] : []), ...args];
  let res;
  try {
    res = spawnSync('runuser', ['-u', USER, '--', 'env', '-i', ...env, runtime, ...argv], {
      stdio: ['ignore', outFd, errFd],
      timeout: 30_000,
      killSignal: 'SIGKILL',
    });
  } finally {
    fs.closeSync(outFd);
    fs.closeSync(errFd);
  }
  return {
    command: `${path.basename(runtime)} ${argv.join(' ')} (as ${USER})`,
    status: res.status,
    stdout: fs.readFileSync(out, 'utf8'),
    stderr: fs.readFileSync(err, 'utf8'),
    readStdout: () => fs.readFileSync(out, 'utf8'),
  };
}

function expectOk(res: UserRun): UserRun {
  expect(res.status, `\`${res.command}\` exited ${res.status}; stderr: ${res.stderr}`).toBe(0);
  return res;
}

/** Runs a container as the user, remembering it for deletion. */
function userContainer(args: string[], dirs: UserDirs, opts: UserOptions = {}) {
  const id = newId('rl');
  started.push({ id, dirs, opts });
  return { id, res: asUser([...args, id], dirs, opts) };
}

afterEach(async () => {
  for (const { id, dirs, opts } of started.splice(0)) asUser(['delete', '--force', id], dirs, opts);
  await cleanup();
});

/**
 * A bundle of the user's: `spec --rootless` run as the user writes config.json, then the test
 * makes the probe the process. Returns the bundle dir and the config path.
 */
function rootlessBundle(dirs: UserDirs, args: string[], change?: (c: Spec) => void, runtime = RUNTIME) {
  const bundle = makeBundle({ args });
  fs.rmSync(bundle.configPath);
  fs.chownSync(bundle.dir, uid, gid);
  expectOk(asUser(['spec', '--rootless', '--bundle', bundle.dir], dirs, { runtime }));
  const config = JSON.parse(fs.readFileSync(bundle.configPath, 'utf8')) as Spec;
  config.process!.terminal = false;
  config.process!.args = ['/probe', ...args];
  change?.(config);
  fs.writeFileSync(bundle.configPath, JSON.stringify(config, null, 2));
  return bundle;
}

/** A host directory the user owns (mode 0777 so that mapped ids other than root can write). */
function userDataDir(): string {
  const data = tempDir('data-');
  fs.chownSync(data, uid, gid);
  fs.chmodSync(data, 0o777);
  return data;
}

const stateDirName = isRunc ? 'runc' : 'husk';

// --------------------------------------------------------------------------------------- tests

describe('spec --rootless and a single-id user namespace', () => {
  it.runIf(isHusk && REFERENCE)('writes the same config as runc spec --rootless', () => {
    const dirs = userDirs();
    const ours = tempDir('spec-');
    const theirs = tempDir('spec-');
    for (const dir of [ours, theirs]) fs.chownSync(dir, uid, gid);
    expectOk(asUser(['spec', '--rootless', '--bundle', ours], dirs));
    expectOk(asUser(['spec', '--rootless', '--bundle', theirs], dirs, { runtime: REFERENCE }));
    const read = (dir: string) => {
      const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      delete config.ociVersion;
      return config;
    };
    const config = read(ours);
    expect(config).toEqual(read(theirs));
    expect(config.linux.uidMappings).toEqual([{ containerID: 0, hostID: uid, size: 1 }]);
    expect(config.linux.gidMappings).toEqual([{ containerID: 0, hostID: gid, size: 1 }]);
  });

  it("runs the probe as root inside, with only the user's own id mapped", () => {
    const dirs = userDirs();
    const data = userDataDir();
    const bundle = rootlessBundle(
      dirs,
      [
        'report',
        'then', 'cat', '/proc/self/uid_map',
        'then', 'cat', '/proc/self/gid_map',
        'then', 'stat', '/probe',
        'then', 'write', '/data/by-root', 'x',
        'then', 'write', '/dev/null', 'x',
        'then', 'syscall', 'mknod', '/dev/probe-mknod',
      ],
      (c) => c.mounts!.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] }),
    );
    fs.mkdirSync(bundle.path('data'));
    const { res } = userContainer(['run', '--bundle', bundle.dir], dirs, { root: path.join(dirs.xdg, 'state') });
    expectOk(res);
    const lines = res.stdout.trimEnd().split('\n');
    const report = parseReport(lines[0]);
    expect([report.uid, report.gid, report.euid, report.egid]).toEqual([0, 0, 0, 0]);
    expect(report.namespaces.user).not.toBe(hostNamespace('user'));
    // No network namespace in a rootless config: the host's network.
    expect(report.namespaces.net).toBe(hostNamespace('net'));
    const defaults = ((1n << 5n) | (1n << 10n) | (1n << 29n)).toString(16).padStart(16, '0');
    expect(report.caps).toMatchObject({ bounding: defaults, effective: defaults, permitted: defaults });
    expect(lines[1]).toBe(`         0 ${String(uid).padStart(10)}          1`);
    expect(lines[2]).toBe(`         0 ${String(gid).padStart(10)}          1`);
    // The rootfs is the host root's, an id the namespace does not have.
    expect(JSON.parse(lines[3])).toMatchObject({ uid: 65534, gid: 65534 });
    expect(lines[4]).toBe('mknod = -1 EPERM');
    const st = fs.statSync(path.join(data, 'by-root'));
    expect([st.uid, st.gid]).toEqual([uid, gid]);
  });

  // With setgroups denied (the only way to write a map unprivileged), supplementary groups
  // cannot be set: husk refuses the config instead of running without them.
  it.skipIf(isRunc)('refuses process.user.additionalGids with one line saying why', async () => {
    const dirs = userDirs();
    const bundle = rootlessBundle(dirs, ['id'], (c) => (c.process!.user = { uid: 0, gid: 0, additionalGids: [0] }));
    const root = path.join(dirs.xdg, 'state');
    const { res, id } = userContainer(['create', '--bundle', bundle.dir], dirs, { root });
    expect(res.status).toBe(1);
    const lines = res.stderr.split('\n').filter(Boolean);
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^husk: create .*additionalGids/);
    await expectNothingLeft();
    expect(fs.existsSync(path.join(root, id))).toBe(false);
  });
});

describe('subordinate id ranges through newuidmap/newgidmap', () => {
  it.runIf(which('newuidmap') && which('newgidmap'))('maps 65536 more ids: process.user 1000 writes files as 200999 on the host', () => {
    const dirs = userDirs();
    const data = userDataDir();
    const bundle = rootlessBundle(
      dirs,
      ['id', 'then', 'cat', '/proc/self/uid_map', 'then', 'cat', '/proc/self/gid_map', 'then', 'write', '/data/by-1000', 'x', 'then', 'stat', '/data/by-1000'],
      (c) => {
        c.process!.user = { uid: 1000, gid: 1000 };
        c.linux!.uidMappings = [
          { containerID: 0, hostID: uid, size: 1 },
          { containerID: 1, hostID: SUBORDINATE.start, size: SUBORDINATE.count },
        ];
        c.linux!.gidMappings = [
          { containerID: 0, hostID: gid, size: 1 },
          { containerID: 1, hostID: SUBORDINATE.start, size: SUBORDINATE.count },
        ];
        c.mounts!.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] });
      },
    );
    fs.mkdirSync(bundle.path('data'));
    const { res } = userContainer(['run', '--bundle', bundle.dir], dirs, { root: path.join(dirs.xdg, 'state') });
    expectOk(res);
    const lines = res.stdout.trimEnd().split('\n');
    // runc leaves the user's own group (0 inside) as a supplementary group; husk clears them.
    expect(lines[0]).toMatch(/^uid=1000 gid=1000 groups=(0)?$/);
    const map = (own: number) => [`         0 ${String(own).padStart(10)}          1`, `         1     200000      65536`];
    expect(lines.slice(1, 3)).toEqual(map(uid));
    expect(lines.slice(3, 5)).toEqual(map(gid));
    expect(JSON.parse(lines[5])).toMatchObject({ uid: 1000, gid: 1000 });
    const st = fs.statSync(path.join(data, 'by-1000'));
    expect([st.uid, st.gid]).toEqual([SUBORDINATE.start + 999, SUBORDINATE.start + 999]);
  });

  it('refuses ids the user was not given, and leaves nothing behind', async () => {
    const dirs = userDirs();
    const bundle = rootlessBundle(dirs, ['id'], (c) => {
      c.linux!.uidMappings = [
        { containerID: 0, hostID: uid, size: 1 },
        { containerID: 1, hostID: 500000, size: 1000 },
      ];
    });
    const root = path.join(dirs.xdg, 'state');
    const { res, id } = userContainer(['run', '--bundle', bundle.dir], dirs, { root });
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('');
    if (isHusk) {
      const lines = res.stderr.split('\n').filter(Boolean);
      expect(lines, res.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^husk: run .*newuidmap/);
    }
    await expectNothingLeft();
    expect(fs.existsSync(path.join(root, id))).toBe(false);
  });
});

describe('what an unprivileged user cannot have', () => {
  // The cgroup work may change the wording (or, on a cgroup v2 host with delegation, apply
  // some limits): the test asks only for a clear refusal that names the resource.
  it('refuses a memory limit: exit 1, a line naming memory, nothing left', async () => {
    const dirs = userDirs();
    const bundle = rootlessBundle(dirs, ['report'], (c) => (c.linux!.resources = { memory: { limit: 64 << 20 } }));
    const root = path.join(dirs.xdg, 'state');
    const { res, id } = userContainer(['run', '--bundle', bundle.dir], dirs, { root });
    expect(res.status, res.stderr).toBe(1);
    expect(res.stdout).toBe('');
    // runc: "cannot set memory limit: container could not join or create cgroup"
    expect(res.stderr).toMatch(/memory/);
    if (isHusk) {
      const lines = res.stderr.split('\n').filter(Boolean);
      expect(lines, res.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^husk: /);
    }
    await expectNothingLeft();
    expect(fs.existsSync(path.join(root, id))).toBe(false);
  });
});

describe('the default state directory', () => {
  it(`is $XDG_RUNTIME_DIR/${stateDirName}, and delete empties it`, () => {
    const dirs = userDirs();
    const bundle = rootlessBundle(dirs, ['sleep', 'inf']);
    const { id, res } = userContainer(['run', '-d', '--bundle', bundle.dir], dirs);
    expectOk(res);
    const stateDir = path.join(dirs.xdg, stateDirName);
    expect(stateEntries(stateDir)).toEqual([id]);
    expect(fs.statSync(stateDir).uid).toBe(uid);
    const list = expectOk(asUser(['list', '-q'], dirs));
    expect(list.stdout).toBe(`${id}\n`);
    const st = JSON.parse(expectOk(asUser(['state', id], dirs)).stdout);
    expect(st.status).toBe('running');
    expectOk(asUser(['delete', '--force', id], dirs));
    expect(stateEntries(stateDir)).toEqual([]);
    expect(expectOk(asUser(['list', '-q'], dirs)).stdout).toBe('');
  });

  // runc 1.1 without XDG_RUNTIME_DIR falls back to /run/runc, which a user cannot create.
  it.skipIf(isRunc)('is /tmp/husk-<uid> without XDG_RUNTIME_DIR', () => {
    const dirs = userDirs();
    const fallback = `/tmp/husk-${uid}`;
    const existed = fs.existsSync(fallback);
    const bundle = rootlessBundle(dirs, ['sleep', 'inf']);
    try {
      const { id, res } = userContainer(['run', '-d', '--bundle', bundle.dir], dirs, { xdg: false });
      expectOk(res);
      expect(fs.readdirSync(fallback)).toContain(id);
      expect(fs.statSync(fallback).uid).toBe(uid);
      // Not readable by other users: it holds the containers' state.
      expect(fs.statSync(fallback).mode & 0o077).toBe(0);
      expectOk(asUser(['delete', '--force', id], dirs, { xdg: false }));
      started.pop();
      expect(fs.readdirSync(fallback)).not.toContain(id);
    } finally {
      if (!existed) fs.rmSync(fallback, { recursive: true, force: true });
    }
  });
});
