// `husk demo LESSON`: each lesson runs the probe with one kind of isolation on and off and must
// show the difference it claims, in its --json summary (asserted here on the probe's own words)
// and in its human output (two columns, the config.json lines, what the kernel did). A lesson
// that cannot show its difference fails with one line; every lesson leaves nothing behind.
import fs from 'node:fs';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectNothingLeft, hostNamespace, isRunc, rt } from './harness';

afterEach(cleanup);

interface Summary {
  lesson: string;
  labels: [string, string];
  isolated: Record<string, any>;
  shared: Record<string, any>;
  config: { side: 'isolated' | 'shared'; path: string; value: unknown }[];
  kernel: string;
  shown: boolean;
}

const LESSONS = ['pid', 'mount', 'net', 'uts', 'ipc', 'user', 'cgroup', 'caps', 'seccomp', 'overlay'];

function lesson(name: string): Summary {
  const res = rt(['demo', name, '--json'], { timeoutMs: 120_000 });
  expect(res.status, `${res.command}\n${res.stderr}`).toBe(0);
  const summary = JSON.parse(res.stdout) as Summary;
  expect(summary.lesson).toBe(name);
  expect(summary.shown).toBe(true);
  expect(summary.kernel.length).toBeGreaterThan(40);
  return summary;
}

/** The config.json changes as "+path value" / "-path value" strings. */
function changes(s: Summary): string[] {
  return s.config.map((c) => `${c.side === 'isolated' ? '+' : '-'}${c.path} ${JSON.stringify(c.value)}`);
}

function demoDirs(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((d) => d.startsWith('husk-demo-'));
}

