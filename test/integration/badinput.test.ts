// Bad input: every mistake gets exit status 1, leaves nothing behind (no state entry, no mount,
// no process), and, from husk, one line on stderr saying what was wrong.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  isHusk,
  makeBundle,
  newId,
  parseReport,
  rt,
  state,
  tempDir,
  waitFor,
  type RtResult,
  type Spec,
  expectStatus,
} from './harness';

afterEach(cleanup);

/**
 * The common checks for a refused command: exit 1, nothing on stdout, and for husk a single
 * `husk: ...` line on stderr that matches `names` (what was wrong).
 */
function expectRefused(res: RtResult, names: RegExp): void {
  expect(res.status, res.stderr).toBe(1);
  expect(res.stdout).toBe('');
  expect(res.stderr).not.toBe('');
  if (isHusk) {
    const lines = res.stderr.split('\n').filter(Boolean);
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^husk: /);
    expect(lines[0]).toMatch(names);
  }
}

/** create with a config changed by `patch` must fail with 1 and leave nothing. */
async function expectCreateRefused(patch: (c: Spec) => void, names: RegExp, setup?: (bundleDir: string) => void) {
  const bundle = makeBundle({ args: ['exit', '0'], config: patch });
  setup?.(bundle.dir);
  const id = newId();
  const res = rt(['create', '--bundle', bundle.dir, id]);
  expectRefused(res, names);
  await expectNothingLeft();
  expectStatus(rt(['state', id]), 1);
  return bundle;
}

describe('a bad config', () => {
  it('malformed JSON', async () => {
    await expectCreateRefused(
      () => {},
      /config\.json/,
      (dir) => fs.writeFileSync(path.join(dir, 'config.json'), '{"ociVersion": "1.0.2", "process": {'),
    );
  });

  it('no config.json at all', async () => {
    await expectCreateRefused(
      () => {},
      /config\.json/,
      (dir) => fs.rmSync(path.join(dir, 'config.json')),
    );
  });

  it('no process', async () => {
    await expectCreateRefused((c) => delete c.process, /process/);
  });

  it('no process.args', async () => {
    await expectCreateRefused((c) => delete c.process!.args, /process\.args/);
  });

  it('empty process.args', async () => {
    await expectCreateRefused((c) => (c.process!.args = []), /process\.args/);
  });

  it('a rootfs that does not exist', async () => {
    await expectCreateRefused((c) => (c.root!.path = 'no-such-rootfs'), /no-such-rootfs/);
  });

  it('an unknown namespace type', async () => {
    await expectCreateRefused((c) => c.linux!.namespaces!.push({ type: 'bogus' }), /bogus/);
  });

  it('a namespace path that does not exist', async () => {
    await expectCreateRefused(
      (c) => (c.linux!.namespaces = c.linux!.namespaces!.map((ns) => (ns.type === 'network' ? { type: 'network', path: '/proc/no/ns/net' } : ns))),
      /\/proc\/no\/ns\/net/,
    );
  });

  it('a bind mount whose source does not exist', async () => {
    await expectCreateRefused(
      (c) => c.mounts!.push({ destination: '/data', type: 'bind', source: '/no/such/source', options: ['rbind'] }),
      /\/no\/such\/source/,
    );
  });

  it('an unknown rootfsPropagation', async () => {
    await expectCreateRefused((c) => (c.linux!.rootfsPropagation = 'bogus'), /rootfsPropagation|bogus/);
  });

  it('an executable that does not exist (refused at create)', async () => {
    await expectCreateRefused((c) => (c.process!.args = ['/nope']), /\/nope/);
  });

  it('an executable that does not exist, with run', async () => {
    const bundle = makeBundle({ config: (c) => (c.process!.args = ['/nope']) });
    const id = newId();
    expectRefused(rt(['run', '--bundle', bundle.dir, id]), /\/nope/);
    await expectNothingLeft();
  });
});

