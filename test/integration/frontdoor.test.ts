// The front door (bin/husk -> build/Release/frontdoor, native/frontdoor.cc) and the warm husk
// server behind it (src/server/): what a user of `husk` observes. The server comes up after a
// first call, serves the calls after it, leaves by itself when idle, survives being killed
// (a stale socket, a create cut in half), refuses another user, pins no cgroup, serves calls
// side by side, keeps the husk binary out of reach of a container (CVE-2019-5736), and answers
// exactly as `husk` did before it (node dist/cli/main.js).
//
// Synchronization is on files and processes only: a createRuntime hook (a host shell script)
// stalls a create where the test wants it, and the test releases it by creating a file.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { huskServers } from '../lib/process';
import {
  REPO,
  RUNTIME,
  alive,
  cleanup,
  expectNothingLeft,
  expectStatus,
  hostNamespace,
  isHusk,
  makeBundle,
  newId,
  rt,
  rtSpawn,
  spawnTool,
  staticTool,
  state,
  stateEntries,
  stateRoot,
  tempDir,
  waitFor,
  which,
  waitForStatus,
  type Bundle,
  type Running,
} from './harness';

afterEach(cleanup);

const SOCKET = '~server.sock';
const LOG = '~server.log';
/** open(2)'s O_PATH, which fs.constants does not name. */
const O_PATH = 0o10000000;

// ------------------------------------------------------------------------------- the servers

function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The pids of the warm servers of a root. */
function serversOf(root: string): number[] {
  return huskServers().filter((s) => s.root === root).map((s) => s.pid);
}

/**
 * Waits until exactly one server of the root (other than `other`) listens (its socket exists);
 * returns its pid. Node starts slowly on a loaded machine: the wait is long, and on a timeout
 * the message shows the servers seen and the server's log.
 */
async function listeningServer(root: string, other?: number): Promise<number> {
  let servers: number[] = [];
  try {
    return await waitFor(
      `a husk server listening for ${root}`,
      () => {
        servers = serversOf(root).filter((pid) => pid !== other);
        const socket = fs.lstatSync(path.join(root, SOCKET), { throwIfNoEntry: false });
        return servers.length === 1 && socket?.isSocket() ? servers[0] : undefined;
      },
      30_000,
    );
  } catch (err) {
    const log = fs.existsSync(path.join(root, LOG)) ? fs.readFileSync(path.join(root, LOG), 'utf8') : '(no log)';
    throw new Error(`${(err as Error).message}; servers: ${JSON.stringify(servers)}; ${LOG}:\n${log}`);
  }
}

/** A first call and the server it starts. */
async function warmServer(opts: { env?: Record<string, string> } = {}): Promise<number> {
  expectStatus(rt(['list'], opts), 0);
  return listeningServer(stateRoot());
}

// ------------------------------------------------------------------------------ stalled hooks

/**
 * A createRuntime hook (it runs on the host, from the process that runs the call) that writes
 * DIR/reached.TAG, three lines: its parent's pid (the node process running the call), that
 * parent's command line, and the parent's parent pid; then waits until DIR/go.TAG exists.
 */
function hookDir(): { dir: string; script: string; reached(tag: string): Promise<{ parent: number; parentCmdline: string; grandparent: number }>; go(tag: string): void } {
  const dir = tempDir('door-hook-');
  const script = path.join(dir, 'hook.sh');
  fs.writeFileSync(
    script,
    [
      '#!/bin/sh',
      'cat > /dev/null',
      'dir=$1 tag=$2',
      '{ echo "$PPID"; tr "\\0" " " < /proc/$PPID/cmdline; echo; cut -d" " -f4 /proc/$PPID/stat; } > "$dir/reached.$tag.tmp"',
      'mv "$dir/reached.$tag.tmp" "$dir/reached.$tag"',
      'while [ ! -e "$dir/go.$tag" ]; do sleep 0.02; done',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return {
    dir,
    script,
    async reached(tag) {
      const file = path.join(dir, `reached.${tag}`);
      const text = await waitFor(`the hook of ${tag} to run`, () => fs.existsSync(file) && fs.readFileSync(file, 'utf8'));
      const [parent, parentCmdline, grandparent] = text.split('\n');
      return { parent: Number(parent), parentCmdline: parentCmdline.trim(), grandparent: Number(grandparent) };
    },
    go(tag) {
      fs.writeFileSync(path.join(dir, `go.${tag}`), '');
    },
  };
}

/** A bundle whose createRuntime hook is the hook of `hooks` with `tag`. */
function hookedBundle(hooks: { dir: string; script: string }, tag: string, args = ['sleep', 'inf']): Bundle {
  return makeBundle({
    args,
    config: (c) => {
      c.hooks = { createRuntime: [{ path: hooks.script, args: [hooks.script, hooks.dir, tag], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] }] };
    },
  });
}

/** Resolves with the exit status once the process has exited (its output pipes may stay open:
 * a container it created holds them). */
function exitOf(running: Running): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  const child = running.child;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ status: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (status, signal) => resolve({ status, signal })));
}

