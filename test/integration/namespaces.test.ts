// linux.namespaces: new namespaces are new (different inodes from the host's, PID 1, only lo),
// absent ones are shared with the host, and a namespace given by path is joined.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, hostNamespace, isRunc, makeBundle, newId, parseReport, rt, state, expectStatus } from './harness';

afterEach(cleanup);

/** The OCI namespace type -> the name of its /proc/PID/ns link. */
const NS_LINK: Record<string, string> = { pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', mount: 'mnt', cgroup: 'cgroup' };

function runReport(bundleOpts: Parameters<typeof makeBundle>[0] = {}) {
  const bundle = makeBundle({ ...bundleOpts, args: ['report'] });
  const res = rt(['run', '--bundle', bundle.dir, newId()]);
  expectStatus(res, 0);
  expect(res.stderr).toBe('');
  return parseReport(res.stdout);
}

describe('new namespaces', () => {
  it('makes the process PID 1 of a new pid namespace', () => {
    const report = runReport();
    expect(report.pid).toBe(1);
    expect(report.ppid).toBe(0);
  });

  it('gives a new network namespace with only lo, up, with its loopback addresses', () => {
    const report = runReport();
    expect(report.interfaces.map((i) => i.name)).toEqual(['lo']);
    expect(report.interfaces[0]).toMatchObject({ loopback: true, up: true });
    expect(report.interfaces[0].addresses).toContain('127.0.0.1');
  });

  it('sets the hostname from the config', () => {
    const report = runReport({ config: (c) => (c.hostname = 'box-one') });
    expect(report.hostname).toBe('box-one');
  });

  // runc 1.1 ignores `domainname` (the field came with runtime-spec 1.1; runc supports it from 1.2).
  it.skipIf(isRunc)('sets the domainname from the config', () => {
    const report = runReport({
      config: (c) => {
        c.hostname = 'box-one';
        c.domainname = 'example.org';
      },
    });
    expect(report.hostname).toBe('box-one');
    expect(report.domainname).toBe('example.org');
  });

  it('leaves the domainname unset when the config has none', () => {
    const report = runReport();
    expect(report.hostname).toBe('husk-test');
    expect(report.domainname).toBe('(none)');
  });

  it('puts the process in a namespace other than the host one for each type in the config', () => {
    const report = runReport();
    for (const [type, link] of Object.entries(NS_LINK)) {
      expect(report.namespaces[link], type).toMatch(new RegExp(`^${link}:\\[\\d+\\]$`));
      expect(report.namespaces[link], type).not.toBe(hostNamespace(link));
    }
  });

  it('shares the host namespace for each type the config leaves out', () => {
    const report = runReport({
      config: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ['mount', 'pid'].includes(ns.type));
        delete c.hostname; // a hostname needs a uts namespace
      },
    });
    for (const link of ['net', 'ipc', 'uts', 'cgroup']) expect(report.namespaces[link], link).toBe(hostNamespace(link));
    expect(report.namespaces.mnt).not.toBe(hostNamespace('mnt'));
  });
});

describe('joining a namespace by path', () => {
  it('joins a network namespace made with `ip netns add`', () => {
    const name = `husk-it-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    expect(spawnSync('ip', ['netns', 'add', name]).status).toBe(0);
    try {
      const inode = spawnSync('ip', ['netns', 'exec', name, 'readlink', '/proc/self/ns/net'], { encoding: 'utf8' }).stdout.trim();
      expect(inode).toMatch(/^net:\[\d+\]$/);
      const report = runReport({
        config: (c) => {
          c.linux!.namespaces = c.linux!.namespaces!.map((ns) => (ns.type === 'network' ? { type: 'network', path: `/run/netns/${name}` } : ns));
        },
      });
      expect(report.namespaces.net).toBe(inode);
      expect(report.interfaces.map((i) => i.name)).toEqual(['lo']);
    } finally {
      spawnSync('ip', ['netns', 'del', name]);
    }
  });

  it("joins another container's network, uts and ipc namespaces through /proc/PID/ns", () => {
    const first = makeBundle({ config: (c) => (c.hostname = 'first-box') });
    const firstId = newId('first');
    expectStatus(rt(['run', '-d', '--bundle', first.dir, firstId]), 0);
    const { pid } = state(firstId)!;
    const firstNs = Object.fromEntries(['net', 'uts', 'ipc'].map((link) => [link, `${link}:[${readNsInode(pid, link)}]`]));

    const report = runReport({
      config: (c) => {
        delete c.hostname; // the joined uts namespace already has one
        c.linux!.namespaces = c.linux!.namespaces!.map((ns) =>
          ['network', 'uts', 'ipc'].includes(ns.type) ? { type: ns.type, path: `/proc/${pid}/ns/${NS_LINK[ns.type]}` } : ns,
        );
      },
    });
    expect(report.namespaces.net).toBe(firstNs.net);
    expect(report.namespaces.uts).toBe(firstNs.uts);
    expect(report.namespaces.ipc).toBe(firstNs.ipc);
    expect(report.hostname).toBe('first-box');
    // The pid namespace is still a new one of its own.
    expect(report.pid).toBe(1);
    expect(report.namespaces.pid).not.toBe(`pid:[${readNsInode(pid, 'pid')}]`);
  });
});

function readNsInode(pid: number, link: string): string {
  return /\[(\d+)\]/.exec(fs.readlinkSync(`/proc/${pid}/ns/${link}`))![1];
}

// runc 1.1 has no time namespaces; runc 1.2+ and crun do.
describe.skipIf(isRunc)('a new time namespace', () => {
  it('shifts the boottime and monotonic clocks by linux.timeOffsets', () => {
    const bundle = makeBundle({
      args: ['cat', '/proc/uptime', 'then', 'report'],
      config: (c) => {
        c.linux!.namespaces!.push({ type: 'time' });
        (c.linux as any).timeOffsets = { boottime: { secs: 86400 * 365 }, monotonic: { secs: 3600, nanosecs: 5 } };
      },
    });
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    const uptime = Number(res.stdout.split(' ')[0]);
    const hostUptime = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    // /proc/uptime inside counts boottime: a year ahead of the host's.
    expect(uptime - hostUptime).toBeGreaterThan(86400 * 365 - 60);
    expect(uptime - hostUptime).toBeLessThan(86400 * 365 + 60);
    const report = parseReport(res.stdout.split('\n').slice(1).join('\n'));
    expect(report.namespaces.time).not.toBe(hostNamespace('time'));
  });
});
