// `run`: create and start in one step, in the foreground (exit status, output and signals pass
// through between the caller and the container's process) or detached with -d.
import { afterEach, describe, expect, it } from 'vitest';
import { alive, cleanup, expectNothingLeft, isHusk, isRunc, makeBundle, newId, rt, rtSpawn, state, waitForStatus, expectStatus } from './harness';

afterEach(cleanup);

describe('run in the foreground', () => {
  it('uses the current directory as the bundle and passes the exit status through', () => {
    const bundle = makeBundle({ args: ['exit', '3'] });
    const res = rt(['run', newId()], { cwd: bundle.dir });
    expectStatus(res, 3);
    expect(res.stderr).toBe('');
  });

  it('exits 0 when the process does', () => {
    const bundle = makeBundle({ args: ['exit', '0'] });
    expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
  });

  it('exits 128+N when the process dies by signal N (TERM -> 143)', () => {
    // Without a pid namespace the probe is not an init, so SIGTERM with its default action kills it.
    const bundle = makeBundle({
      args: ['kill-self', 'TERM'],
      config: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'pid');
      },
    });
    const res = rt(['run', '--bundle', bundle.dir, newId()]);
    expectStatus(res, 143);
  });

  it('exits 128+N when the pid namespace init dies by a fault (SEGV -> 139)', () => {
    const bundle = makeBundle({ args: ['kill-self', 'SEGV'] });
    const res = rt(['run', '--bundle', bundle.dir, newId()]);
    expectStatus(res, 139);
  });

  it('passes stdout and stderr through unchanged', () => {
    const bundle = makeBundle({ args: ['echo', 'hello', 'world', 'then', 'stderr', 'oops', 'then', 'echo', 'bye'] });
    const res = rt(['run', '--bundle', bundle.dir, newId()]);
    expectStatus(res, 0);
    expect(res.stdout).toBe('hello world\nbye\n');
    expect(res.stderr).toBe('oops\n');
  });

  it('passes stdin through', () => {
    const bundle = makeBundle({ args: ['cat', '-'] });
    const res = rt(['run', '--bundle', bundle.dir, newId()], { input: 'from the caller\n' });
    expectStatus(res, 0);
    expect(res.stdout).toBe('from the caller\n');
  });

  it('removes the container once the process has exited', () => {
    const bundle = makeBundle({ args: ['exit', '0'] });
    const id = newId();
    expectStatus(rt(['run', '--bundle', bundle.dir, id]), 0);
    expectStatus(rt(['state', id]), 1);
    expect(rt(['list', '-q']).stdout.trim()).toBe('');
  });

  it('forwards HUP and USR1 to the process and ends with its status after TERM', async () => {
    const bundle = makeBundle({ args: ['signals', '7'] });
    const run = rtSpawn(['run', '--bundle', bundle.dir, newId()]);
    await run.waitForStdout('ready\n');
    run.child.kill('SIGHUP');
    await run.waitForStdout('signal HUP\n');
    run.child.kill('SIGUSR1');
    await run.waitForStdout('signal USR1\n');
    run.child.kill('SIGTERM');
    const exit = await run.exited;
    expect(run.stdout).toBe('ready\nsignal HUP\nsignal USR1\nsignal TERM\n');
    expect(exit).toEqual({ status: 7, signal: null });
  });

  it('forwards SIGINT to the process', async () => {
    const bundle = makeBundle({ args: ['signals', '9'] });
    const run = rtSpawn(['run', '--bundle', bundle.dir, newId()]);
    await run.waitForStdout('ready\n');
    run.child.kill('SIGINT');
    const exit = await run.exited;
    expect(run.stdout).toBe('ready\nsignal INT\n');
    expect(exit).toEqual({ status: 9, signal: null });
  });

  it('returns when the process exits though a process it left behind holds its output', async () => {
    // Without a pid namespace a child outlives the container's process: this one prints a line
    // shortly after, then holds stdout and stderr for five minutes.
    const bundle = makeBundle({
      args: ['background', '0.3', '300', 'late', 'then', 'echo', 'early', 'then', 'exit', '3'],
      config: (c) => (c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'pid')),
    });
    const run = rtSpawn(['run', '--bundle', bundle.dir, newId()]);
    const exit = await run.exited;
    expect(exit).toEqual({ status: 3, signal: null });
    expect(run.stdout.startsWith('early\n'), run.stdout).toBe(true);
    // husk relays the output through pipes of its own, until none came for a while: the line
    // written after the exit is not cut off. (runc hands the process its own stdout.)
    if (isHusk) expect(run.stdout).toBe('early\nlate\n');
    await expectNothingLeft();
  });

  it('returns when the process exits though a process it left behind keeps writing', async () => {
    // The child prints every 0.2 s for five minutes: waiting for a quiet moment alone would
    // never end.
    const bundle = makeBundle({
      args: ['background', '0', '300', 'tick', '0.2', 'then', 'exit', '4'],
      config: (c) => (c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'pid')),
    });
    const run = rtSpawn(['run', '--bundle', bundle.dir, newId()]);
    const exit = await run.exited;
    expect(exit).toEqual({ status: 4, signal: null });
    expect(run.stdout.startsWith('tick\n'), run.stdout).toBe(true);
    await expectNothingLeft();
  });

  it('exits 137 when the container is killed with KILL from outside', async () => {
    const bundle = makeBundle({ args: ['signals', '0'] });
    const id = newId();
    const run = rtSpawn(['run', '--bundle', bundle.dir, id]);
    await run.waitForStdout('ready\n');
    expectStatus(rt(['kill', id, 'KILL']), 0);
    const exit = await run.exited;
    expect(exit).toEqual({ status: 137, signal: null });
  });
});

describe('run -d', () => {
  it('returns at once with the container running, which kill and delete then stop and remove', async () => {
    const bundle = makeBundle({ args: ['signals', '0'] });
    const id = newId();
    const res = rt(['run', '-d', '--bundle', bundle.dir, id]);
    expectStatus(res, 0);
    expect(res.stderr).toBe('');
    const running = state(id)!;
    expect(running.status).toBe('running');
    expect(running.pid).toBeGreaterThan(0);
    expect(alive(running.pid)).toBe(true);
    await expect.poll(() => res.readStdout(), { timeout: 10_000 }).toBe('ready\n');

    expectStatus(rt(['kill', id, 'TERM']), 0);
    await waitForStatus(id, 'stopped');
    expect(res.readStdout()).toBe('ready\nsignal TERM\n');
    expectStatus(rt(['delete', id]), 0);
    expectStatus(rt(['state', id]), 1);
    expect(alive(running.pid)).toBe(false);
  });

  it('--detach is the long form', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '--detach', '--bundle', bundle.dir, id]), 0);
    expect(state(id)!.status).toBe('running');
  });
});

describe('husk only', () => {
  it.skipIf(isRunc)('--trace prints the kernel steps on stderr and changes nothing the process sees', () => {
    const bundle = makeBundle({ args: ['echo', 'traced', 'then', 'exit', '5'] });
    const plain = rt(['run', '--bundle', bundle.dir, newId()]);
    const traced = rt(['--trace', 'run', '--bundle', bundle.dir, newId()]);
    expectStatus(traced, 5);
    expect(traced.stdout).toBe(plain.stdout);
    expect(traced.stderr).not.toBe('');
  });

  it.skipIf(isRunc)('demo runs the embedded container and prints the probe report', () => {
    const res = rt(['demo', 'probe', '--json']);
    expect(res.status, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as { pid: number; hostname: string };
    expect(report.pid).toBe(1);
  });
});