// ---------------------------------------------------------------------------------- the test tools

/** The husk installation a door of this repository says it belongs to (the server checks it). */
const HOME = fs.realpathSync(REPO);
/** A static tool from test/tools/NAME.c, built as the harness builds its tools (HUSK_NAME
 * names a ready-made one). */
const toolPath = (name: string) => staticTool(`HUSK_${name.toUpperCase()}`, name, path.join(REPO, 'test', 'tools', `${name}.c`));

const doorcallPath = () => toolPath('doorcall');

// ------------------------------------------------------------------------------------ the tests

/** These tests start and watch a warm server (and compare the paths themselves): `npm test`
 * runs the integration tests a second time with HUSK_SERVER=0, where they do not apply. */
const withServer = isHusk && process.env.HUSK_SERVER !== '0';

describe.skipIf(!withServer)('the warm server', () => {
  it('comes up after a first call, on a 0600 socket in a 0700 root, and serves the next call', async () => {
    // husk makes the state directory itself (the harness's exists already, 0755).
    const root = stateRoot();
    fs.rmdirSync(root);
    const hooks = hookDir();
    hooks.go('cold');
    hooks.go('warm');

    // The first call finds no server: it starts one and runs itself in a one-shot node, the
    // door's child.
    const coldId = newId();
    const cold = rtSpawn(['create', '--bundle', hookedBundle(hooks, 'cold').dir, coldId]);
    const coldHook = await hooks.reached('cold');
    expect(coldHook.parentCmdline).toContain(`${REPO}/dist/cli/main.js --root ${root} create --bundle `);
    expect(coldHook.grandparent).toBe(cold.pid);
    expect(await exitOf(cold)).toEqual({ status: 0, signal: null });

    const server = await listeningServer(root);
    expect(fs.statSync(root).mode & 0o7777).toBe(0o700);
    const socket = fs.lstatSync(path.join(root, SOCKET));
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o7777).toBe(0o600);
    expect(socket.uid).toBe(0);

    // The second call runs in the server: the hook's parent is the server itself.
    const id = newId();
    const warm = rtSpawn(['create', '--bundle', hookedBundle(hooks, 'warm').dir, id]);
    const warmHook = await hooks.reached('warm');
    expect(warmHook.parent).toBe(server);
    expect(await exitOf(warm)).toEqual({ status: 0, signal: null });
    expect(serversOf(root)).toEqual([server]);

    // The container's init is a clone of the sealed door, not of node.
    const init = state(id)!.pid;
    expect(fs.readlinkSync(`/proc/${init}/exe`)).toBe('/memfd:husk (deleted)');
    // (The containers hold the calls' output pipes until they are gone.)
    for (const container of [coldId, id]) expectStatus(rt(['delete', '--force', container]), 0);
  });

  it('exits by itself after HUSK_SERVER_IDLE seconds and removes its socket', async () => {
    const root = stateRoot();
    const server = await warmServer({ env: { HUSK_SERVER_IDLE: '1' } });
    await waitFor(`server ${server} to exit when idle`, () => !alive(server));
    expect(fs.existsSync(path.join(root, SOCKET))).toBe(false);
    expect(fs.readFileSync(path.join(root, LOG), 'utf8')).toContain(`husk server ${server}: idle: exiting`);
    expect(serversOf(root)).toEqual([]);
  });

  it('is replaced after it was killed: the stale socket does not fail the next call', async () => {
    const root = stateRoot();
    const first = await warmServer();
    process.kill(first, 'SIGKILL');
    // Dead, and done dying: a killed node's main thread is a zombie while its other threads
    // still exit, holding its fds (the socket, the lock) a little longer.
    await waitFor(`server ${first} to die`, () => !alive(first));
    await waitFor(`server ${first} to let go of ~server.lock`, () => spawnSync('flock', ['-n', path.join(root, '~server.lock'), 'true']).status === 0);
    expect(fs.lstatSync(path.join(root, SOCKET)).isSocket()).toBe(true);

    const res = expectStatus(rt(['list']), 0);
    expect(res.stderr).toBe('');
    const second = await listeningServer(root, first);
    expect(second).not.toBe(first);
    expectStatus(rt(['list']), 0);
    expect(serversOf(root)).toEqual([second]);
  });

  it('leaves a second after it is the last child of a subreaper that waits for its children (as conmon does)', async () => {
    // conmon runs `husk create` as a child subreaper and then blocks in wait() until no child is
    // left: a server it adopted would keep it alive (and its container's podman cleanup waiting)
    // for as long as the server lives. Here the idle time is a minute; the subreaper is back in
    // far less only because the server left.
    const root = stateRoot();
    const waiter = spawnTool(toolPath('waitall'), [RUNTIME, '--root', root, 'list'], { env: { HUSK_SERVER_IDLE: '60' } });
    const exited = await exitOf(waiter);
    expect(exited, waiter.stderr).toEqual({ status: 0, signal: null });
    expect(waiter.stdout).toMatch(/^ID\s+PID\s+STATUS[^]*done\n$/);
    expect(fs.readFileSync(path.join(root, LOG), 'utf8')).toMatch(new RegExp(`adopted by process ${waiter.pid}, which waits for its children, and we are the last: exiting`));
    expect(serversOf(root)).toEqual([]);
  });

  it('adopted by a subreaper, hands over to a server outside its tree at the first call from outside', async () => {
    // Podman: conmon (a subreaper) runs the `create` that starts the server; Podman's own calls
    // come from outside conmon's tree. The first of them makes that server leave, and the next
    // starts one the subreaper does not own, which every later container finds warm.
    const root = stateRoot();
    const subreaper = spawnTool(which('tini')!, ['-s', '--', 'sh', '-c', `${RUNTIME} --root ${root} list && exec sleep 120`], { env: { HUSK_SERVER_IDLE: '60' } });
    const adopted = await listeningServer(root);
    expect(parentOf(adopted)).toBe(subreaper.pid);
    expectStatus(rt(['list'], { env: { HUSK_SERVER_IDLE: '60' } }), 0);
    await waitFor('the adopted server to leave', () => !serversOf(root).includes(adopted) || undefined, 10_000);
    expect(fs.readFileSync(path.join(root, LOG), 'utf8')).toMatch(new RegExp(`adopted by process ${subreaper.pid}; pid \\d+ called from outside its tree`));
    expectStatus(rt(['list'], { env: { HUSK_SERVER_IDLE: '60' } }), 0);
    const outside = await listeningServer(root, adopted);
    expect(parentOf(outside)).not.toBe(subreaper.pid);
    expectStatus(rt(['list']), 0);
    expect(serversOf(root)).toEqual([outside]);
  });

  it('keeps the last 64 KiB of its log when it starts', async () => {
    const root = stateRoot();
    fs.mkdirSync(root, { recursive: true });
    const old = Array.from({ length: 4000 }, (_, i) => `2026-01-01T00:00:00.000Z husk server 1: old line ${i}`).join('\n') + '\n';
    fs.writeFileSync(path.join(root, LOG), old);
    await warmServer();
    const log = fs.readFileSync(path.join(root, LOG), 'utf8');
    expect(log.length).toBeLessThan(64 * 1024 + 4096);
    expect(log.startsWith('2026-01-01T00:00:00.000Z husk server 1: old line ')).toBe(true);
    expect(log).toContain('old line 3999\n');
    expect(log).not.toContain('old line 0\n');
    expect(log).toMatch(/listening on/);
  });

  it('is started once when ten cold calls race', async () => {
    const root = stateRoot();
    const calls = Array.from({ length: 10 }, () => rtSpawn(['list']));
    const results = await Promise.all(calls.map((c) => c.exited));
    for (const [i, result] of results.entries()) {
      expect(result, calls[i].stderr).toEqual({ status: 0, signal: null });
      expect(calls[i].stdout).toMatch(/^ID\s+PID\s+STATUS/);
      expect(calls[i].stderr).toBe('');
    }
    const server = await listeningServer(root);
    expectStatus(rt(['list']), 0);
    expect(serversOf(root)).toEqual([server]);
  });
});

