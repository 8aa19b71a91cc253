// exec: a new process in a running container, from runc's flags or a --process file; it
// joins the container's namespaces, returns its exit status, and works with detach, pid
// files and a terminal on a console socket.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectStatus,
  makeBundle,
  newId,
  parseReport,
  recvttyPath,
  rt,
  spawnTool,
  tempDir,
  waitFor,
  waitForStatus,
  alive,
  runningContainer,
} from './harness';

afterEach(cleanup);

const running = runningContainer;

describe('exec with flags', () => {
  it('runs in the container: its pid namespace, hostname, mounts and capabilities', () => {
    const { id } = running();
    const res = expectStatus(rt(['exec', id, '/probe', 'report']), 0);
    const inside = parseReport(res.stdout);
    expect(inside.pid).toBeGreaterThan(1);
    expect(inside.hostname).toBe('husk-test');
    expect(inside.caps.effective).toBe('0000000020000420');
    const init = parseReport(expectStatus(rt(['exec', id, '/probe', 'report']), 0).stdout);
    expect(inside.namespaces).toEqual(init.namespaces);
    expect(inside.mounts.map((m) => m.mountPoint)).toContain('/proc');
  });

  it('returns the exit status of the process, and 128+N when a signal ends it', () => {
    const { id } = running();
    expectStatus(rt(['exec', id, '/probe', 'exit', '7']), 7);
    expectStatus(rt(['exec', id, '/probe', 'kill-self', 'SEGV']), 139);
  });

  it('passes stdin, stdout and stderr', () => {
    const { id } = running();
    const res = rt(['exec', id, '/probe', 'cat', '-', 'then', 'stderr', 'to-stderr'], { input: 'from stdin\n' });
    expectStatus(res, 0);
    expect(res.stdout).toBe('from stdin\n');
    expect(res.stderr).toContain('to-stderr');
  });

  it('applies --env, --cwd, --user and --additional-gids', () => {
    const { id } = running();
    const env = expectStatus(rt(['exec', '--env', 'FOO=bar', '--env', 'BAZ=1', id, '/probe', 'env']), 0).stdout.split('\n');
    expect(env).toEqual(expect.arrayContaining(['FOO=bar', 'BAZ=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']));
    expect(expectStatus(rt(['exec', '--cwd', '/tmp', id, '/probe', 'cwd']), 0).stdout).toBe('/tmp\n');
    expect(expectStatus(rt(['exec', '--user', '1000:1001', '--additional-gids', '5', '--additional-gids', '7', id, '/probe', 'id']), 0).stdout).toBe('uid=1000 gid=1001 groups=5,7\n');
  });

  it('adds a capability with --cap', () => {
    const { id } = running();
    expect(expectStatus(rt(['exec', id, '/probe', 'cap-check', 'CAP_SYS_ADMIN']), 0).stdout).toBe('CAP_SYS_ADMIN no\n');
    expect(expectStatus(rt(['exec', '--cap', 'CAP_SYS_ADMIN', id, '/probe', 'cap-check', 'CAP_SYS_ADMIN']), 0).stdout).toBe('CAP_SYS_ADMIN yes\n');
  });

  it('--detach returns at once and --pid-file names the process, which ps lists', async () => {
    const { id } = running();
    const pidFile = path.join(tempDir('exec-'), 'pid');
    expectStatus(rt(['exec', '--detach', '--pid-file', pidFile, id, '/probe', 'sleep', 'inf']), 0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(alive(pid)).toBe(true);
    const pids = JSON.parse(expectStatus(rt(['ps', '--format', 'json', id]), 0).stdout);
    expect(pids).toContain(pid);
    expectStatus(rt(['kill', '--all', id, 'KILL']), 0);
    await waitFor('the exec process to die', () => !alive(pid));
  });

  // runc exec exits 255 when it cannot run the process (engines tell that apart from the
  // process's own status), whatever the reason.
  it('refuses a container that is not running, and an unknown container, with 255', async () => {
    const bundle = makeBundle({ args: ['exit', '0'] });
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    await waitForStatus(id, 'stopped');
    expectStatus(rt(['exec', id, '/probe', 'id']), 255);
    expectStatus(rt(['exec', newId(), '/probe', 'id']), 255);
  });

  it('a missing executable fails with 255 and one clear line', () => {
    const { id } = running();
    const res = rt(['exec', id, '/nope']);
    expectStatus(res, 255);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('exec --process', () => {
  it('runs a full OCI process from a file', () => {
    const { id, bundle } = running();
    const file = path.join(tempDir('exec-'), 'process.json');
    fs.writeFileSync(file, JSON.stringify({
      ...bundle.config.process,
      args: ['/probe', 'id', 'then', 'cwd', 'then', 'env'],
      cwd: '/dev',
      env: ['ONLY=this'],
      user: { uid: 42, gid: 43, additionalGids: [44] },
      terminal: false,
    }));
    const out = expectStatus(rt(['exec', '--process', file, id]), 0).stdout.split('\n');
    expect(out[0]).toBe('uid=42 gid=43 groups=44');
    expect(out[1]).toBe('/dev');
    expect(out).toContain('ONLY=this');
  });

  it('refuses an invalid process file', () => {
    const { id } = running();
    const file = path.join(tempDir('exec-'), 'process.json');
    fs.writeFileSync(file, JSON.stringify({ args: [], cwd: '/' }));
    expectStatus(rt(['exec', '--process', file, id]), 255);
  });
});

describe('exec with a terminal', () => {
  it('sends the pty master to --console-socket; the process has it as controlling terminal', async () => {
    const { id } = running();
    const socket = path.join(tempDir('tty-'), 'console.sock');
    const receiver = spawnTool(recvttyPath(), [socket]);
    await receiver.waitForStdout('listening\n');
    expectStatus(rt(['exec', '--tty', '--detach', '--console-socket', socket, id, '/probe', 'tty']), 0);
    const exit = await receiver.exited;
    expect(exit.status, receiver.stderr).toBe(0);
    const out = receiver.stdout.slice('listening\n'.length);
    const tty = JSON.parse(out.slice(out.indexOf('{'), out.indexOf('}') + 1));
    expect(tty).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true });
    expect(tty.sid).toBe(tty.pgrp);
  });

  it('refuses --tty --detach without a console socket; the container keeps only its init', () => {
    const { id, pid } = running();
    expectStatus(rt(['exec', '--tty', '--detach', id, '/probe', 'tty']), 255);
    expect(JSON.parse(expectStatus(rt(['ps', '--format', 'json', id]), 0).stdout)).toEqual([pid]);
  });
});
