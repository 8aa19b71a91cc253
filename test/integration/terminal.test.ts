// process.terminal: a pty for the container, handed over on --console-socket (recvtty plays the
// caller's side), its size from consoleSize, /dev/console; and what happens without a socket.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  makeBundle,
  newId,
  recvttyPath,
  rt,
  rtSpawn,
  RUNTIME,
  spawnTool,
  stateRoot,
  tempDir,
  waitForStatus,
  which,
  type BundleOptions,
  expectStatus,
} from './harness';

afterEach(cleanup);

interface TtyReport {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  ttyname: string | null;
  rows: number | null;
  cols: number | null;
  sid: number;
  pgrp: number;
  foreground: number | null;
  controlling: boolean;
}

/** The JSON object in terminal output (which may carry \r and other bytes around it). */
function jsonIn<T>(text: string): T {
  const start = text.indexOf('{');
  const end = text.indexOf('}', start);
  if (start < 0 || end < 0) throw new Error(`no JSON object in ${JSON.stringify(text)}`);
  return JSON.parse(text.slice(start, end + 1)) as T;
}

/**
 * Creates and starts a terminal container whose pty goes to recvtty; returns what recvtty
 * relayed (the terminal's output) and what it said about the fd it received.
 */
async function runWithConsoleSocket(args: string[], opts: Omit<BundleOptions, 'args'> = {}, input?: string) {
  const bundle = makeBundle({
    ...opts,
    args,
    config: (c) => {
      c.process!.terminal = true;
      opts.config?.(c);
    },
  });
  const socket = path.join(tempDir('tty-'), 'console.sock');
  const receiver = spawnTool(recvttyPath(), [...(input === undefined ? [] : ['--input', input]), socket]);
  await receiver.waitForStdout('listening\n');
  const id = newId();
  const create = rt(['create', '--console-socket', socket, '--bundle', bundle.dir, id]);
  expectStatus(create, 0);
  expect(create.stderr).toBe('');
  expectStatus(rt(['start', id]), 0);
  const exit = await receiver.exited;
  await waitForStatus(id, 'stopped');
  expect(exit.status, receiver.stderr).toBe(0);
  const received = jsonIn<{ isatty: boolean; ptsName: string | null }>(receiver.stderr);
  return { output: receiver.stdout.slice('listening\n'.length), received, createOutput: create.readStdout() };
}

describe('terminal: true with --console-socket', () => {
  it('hands a pty master over the socket, and the process has the slave as stdio and controlling terminal', async () => {
    const { output, received, createOutput } = await runWithConsoleSocket(['tty']);
    expect(received.isatty).toBe(true);
    const tty = jsonIn<TtyReport>(output);
    expect(tty).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true });
    expect(tty.ttyname).toMatch(/^\/dev\/pts\/\d+$/);
    // The process leads its own session and is the terminal's foreground process group.
    expect(tty.sid).toBe(1);
    expect(tty.foreground).toBe(tty.pgrp);
    // Output goes through the pty (with the line discipline's \r\n), not to the runtime's stdout.
    expect(output).toContain('}\r\n');
    expect(createOutput).toBe('');
  });

  it('applies consoleSize', async () => {
    const { output } = await runWithConsoleSocket(['tty'], { config: (c) => (c.process!.consoleSize = { height: 37, width: 123 }) });
    expect(jsonIn<TtyReport>(output)).toMatchObject({ rows: 37, cols: 123 });
  });

  it('bind-mounts the pty slave at /dev/console', async () => {
    const { output } = await runWithConsoleSocket(['stat', '/dev/console']);
    const console = jsonIn<{ type: string; rdevMajor: number }>(output);
    expect(console.type).toBe('char');
    // Unix98 pty slaves have majors 136-143.
    expect(console.rdevMajor).toBeGreaterThanOrEqual(136);
    expect(console.rdevMajor).toBeLessThanOrEqual(143);
  });

  it('delivers what is typed on the master to the process stdin', async () => {
    // "hello", a newline, then ^D at the start of a line: end of file for `cat -`.
    const { output } = await runWithConsoleSocket(['cat', '-'], {}, 'hello\n\x04');
    // Once echoed by the line discipline, once more from cat.
    expect(output.split('hello').length - 1).toBe(2);
  });

  it('refuses --console-socket when terminal is false', async () => {
    const bundle = makeBundle();
    const socket = path.join(tempDir('tty-'), 'console.sock');
    const res = rt(['create', '--console-socket', socket, '--bundle', bundle.dir, newId()]);
    expectStatus(res, 1);
    await expectNothingLeft();
  });
});

describe('terminal: true without a console socket', () => {
  function terminalBundle(): string {
    return makeBundle({ args: ['tty'], config: (c) => (c.process!.terminal = true) }).dir;
  }

  it.each([['create'], ['run', '-d']])('%s refuses: a detached container has nowhere to send its pty', async (...verb) => {
    const res = rt([...verb, '--bundle', terminalBundle(), newId()]);
    expectStatus(res, 1);
    expect(res.stderr).not.toBe('');
    await expectNothingLeft();
  });

  // runc's foreground `run` with terminal: true puts its own terminal (/dev/tty) in raw mode and
  // relays it to the container's pty. Without a controlling terminal it fails with exit 1
  // ("open /dev/tty: no such device or address") and leaves nothing behind.
  it('run fails with 1 when the caller has no controlling terminal', async () => {
    const run = rtSpawn(['run', '--bundle', terminalBundle(), newId()], { detached: true });
    const exit = await run.exited;
    expect(exit).toEqual({ status: 1, signal: null });
    expect(run.stdout).toBe('');
    await expectNothingLeft();
  });

  const script = which('script');
  it.skipIf(!script)('run relays the container pty when the caller is on a terminal', async () => {
    const bundle = terminalBundle();
    // script(1) runs the runtime on a new pty, so the runtime has a controlling terminal.
    const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
    const command = [RUNTIME, '--root', stateRoot(), 'run', '--bundle', bundle, newId()].map(quote).join(' ');
    // script's stdin stays open: at EOF script types its terminal's EOF character, which husk
    // would relay and the container's pty would echo ahead of the output.
    const run = spawnTool(script!, ['-qec', command, '/dev/null'], { detached: true, stdin: 'pipe' });
    const exit = await run.exited;
    expect(exit.status, run.stderr).toBe(0);
    const tty = jsonIn<TtyReport>(run.stdout);
    expect(tty).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true, sid: 1 });
  });
});