describe.skipIf(!withServer)('a create cut in half', () => {
  it('fails with one line and leaves nothing when the server is killed during it', async () => {
    const server = await warmServer();
    const hooks = hookDir();
    const id = newId();
    const create = rtSpawn(['create', '--bundle', hookedBundle(hooks, 'a').dir, id]);
    const hook = await hooks.reached('a');
    expect(hook.parent).toBe(server);
    // The state directory exists while the create runs.
    expect(stateEntries(stateRoot())).toEqual([id]);

    process.kill(server, 'SIGKILL');
    const result = await exitOf(create);
    hooks.go('a'); // the orphaned hook may end now
    expect(result).toEqual({ status: 1, signal: null });
    await create.exited;
    expect(create.stderr).toBe('husk: the husk server ended during the call\n');
    expect(create.stdout).toBe('');
    await expectNothingLeft();
  });

  it('is rolled back by the server when its caller is killed during it', async () => {
    const server = await warmServer();
    const hooks = hookDir();
    const id = newId();
    const create = rtSpawn(['create', '--bundle', hookedBundle(hooks, 'a').dir, id]);
    await hooks.reached('a');
    create.child.kill('SIGKILL');
    expect(await exitOf(create)).toEqual({ status: null, signal: 'SIGKILL' });
    hooks.go('a');

    // Nothing is left once the server has noticed; and the server lives on.
    await expectNothingLeft();
    expect(alive(server)).toBe(true);
    expect(rt(['state', id]).status).toBe(1);
    expectStatus(rt(['list']), 0);
    expect(serversOf(stateRoot())).toEqual([server]);
  });
});