describe.skipIf(isRunc)('husk demo LESSON', () => {
  it('lists every lesson with one line each, and the probe demo', () => {
    const res = rt(['demo']);
    expect(res.status, res.stderr).toBe(0);
    for (const name of ['probe', ...LESSONS]) expect(res.stdout).toMatch(new RegExp(`^  ${name} +\\S.*$`, 'm'));
    const listed = JSON.parse(rt(['demo', '--json']).stdout) as { name: string; summary: string }[];
    expect(listed.map((l) => l.name)).toEqual(LESSONS);
  });

  it('refuses an unknown lesson with one line naming the lessons', () => {
    const res = rt(['demo', 'nosuch']);
    expect(res.status).toBe(1);
    expect(res.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^husk: demo nosuch: unknown lesson \(one of probe, pid, .*overlay\)$/)]);
  });

  it('pid: PID 1 and only itself with a pid namespace, the host\'s processes without', () => {
    const s = lesson('pid');
    expect(s.isolated.pid).toBe(1);
    expect(s.isolated.pids).toEqual([1]);
    expect(s.shared.pid).toBeGreaterThan(1);
    expect(s.shared.pids).toContain(1);
    expect(s.shared.pids).toContain(s.shared.pid);
    expect(s.shared.processes).toBeGreaterThan(5);
    expect(changes(s)).toEqual(['+linux.namespaces[] {"type":"pid"}']);
  });

  it('mount: a mount table of its own with a mount namespace, the host\'s without', () => {
    const s = lesson('mount');
    expect(s.isolated.namespace).not.toBe(hostNamespace('mnt'));
    expect(s.shared.namespace).toBe(hostNamespace('mnt'));
    expect(s.isolated.mounts[0]).toBe('/');
    expect(s.isolated.mounts).toContain('/proc');
    expect(changes(s)).toContain('+linux.namespaces[] {"type":"mount"}');
    expect(changes(s).every((c) => /^\+linux\.(namespaces|maskedPaths|readonlyPaths)\[\]/.test(c))).toBe(true);
  });

  it('net: only lo with a network namespace, the host\'s interfaces without', () => {
    const s = lesson('net');
    expect(s.isolated.interfaces).toEqual(['lo']);
    expect(s.shared.namespace).toBe(hostNamespace('net'));
    expect(s.shared.interfaces).toEqual(expect.arrayContaining(['lo']));
    expect(s.shared.interfaces.length).toBeGreaterThan(1);
    expect(changes(s)).toEqual(['+linux.namespaces[] {"type":"network"}']);
  });

  it('uts: its own hostname with a UTS namespace, the host\'s without', () => {
    const s = lesson('uts');
    expect(s.isolated.hostname).toBe('husk-demo');
    expect(s.shared.hostname).toBe(os.hostname());
    expect(changes(s).sort()).toEqual(['+hostname "husk-demo"', '+linux.namespaces[] {"type":"uts"}']);
  });

  it('ipc: a shared memory segment made on the host is not there with an ipc namespace, and seen without', () => {
    const before = fs.readFileSync('/proc/sysvipc/shm', 'utf8');
    const s = lesson('ipc');
    expect(s.isolated.namespace).toMatch(/^ipc:\[\d+\]$/);
    expect(s.isolated.namespace).not.toBe(hostNamespace('ipc'));
    expect(s.isolated).toMatchObject({ segments: 0, seesHostSegment: false });
    expect(s.shared.namespace).toBe(hostNamespace('ipc'));
    expect(s.shared.seesHostSegment).toBe(true);
    expect(s.shared.segments).toBeGreaterThanOrEqual(1);
    expect(changes(s)).toEqual(['+linux.namespaces[] {"type":"ipc"}']);
    // The segment was removed again.
    expect(fs.readFileSync('/proc/sysvipc/shm', 'utf8')).toBe(before);
  });

  it('user: root inside is 100000 outside and the host\'s root is nobody, with a user namespace', () => {
    const s = lesson('user');
    expect(s.isolated.uid).toBe(0);
    expect(s.isolated.uidMap).toEqual([0, 100000, 65536]);
    expect(s.isolated.probeOwner).toBe(65534);
    expect(s.shared.uidMap).toEqual([0, 0, 4294967295]);
    expect(s.shared.probeOwner).toBe(0);
    expect(changes(s)).toContain('+linux.namespaces[] {"type":"user"}');
    expect(changes(s)).toContain('+linux.uidMappings [{"containerID":0,"hostID":100000,"size":65536}]');
  });

  it('cgroup: killed by the OOM killer under a 32 MiB memory limit, done without', () => {
    const s = lesson('cgroup');
    expect(s.isolated).toMatchObject({ killed: true, finished: false, exitStatus: 137 });
    expect(s.isolated.allocatedMiB).toBeLessThan(64);
    expect(s.shared).toMatchObject({ killed: false, finished: true, exitStatus: 0, allocatedMiB: 64 });
    expect(changes(s)).toEqual([`+linux.resources.memory {"limit":${32 << 20},"swap":${32 << 20}}`]);
  });

  it('caps: sethostname is EPERM without CAP_SYS_ADMIN and done with it', () => {
    const s = lesson('caps');
    expect(s.isolated).toEqual({ capSysAdmin: false, sethostname: 'EPERM', hostname: 'husk-demo' });
    expect(s.shared).toEqual({ capSysAdmin: true, sethostname: 'ok', hostname: 'renamed' });
    expect(changes(s).sort()).toEqual(['bounding', 'effective', 'permitted'].map((set) => `-process.capabilities.${set}[] "CAP_SYS_ADMIN"`));
  });

  it('seccomp: keyctl is EPERM under the filter and done without', () => {
    const s = lesson('seccomp');
    expect(s.isolated).toEqual({ keyctl: 'EPERM', seccompMode: 2 });
    expect(s.shared).toEqual({ keyctl: 'ok', seccompMode: 0 });
    expect(s.config.map((c) => `${c.side} ${c.path}`)).toEqual(['isolated linux.seccomp']);
  });

  it('overlay: the write lands in the upper dir and the lower is unchanged; without, in the lower', () => {
    const s = lesson('overlay');
    expect(s.isolated).toEqual({ inside: ['from-the-image', 'written-inside'], lower: ['from-the-image'], upper: ['written-inside'] });
    expect(s.shared).toEqual({ inside: ['from-the-image', 'written-inside'], lower: ['from-the-image', 'written-inside'], upper: [] });
    expect(s.config.map((c) => `${c.side} ${c.path} ${(c.value as { type: string }).type}`).sort())
      .toEqual(['isolated mounts[] overlay', 'shared mounts[] bind']);
  });

  it('prints two columns, the config.json lines and the kernel\'s part, and leaves nothing behind', async () => {
    const before = demoDirs();
    const res = rt(['demo', 'pid']);
    expect(res.status, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toMatch(/^husk demo pid: /);
    expect(lines).toContainEqual(expect.stringMatching(/^  with a pid namespace +without \(the host's\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^  its own pid: 1 +its own pid: \d{2,}$/));
    expect(lines).toContain('    + linux.namespaces[]: {"type":"pid"}');
    expect(res.stdout).toMatch(/clone\(CLONE_NEWPID\)/);
    expect(demoDirs()).toEqual(before);
    await expectNothingLeft();
  });
});
