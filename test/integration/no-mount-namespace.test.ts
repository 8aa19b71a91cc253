// A config whose linux.namespaces has no "mount": the runtime spec says a namespace that is
// not listed is inherited from the runtime, and runc runs such a config: the container shares
// the runtime's mount namespace, its mounts (proc, dev, ...) are made there, and its process
// is chrooted into the rootfs (pivot_root would change the host's root). Masked and read-only
// paths need a mount namespace of its own and are refused (runc's rule); husk also refuses
// --no-pivot, which would move the rootfs over the host's "/".
//
// husk must leave the host's mount table exactly as it found it, during (propagation) and after
// delete. runc does not: its prepareRoot makes the host's "/" rslave and the rootfs's parent
// mount private, and its mounts stay after delete. So only the refusal runs against runc
// (HUSK_TEST_RUNTIME=$(command -v runc)); the rest would change this machine's mount table.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  expectStatus,
  hostNamespace,
  isHusk,
  isRunc,
  makeBundle,
  newId,
  parseReport,
  rt,
  waitFor,
  type Bundle,
  type RtResult,
} from './harness';

afterEach(cleanup);

function withoutMountNamespace(args: string[], change?: (c: Bundle['config']) => void): Bundle {
  return makeBundle({
    args,
    config: (c) => {
      c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== 'mount');
      c.linux!.maskedPaths = [];
      c.linux!.readonlyPaths = [];
      change?.(c);
    },
  });
}

/** The host's mount table (this process's), one line per mount. Network namespace pins (nsfs
 * mounts under /run/netns, which the network tests running beside these make and remove) are
 * left out: nothing here mounts one. */
const hostMountTable = () =>
  fs.readFileSync('/proc/self/mountinfo', 'utf8').trimEnd().split('\n')
    .filter((line) => !line.includes(' - nsfs '))
    .sort();

const mountPointsUnder = (dir: string) =>
  hostMountTable()
    .map((line) => line.split(' ')[4])
    .filter((p) => p === dir || p.startsWith(dir + '/'));

function spawnUmount(p: string) {
  spawnSync('umount', ['-l', p], { stdio: 'ignore' });
}

function expectRefused(res: RtResult, text: string): void {
  expect(res.status, res.stderr).toBe(1);
  expect(res.stderr).toContain(text);
  if (isHusk) {
    const lines = res.stderr.split('\n').filter(Boolean);
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^husk: (create|run) \S+: /);
  }
}

describe('a config without a mount namespace', () => {
  it.skipIf(isRunc)('runs the process in the runtime\'s mount namespace, with the rootfs as its root', () => {
    const bundle = withoutMountNamespace(['report', 'then', 'ls', '/']);
    const before = hostMountTable();
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    const [reportLine, ...listing] = res.stdout.trimEnd().split('\n');
    const report = parseReport(reportLine);
    expect(report.namespaces.mnt).toBe(hostNamespace('mnt'));
    expect(report.cwd).toBe('/');
    expect(listing).toEqual(['dev', 'etc', 'probe', 'proc', 'sys', 'tmp']);
    // proc is the container's own (a new pid namespace): the probe is pid 1 in it.
    expect(report.pid).toBe(1);
    expect(hostMountTable()).toEqual(before);
  });

  it.skipIf(isRunc)('has its mounts in the host\'s table while it lives, and none after delete', async () => {
    const bundle = withoutMountNamespace(['echo', 'up', 'then', 'sleep', 'inf']);
    const id = newId();
    const before = hostMountTable();
    const created = expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    expectStatus(rt(['start', id]), 0);
    await waitFor('the process to start', () => created.readStdout().includes('up'));
    const during = mountPointsUnder(bundle.rootfs);
    expect(during).toContain(bundle.path('/proc'));
    expect(during).toContain(bundle.path('/dev'));
    expectStatus(rt(['kill', id, 'KILL']), 0);
    await waitFor('the container to stop', () => JSON.parse(rt(['state', id]).stdout).status === 'stopped');
    expectStatus(rt(['delete', id]), 0);
    expect(hostMountTable()).toEqual(before);
    expect(mountPointsUnder(bundle.rootfs)).toEqual([]);
  });

  it.skipIf(isRunc)('leaves a mount that was on the rootfs before create where it was', () => {
    const bundle = withoutMountNamespace(['report']);
    const data = bundle.path('/data');
    fs.mkdirSync(data);
    spawnMount(data);
    try {
      const before = hostMountTable();
      expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
      expect(hostMountTable()).toEqual(before);
      expect(mountPointsUnder(data)).toEqual([data]);
    } finally {
      spawnUmount(data);
    }
  });

  it.skipIf(isRunc)('leaves nothing behind when create fails half-way', async () => {
    const bundle = withoutMountNamespace(['report'], (c) => (c.process!.args = ['/does-not-exist']));
    const before = hostMountTable();
    const res = rt(['run', '--bundle', bundle.dir, newId()]);
    expect(res.status).not.toBe(0);
    expect(res.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    await expectNothingLeft();
    expect(hostMountTable()).toEqual(before);
  });

  it.skipIf(isRunc)('can be joined by exec, which lands in the container\'s root too', async () => {
    const bundle = withoutMountNamespace(['echo', 'up', 'then', 'sleep', 'inf']);
    const id = newId();
    const created = expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    expectStatus(rt(['start', id]), 0);
    await waitFor('the process to start', () => created.readStdout().includes('up'));
    const res = rt(['exec', id, '/probe', 'ls', '/']);
    expect(expectStatus(res, 0).stdout.trimEnd().split('\n')).toEqual(['dev', 'etc', 'probe', 'proc', 'sys', 'tmp']);
    expectStatus(rt(['delete', '--force', id]), 0);
  });

  it('refuses masked and read-only paths, which need a mount namespace of its own', async () => {
    const bundle = withoutMountNamespace(['report'], (c) => (c.linux!.maskedPaths = ['/proc/kcore']));
    expectRefused(rt(['run', '--bundle', bundle.dir, newId()]), 'unable to restrict sys entries without a private MNT namespace');
    await expectNothingLeft();
  });

  // --no-pivot would move the rootfs over the host's "/".
  it.skipIf(isRunc)('refuses --no-pivot, which would move the rootfs over the host\'s root', async () => {
    const bundle = withoutMountNamespace(['report']);
    expectRefused(rt(['run', '--no-pivot', '--bundle', bundle.dir, newId()]), '--no-pivot needs a private mount namespace');
    await expectNothingLeft();
  });

  // runc ignores root.readonly here (the container can write its rootfs); husk makes its own
  // bind of the rootfs read-only, which leaves the host's view of the directory writable.
  it.skipIf(isRunc)('honours root.readonly on its own bind of the rootfs, not on the host\'s', () => {
    const bundle = withoutMountNamespace(['write', '/x'], (c) => (c.root!.readonly = true));
    const before = hostMountTable();
    const res = rt(['run', '--bundle', bundle.dir, newId()]);
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('EROFS');
    expect(hostMountTable()).toEqual(before);
    fs.writeFileSync(bundle.path('/y'), 'the host can still write here\n');
  });

  it.skipIf(isRunc)('honours a rootfs propagation without changing the host\'s', () => {
    const bundle = withoutMountNamespace(['report'], (c) => (c.linux!.rootfsPropagation = 'rslave'));
    const before = hostMountTable();
    expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    expect(hostMountTable()).toEqual(before);
  });
});

function spawnMount(dir: string) {
  const res = spawnSync('mount', ['-t', 'tmpfs', 'pre-existing', dir], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${res.stderr}`);
}