describe('a mount destination through a symlink that points out of the rootfs', () => {
  it('never mounts on the host: the mount stays inside the rootfs, or create fails cleanly', async () => {
    const outside = tempDir('outside-');
    const bundle = makeBundle({
      args: ['write', '/escape/x/written', 'inside', 'then', 'report', 'then', 'sleep', 'inf'],
      config: (c) => c.mounts!.push({ destination: '/escape/x', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }),
    });
    fs.symlinkSync(outside, bundle.path('escape'));
    const id = newId();
    const res = rt(['run', '-d', '--bundle', bundle.dir, id]);
    const hostMountsUnderOutside = () =>
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((line) => line.includes(outside));

    if (res.status === 0) {
      // runc resolves the symlink inside the rootfs: the tmpfs lands on rootfs/<outside>/x.
      const out = await waitFor('the probe report', () => (res.readStdout().includes('\n') ? res.readStdout() : undefined));
      const report = parseReport(out);
      const tmpfsMounts = report.mounts.filter((m) => m.fsType === 'tmpfs').map((m) => m.mountPoint);
      expect(tmpfsMounts.some((m) => m === '/escape/x' || m === `${outside}/x`)).toBe(true);
      expect(res.readStderr()).toBe('');
      expect(fs.readdirSync(outside)).toEqual([]);
      expect(hostMountsUnderOutside()).toEqual([]);
    } else {
      expectRefused(res, /escape|symlink|outside/);
      await expectNothingLeft();
    }
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(hostMountsUnderOutside()).toEqual([]);
  });
});

describe('bad container ids', () => {
  it.each(['../x', 'a/b', '..', '.', 'a b'])('refuses %j', async (id) => {
    const bundle = makeBundle();
    const res = rt(['create', '--bundle', bundle.dir, id]);
    expectRefused(res, new RegExp(id.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    await expectNothingLeft();
    // Nothing was written next to the state root either.
    expect(fs.existsSync(path.join(bundle.dir, 'x'))).toBe(false);
  });

  it('refuses an empty id', async () => {
    const bundle = makeBundle();
    const res = rt(['create', '--bundle', bundle.dir, '']);
    expectRefused(res, /id/);
    await expectNothingLeft();
  });

  it('refuses a duplicate id and leaves the existing container alone', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    const before = state(id)!;
    expectRefused(rt(['create', '--bundle', makeBundle().dir, id]), new RegExp(id));
    expect(state(id)).toEqual(before);
    expect(rt(['list', '-q']).stdout).toBe(`${id}\n`);
  });
});

describe('verbs on containers that do not exist', () => {
  it.each([['start'], ['state'], ['delete'], ['kill'], ['ps']])('%s fails with 1', (verb) => {
    const id = newId();
    expectRefused(rt([verb, id]), new RegExp(id));
  });

  it('delete --force of a container that does not exist succeeds quietly (as runc does)', () => {
    const res = rt(['delete', '--force', newId()]);
    expectStatus(res, 0);
    expect(res.stdout).toBe('');
  });
});

describe('kill with a bad signal', () => {
  it.each([['BOGUS'], ['SIGBOGUS'], ['99'], ['-1']])('refuses %s and leaves the container running', (signal) => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    const res = rt(['kill', id, signal]);
    expectStatus(res, 1);
    if (isHusk) expectRefused(res, new RegExp(signal.replace(/^-/, '')));
    expect(state(id)!.status).toBe('running');
  });
});

describe('--log', () => {
  // containerd's shim runs runc with `--log FILE --log-format json` and, when a command fails,
  // reads the error from the last JSON line's "msg". stderr still carries the message.
  it('writes the error as a JSON line with level and msg for --log-format json', () => {
    const id = newId();
    const res = rt(['--log-format', 'json', 'state', id], { log: true });
    expectStatus(res, 1);
    expect(res.stderr).not.toBe('');
    const lines = fs.readFileSync(res.logFile!, 'utf8').split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    const entries = lines.map((line) => JSON.parse(line) as { level: string; msg: string; time?: string });
    const last = entries.at(-1)!;
    expect(last.level).toBe('error');
    expect(typeof last.msg).toBe('string');
    expect(last.msg).not.toBe('');
  });

  // Command-line errors too, for runc's verbs and for `husk image`, each on one line. The
  // wording is husk's (runc words its usage errors its own way and has no `image`).
  it.skipIf(!isHusk).each([
    [['kil', 'x'], `unknown command 'kil' (Did you mean kill?)`],
    [['kill'], `missing required argument 'id'`],
    [['image', 'pull'], `image: missing required argument 'image'`],
    [['image', 'pul', 'x'], `image: unknown command 'pul' (Did you mean pull?)`],
  ])('a usage error (%j) is one line on stderr and a JSON error line in the log', (args, message) => {
    const res = rt(['--log-format', 'json', ...args], { log: true });
    expectStatus(res, 1);
    expect(res.stderr).toBe(`husk: ${message}\n`);
    const lines = fs.readFileSync(res.logFile!, 'utf8').split('\n').filter(Boolean);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ level: 'error', msg: message });
  });

  it('writes the error to the log file in text format by default', () => {
    const res = rt(['state', newId()], { log: true });
    expectStatus(res, 1);
    expect(fs.readFileSync(res.logFile!, 'utf8')).toMatch(/level=error/);
  });
});