describe.skipIf(!withServer)('who may call', () => {
  it('closes the connection of another user without Accepted, and serves root after it', async () => {
    const root = stateRoot();
    const server = await warmServer();
    const socket = path.join(root, SOCKET);
    // The tool works: root's call is taken and answered.
    const own = spawnSync(doorcallPath(), [socket, HOME, '--root', root, 'list'], { encoding: 'utf8' });
    expect(own.status).toBe(0);
    expect(own.stderr).toBe('Accepted\nExit 0\nclosed\n');
    expect(own.stdout).toMatch(/^ID\s+PID\s+STATUS/);

    // Let another user reach the socket: only the server's own check is left.
    fs.chmodSync(root, 0o755);
    fs.chmodSync(socket, 0o666);
    const nobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', doorcallPath(), socket, HOME, '--root', root, 'list'], {
      encoding: 'utf8',
    });
    expect(nobody.status, nobody.stderr).toBe(0);
    expect(nobody.stderr).toBe('closed\n');
    expect(nobody.stdout).toBe('');

    const after = spawnSync(doorcallPath(), [socket, HOME, '--root', root, 'list'], { encoding: 'utf8' });
    expect(after.stderr).toBe('Accepted\nExit 0\nclosed\n');
    expectStatus(rt(['list']), 0);
    expect(serversOf(root)).toEqual([server]);
  });
});

