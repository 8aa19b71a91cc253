// The command line as runc reads it: global flags before --version, the flags a command line
// hands to exec's command (and to ps(1)) left alone, and every flag reaching the container.
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup, expectStatus, isHusk, isRunc, parseReport, recvttyPath, rt, RUNTIME_NAME, runningContainer, spawnTool, tempDir,
} from './harness';
import path from 'node:path';
import { buildImage, probeLayer, writeLayout } from './image-fixtures';

afterEach(cleanup);

const running = runningContainer;

describe('--version', () => {
  it.each([
    [['--version']],
    [['-v']],
    [['--root', '/tmp/husk-version-root', '--version']],
    [['--root', '/tmp/husk-version-root', '--log', 'LOG', '--log-format', 'json', '--debug', '--systemd-cgroup', '-v']],
  ])('%j prints the version and exits 0', (args) => {
    const log = path.join(tempDir('version-'), 'log');
    const res = rt(args.map((a) => (a === 'LOG' ? log : a)));
    expectStatus(res, 0);
    expect(res.stdout).toMatch(new RegExp(`^${RUNTIME_NAME} version \\S+\\n`));
    expect(res.stdout).toMatch(/\nspec: \S+\n/);
  });
});

describe('exec', () => {
  it('--no-new-privs sets no_new_privs for the process', () => {
    const { id } = running({ config: (c) => (c.process!.noNewPrivileges = false) });
    expect(parseReport(expectStatus(rt(['exec', id, '/probe', 'report']), 0).stdout).noNewPrivs).toBe(0);
    expect(parseReport(expectStatus(rt(['exec', '--no-new-privs', id, '/probe', 'report']), 0).stdout).noNewPrivs).toBe(1);
  });

  it('leaves the options of the command to the command: sh -c, ls -l', () => {
    const { id } = running({ busybox: true });
    const sh = expectStatus(rt(['exec', id, '/bin/sh', '-c', 'echo hi; echo "$0" >&2']), 0);
    expect(sh.stdout).toBe('hi\n');
    expect(sh.stderr).toBe('/bin/sh\n');
    const ls = expectStatus(rt(['exec', id, '/bin/busybox', 'ls', '-l', '-d', '/probe']), 0);
    expect(ls.stdout).toMatch(/^-rwxr-xr-x .* \/probe\n$/);
    // Flags of husk's own after the command are the command's too.
    expect(expectStatus(rt(['exec', id, '/probe', 'echo', '-t', '--tty', '-c', 'CAP_SYS_ADMIN', '--env', 'A=1']), 0).stdout).toBe('-t --tty -c CAP_SYS_ADMIN --env A=1\n');
    // While husk's flags before the id still count.
    expect(expectStatus(rt(['exec', '--env', 'A=1', '--cwd', '/tmp', id, '/probe', 'env', 'then', 'cwd']), 0).stdout).toMatch(/(^|\n)A=1\n(.*\n)*\/tmp\n$/);
  });

  // runc refuses a console socket without --detach; husk takes it, as for `run`, and waits.
  it.runIf(isHusk)('--tty --console-socket in the foreground: waits for the process and returns its status', async () => {
    const { id } = running();
    const socket = path.join(tempDir('tty-'), 'console.sock');
    const receiver = spawnTool(recvttyPath(), [socket]);
    await receiver.waitForStdout('listening\n');
    expectStatus(rt(['exec', '--tty', '--console-socket', socket, id, '/probe', 'echo', 'on-the-pty', 'then', 'exit', '3']), 3);
    expect((await receiver.exited).status, receiver.stderr).toBe(0);
    expect(receiver.stdout).toContain('on-the-pty');
  });

  it.runIf(isHusk)('takes -- before the command', () => {
    const { id } = running();
    expect(expectStatus(rt(['exec', id, '--', '/probe', 'echo', '-l', '/']), 0).stdout).toBe('-l /\n');
  });
});

describe('ps', () => {
  it('passes the words after the id to ps(1)', () => {
    const { id, pid } = running();
    const table = expectStatus(rt(['ps', id, '-ef']), 0).stdout.split('\n');
    expect(table[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
    expect(table.slice(1).some((line) => line.split(/\s+/)[1] === String(pid))).toBe(true);
    const pids = expectStatus(rt(['ps', id, '-o', 'pid,comm']), 0).stdout.split('\n');
    expect(pids[0].trim()).toBe('PID COMMAND');
    expect(pids[1].trim()).toBe(`${pid} probe`);
  });
});

describe.skipIf(isRunc)('image run', () => {
  it('passes the words after the image to its entrypoint, dashes and all; -- ends husk\'s options', async () => {
    const image = await buildImage({ layers: [probeLayer()], config: { Entrypoint: ['/probe'], Cmd: ['report'] } });
    const dir = tempDir('layout-');
    writeLayout(dir, [{ tag: 'v1', image }]);
    const store = tempDir('store-');
    const run = (words: string[]) => expectStatus(rt(['image', 'run', '--store', store, '--rm', '-q', `oci:${dir}:v1`, ...words]), 0).stdout;
    expect(run(['echo', '-c', 'hi', '-e', 'A=1', '--rm'])).toBe('-c hi -e A=1 --rm\n');
    expect(run(['--', 'echo', '-l'])).toBe('-l\n');
  });
});
