// Every runc flag of create, run and exec (and ps's words after the id) reaches the runtime
// as the field it must set: argv goes through the verb's real commander definition, and the
// action's arguments through the verb's own mapping. `--no-X` flags are the ones to watch:
// commander stores them as `X: false`.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import * as createVerb from '../../src/cli/create';
import * as execVerb from '../../src/cli/exec';
import type { Action, GlobalOptions } from '../../src/cli/globals';
import * as psVerb from '../../src/cli/ps';
import * as runVerb from '../../src/cli/run';

const g: GlobalOptions = { root: '/run/test', logFormat: 'text', debug: false, systemdCgroup: false, trace: false, explain: false };

/** Parses argv with the verb's command and returns the arguments its action was called with. */
async function parse(make: (g: GlobalOptions, action: Action) => Command, argv: string[]): Promise<any[]> {
  let called: any[] | undefined;
  const action: Action = () => async (...args: any[]) => {
    called = args;
  };
  const cmd = make(g, action).exitOverride((err) => {
    throw err;
  });
  await cmd.parseAsync(argv, { from: 'user' });
  if (!called) throw new Error('the action was not called');
  return called;
}

const create = async (argv: string[]) => {
  const [id, opts] = await parse(createVerb.command, argv);
  return createVerb.createOptions(id, opts, g);
};
const run = async (argv: string[]) => {
  const [id, opts] = await parse(runVerb.command, argv);
  return runVerb.runOptions(id, opts, g);
};
const exec = async (argv: string[]) => {
  const [id, words, opts, cmd] = await parse(execVerb.command, argv);
  return execVerb.execOptions(g, id, words, opts, cmd);
};

describe('create and run', () => {
  it.each([
    [['--no-pivot'], { noPivot: true }],
    [['--no-new-keyring'], { noNewKeyring: true }],
    [['--bundle', '/b'], { bundle: '/b' }],
    [['-b', '/b'], { bundle: '/b' }],
    [['--pid-file', '/p'], { pidFile: '/p' }],
    [['--console-socket', '/s'], { consoleSocket: '/s' }],
    [['--preserve-fds', '2'], { preserveFds: 2 }],
  ])('%j sets %j', async (flags, fields) => {
    expect(await create([...flags, 'c1'])).toMatchObject({ id: 'c1', root: '/run/test', detach: true, ...fields });
    expect(await run([...flags, 'c1'])).toMatchObject({ id: 'c1', root: '/run/test', ...fields });
    // After the id too, as runc takes them.
    expect(await create(['c1', ...flags])).toMatchObject({ id: 'c1', ...fields });
  });

  it('without flags: pivot_root, a new keyring, the current directory, no extra fds', async () => {
    for (const o of [await create(['c1']), await run(['c1'])]) {
      expect(o).toMatchObject({ noPivot: false, noNewKeyring: false, bundle: '.', preserveFds: 0 });
      expect(o.pidFile).toBeUndefined();
      expect(o.consoleSocket).toBeUndefined();
    }
  });

  it('run: --detach and --keep', async () => {
    expect(await run(['c1'])).toMatchObject({ detach: false, keep: false });
    expect(await run(['-d', '--keep', 'c1'])).toMatchObject({ detach: true, keep: true });
    expect(await run(['--detach', 'c1'])).toMatchObject({ detach: true });
  });
});

describe('exec', () => {
  it.each([
    [['--no-new-privs'], { noNewPrivs: true }],
    [['-t'], { tty: true }],
    [['--tty'], { tty: true }],
    [['-d'], { detach: true }],
    [['--cwd', '/w'], { cwd: '/w' }],
    [['-e', 'A=1', '--env', 'B=2'], { env: ['A=1', 'B=2'] }],
    [['-u', '1:2'], { user: '1:2' }],
    [['-g', '5', '--additional-gids', '7'], { additionalGids: [5, 7] }],
    [['-c', 'CAP_KILL', '--cap', 'CAP_CHOWN'], { caps: ['CAP_KILL', 'CAP_CHOWN'] }],
    [['--apparmor', 'p'], { apparmor: 'p' }],
    [['--pid-file', '/p'], { pidFile: '/p' }],
    [['--console-socket', '/s'], { consoleSocket: '/s' }],
    [['--preserve-fds', '3'], { preserveFds: 3 }],
    [['--ignore-paused'], { ignorePaused: true }],
    [['-p', '/proc.json'], { processFile: '/proc.json' }],
  ])('%j sets %j, before the id or between the id and the command', async (flags, fields) => {
    expect(await exec([...flags, 'c1', 'cmd'])).toMatchObject({ id: 'c1', root: '/run/test', args: ['cmd'], ...fields });
    expect(await exec(['c1', ...flags, 'cmd'])).toMatchObject({ id: 'c1', args: ['cmd'], ...fields });
  });

  it('without flags: no no_new_privs, no terminal, attached', async () => {
    expect(await exec(['c1', 'cmd'])).toMatchObject({ noNewPrivs: false, tty: false, detach: false, additionalGids: [], preserveFds: 0, ignorePaused: false });
  });

  it('leaves the command\'s own options to the command', async () => {
    expect((await exec(['c1', 'sh', '-c', 'echo hi'])).args).toEqual(['sh', '-c', 'echo hi']);
    expect((await exec(['c1', 'ls', '-l', '/'])).args).toEqual(['ls', '-l', '/']);
    expect((await exec(['-t', 'c1', 'sh', '-t', '--tty', '-d'])).args).toEqual(['sh', '-t', '--tty', '-d']);
    const o = await exec(['c1', 'sh', '-c', 'x']);
    expect(o.caps).toBeUndefined();
    expect(o.tty).toBe(false);
  });

  it('ends its own options at --', async () => {
    expect((await exec(['c1', '--', 'ls', '-l'])).args).toEqual(['ls', '-l']);
    expect((await exec(['--', 'c1', 'ls', '-l'])).args).toEqual(['ls', '-l']);
    expect((await exec(['-t', 'c1', '--', '-x'])).args).toEqual(['-x']);
  });
});

describe('ps', () => {
  it('passes the words after the id to ps(1)', async () => {
    const [id, psArgs, opts] = await parse(psVerb.command, ['c1', '-ef']);
    expect([id, psArgs, opts.format]).toEqual(['c1', ['-ef'], 'table']);
    const [, args2, opts2] = await parse(psVerb.command, ['--format', 'json', 'c1', '-o', 'pid,comm']);
    expect([args2, opts2.format]).toEqual([['-o', 'pid,comm'], 'json']);
  });
});