describe.skipIf(!withServer)('cgroups', () => {
  it('the server leaves the cgroups of the call that started it', async () => {
    const root = stateRoot();
    const name = `husk-test-door-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
    const cgroups = ['pids', 'memory', 'unified']
      .map((h) => `/sys/fs/cgroup/${h}`)
      .filter((dir) => fs.existsSync(path.join(dir, 'cgroup.procs')))
      .map((dir) => path.join(dir, name));
    expect(cgroups.length).toBeGreaterThan(0);
    for (const dir of cgroups) fs.mkdirSync(dir);
    try {
      // A shell in the new cgroups makes the cold call; the door and the server it starts begin there.
      const res = spawnSync(
        '/bin/sh',
        ['-c', 'for dir in "$@"; do echo $$ > "$dir/cgroup.procs"; done; exec "$0" --root "$ROOT" list', RUNTIME, ...cgroups],
        { encoding: 'utf8', env: { ...process.env, ROOT: root } },
      );
      expect(res.status, res.stderr).toBe(0);
      const server = await listeningServer(root);
      const lines = fs.readFileSync(`/proc/${server}/cgroup`, 'utf8').trim().split('\n');
      for (const line of lines) expect(line, `/proc/${server}/cgroup`).toMatch(/:\/$/);
      for (const dir of cgroups) fs.rmdirSync(dir);
      expect(alive(server)).toBe(true);
    } finally {
      for (const dir of cgroups) {
        if (!fs.existsSync(dir)) continue;
        // The test failed: end what pins the cgroup so it can go.
        for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        }
        await waitFor(`cgroup ${dir} to empty`, () => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8') === '').catch(() => undefined);
        fs.rmSync(dir, { recursive: false, force: true });
      }
    }
  });
});

describe.skipIf(!withServer)('calls side by side', () => {
  it('serves other calls while one is blocked in a hook', async () => {
    const server = await warmServer();
    const hooks = hookDir();
    hooks.go('b');
    const blocked = newId();
    const create = rtSpawn(['create', '--bundle', hookedBundle(hooks, 'a').dir, blocked]);
    expect((await hooks.reached('a')).parent).toBe(server);

    expect(state(blocked)?.status).toBe('creating');
    expect(expectStatus(rt(['list']), 0).stdout).toContain(blocked);
    const other = hookedBundle(hooks, 'b', ['echo', 'served meanwhile']);
    const run = expectStatus(rt(['run', '--bundle', other.dir, newId()]), 0);
    expect(run.stdout).toBe('served meanwhile\n');
    expect((await hooks.reached('b')).parent).toBe(server);
    expect(await Promise.race([exitOf(create).then(() => 'exited'), Promise.resolve('blocked')])).toBe('blocked');

    hooks.go('a');
    expect(await exitOf(create)).toEqual({ status: 0, signal: null });
    await waitForStatus(blocked, 'created');
    expect(serversOf(stateRoot())).toEqual([server]);
    expectStatus(rt(['delete', '--force', blocked]), 0);
  });
});

describe.skipIf(!withServer)('CVE-2019-5736: the husk binary out of a container\'s reach', () => {
  const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

  /** Opens path for writing and writes to it: the errno code it failed with, or 'written'. */
  function tryWrite(file: string): string {
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY);
      fs.writeSync(fd, 'overwritten by the container\n');
      return 'written';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? String(err);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  it('a waiting init runs a sealed copy that cannot be written, before or after it execs', async () => {
    await warmServer();
    const door = fs.realpathSync(RUNTIME);
    const before = sha256(door);
    const bundle = makeBundle({ args: ['sleep', 'inf'] });
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    const init = state(id)!.pid;
    expect(fs.readlinkSync(`/proc/${init}/exe`)).toBe('/memfd:husk (deleted)');
    expect(['ETXTBSY', 'EPERM', 'EACCES']).toContain(tryWrite(`/proc/${init}/exe`));

    // Hold what the init runs, let it exec the container's program, then write through the hold.
    const held = fs.openSync(`/proc/${init}/exe`, O_PATH);
    try {
      expectStatus(rt(['start', id]), 0);
      const probe = fs.statSync(bundle.path('probe'));
      await waitFor(`the init ${init} to exec /probe`, () => {
        const exe = fs.statSync(`/proc/${init}/exe`);
        return exe.dev === probe.dev && exe.ino === probe.ino;
      });
      expect(['ETXTBSY', 'EPERM', 'EACCES']).toContain(tryWrite(`/proc/self/fd/${held}`));
    } finally {
      fs.closeSync(held);
    }
    expect(sha256(door)).toBe(before);
  });

  it('the same attack rewrites an unsealed program (the check can fail)', async () => {
    const dir = tempDir('door-victim-');
    const victim = path.join(dir, 'sleep');
    fs.copyFileSync('/bin/sleep', victim);
    fs.chmodSync(victim, 0o755);
    const child = spawn(victim, ['1000'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor('the copy of sleep to run', () => fs.readlinkSync(`/proc/${child.pid}/exe`) === victim);
    expect(tryWrite(`/proc/${child.pid}/exe`)).toBe('ETXTBSY');
    const held = fs.openSync(`/proc/${child.pid}/exe`, O_PATH);
    try {
      child.kill('SIGKILL');
      await exited;
      expect(tryWrite(`/proc/self/fd/${held}`)).toBe('written');
    } finally {
      fs.closeSync(held);
    }
    expect(fs.readFileSync(victim, 'utf8').startsWith('overwritten by the container\n')).toBe(true);
  });
});

describe.skipIf(!withServer)('output parity', () => {
  interface Outcome {
    status: number | null;
    stdout: string;
    stderr: string;
  }

  /** One call of `file ...prefix --root ROOT ...args`, its output in files. */
  function call(file: string, prefix: string[], args: string[], env: Record<string, string> = {}): Outcome {
    const dir = tempDir('door-io-');
    const out = fs.openSync(path.join(dir, 'stdout'), 'w');
    const err = fs.openSync(path.join(dir, 'stderr'), 'w');
    try {
      const res = spawnSync(file, [...prefix, '--root', stateRoot(), ...args], { stdio: ['ignore', out, err], env: { ...process.env, ...env }, timeout: 30_000 });
      return { status: res.status, stdout: fs.readFileSync(path.join(dir, 'stdout'), 'utf8'), stderr: fs.readFileSync(path.join(dir, 'stderr'), 'utf8') };
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
  }

  it('stdout, stderr and the exit status are the same through the server, one-shot, and node dist/cli/main.js', async () => {
    const server = await warmServer();
    const good = makeBundle({ args: ['sleep', 'inf'] });
    const goodId = newId();
    expectStatus(rt(['create', '--bundle', good.dir, goodId]), 0);
    const stopped = makeBundle({ args: ['exit', '0'] });
    const stoppedId = newId();
    expectStatus(rt(['run', '-d', '--bundle', stopped.dir, stoppedId]), 0);
    await waitForStatus(stoppedId, 'stopped');
    const bad = makeBundle();
    fs.writeFileSync(bad.configPath, '{ "ociVersion": ');
    const badId = newId();

    const cases: [string[], number][] = [
      [['state', 'nosuch'], 1],
      [['kill', 'nosuch', 'KILL'], 1],
      [['delete', 'nosuch'], 1],
      [['create', '--bundle', good.dir, '../escape'], 1],
      [['create', '--bundle', bad.dir, badId], 1],
      [['exec', stoppedId, '/probe', 'echo', 'x'], 255],
      [['--version'], 0],
      [['state', goodId], 0],
    ];
    for (const [args, status] of cases) {
      const warm = call(RUNTIME, [], args);
      const oneShot = call(RUNTIME, [], args, { HUSK_SERVER: '0' });
      const asBefore = call(process.execPath, [path.join(REPO, 'dist', 'cli', 'main.js')], args);
      const what = args.join(' ');
      expect(asBefore.status, `${what}: ${asBefore.stderr}`).toBe(status);
      expect(warm, `${what} through the server`).toEqual(asBefore);
      expect(oneShot, `${what} with HUSK_SERVER=0`).toEqual(asBefore);
    }
    expect(serversOf(stateRoot())).toEqual([server]);
  });
});

/**
 * A call runs as its caller would run it: the server takes only callers with its own
 * credentials and namespaces (src/server/policy.ts sameWorld; the others run one-shot), and a
 * one-shot call's node dies with the husk process that started it.
 */
describe.skipIf(!withServer)('the caller\'s confinement', () => {
  /** A createRuntime hook that writes what it runs with to DIR/seen.TAG. */
  function seeingBundle(tag: string): { bundle: Bundle; seen(): string } {
    const dir = tempDir('door-seen-');
    const script = path.join(dir, 'hook.sh');
    fs.writeFileSync(
      script,
      '#!/bin/sh\ncat > /dev/null\n{ grep -E "^(CapBnd|NoNewPrivs):" /proc/self/status; hostname; readlink /proc/self/ns/uts /proc/self/ns/ipc; } > "$1/seen.$2"\n',
      { mode: 0o755 },
    );
    const bundle = makeBundle({
      config: (c) => {
        c.hooks = { createRuntime: [{ path: script, args: [script, dir, tag], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] }] };
      },
    });
    return { bundle, seen: () => fs.readFileSync(path.join(dir, `seen.${tag}`), 'utf8') };
  }

  /** `create` of a new container by `wrapper... husk`, through the server or one-shot: what its hook saw. */
  function hookSees(wrapper: string[], tag: string, env: Record<string, string> = {}): string {
    const { bundle, seen } = seeingBundle(tag);
    const id = newId();
    // Output to a file: the container's init keeps what it inherits open.
    const stderr = path.join(tempDir('door-io-'), 'stderr');
    const err = fs.openSync(stderr, 'w');
    let res: ReturnType<typeof spawnSync>;
    try {
      res = spawnSync(wrapper[0], [...wrapper.slice(1), RUNTIME, '--root', stateRoot(), 'create', '--bundle', bundle.dir, id], {
        stdio: ['ignore', 'ignore', err],
        env: { ...process.env, ...env },
        timeout: 30_000,
      });
    } finally {
      fs.closeSync(err);
    }
    expect(res.status, fs.readFileSync(stderr, 'utf8')).toBe(0);
    expectStatus(rt(['delete', '--force', id]), 0);
    return seen();
  }

  it('a hook runs with the caller\'s capability bounding set and no_new_privs, not the server\'s', async () => {
    await warmServer();
    const confined = ['setpriv', '--bounding-set=-sys_module', '--inh-caps=-sys_module', '--no-new-privs', '--'];
    const oneShot = hookSees(confined, 'one-shot', { HUSK_SERVER: '0' });
    // The control: one-shot, the hook lacks CAP_SYS_MODULE (bit 16) and has no_new_privs.
    expect(BigInt(`0x${/CapBnd:\s*(\w+)/.exec(oneShot)![1]}`) & (1n << 16n)).toBe(0n);
    expect(oneShot).toMatch(/NoNewPrivs:\s*1/);
    expect(hookSees(confined, 'warm'), 'through the server').toBe(oneShot);
  });

  it('killing husk ends the one-shot node that runs its call', async () => {
    const hooks = hookDir();
    const create = rtSpawn(['create', '--bundle', hookedBundle(hooks, 'a').dir, newId()], { env: { HUSK_SERVER: '0' } });
    const { parent: oneShot, grandparent } = await hooks.reached('a');
    expect(grandparent).toBe(create.pid);
    create.child.kill('SIGTERM');
    await exitOf(create);
    try {
      await waitFor(`the one-shot node ${oneShot} to end with the husk that started it`, () => !alive(oneShot));
    } finally {
      hooks.go('a');
    }
  });

  it('a hook runs in the caller\'s UTS and IPC namespaces', async () => {
    await warmServer();
    const elsewhere = ['unshare', '--uts', '--ipc', '--', 'sh', '-c', 'hostname door-test && exec "$@"', 'sh'];
    // Each `unshare` makes namespaces of its own: what counts is that the hook is in the
    // caller's, not the host's (nor the server's), one-shot (the control) and through the server.
    for (const [how, env] of [['one-shot', { HUSK_SERVER: '0' }], ['warm', {}]] as const) {
      const seen = hookSees(elsewhere, how, env);
      expect(seen, how).toContain('door-test\n');
      expect(seen, how).not.toContain(hostNamespace('uts'));
      expect(seen, how).not.toContain(hostNamespace('ipc'));
    }
  });
});
