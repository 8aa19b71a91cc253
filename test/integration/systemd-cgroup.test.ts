// --systemd-cgroup on a host whose PID 1 is not systemd (this machine): one clear line, as runc
// refuses with "systemd not running on this host, cannot use systemd cgroups manager", and
// nothing left behind: no container, no cgroup. The driver itself is proven where systemd is
// PID 1, in test/vm/systemd.test.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, isRunc, makeBundle, newId, rt, stateRoot } from './harness';

afterEach(cleanup);

const systemdRunning = fs.existsSync('/run/systemd/system');

describe.skipIf(systemdRunning)('--systemd-cgroup without systemd', () => {
  it.each([['system.slice:husk-test:NAME'], ['']])('cgroupsPath %j: create fails in one line and leaves nothing', (cgroupsPath) => {
    const id = newId('sd');
    const path = cgroupsPath.replace('NAME', id);
    const b = makeBundle({ config: (c) => { if (path) c.linux!.cgroupsPath = path; c.linux!.resources = { pids: { limit: 10 } }; } });
    const res = rt(['--systemd-cgroup', 'create', '--bundle', b.dir, id]);
    expect(res.status).not.toBe(0);
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    if (!isRunc) expect(lines[0]).toBe(`husk: create ${id}: --systemd-cgroup: systemd is not running on this host (no /run/systemd/system); run without --systemd-cgroup to let husk manage the cgroup`);
    else expect(lines[0]).toMatch(/systemd not running on this host/);
    expect(fs.existsSync(`${stateRoot()}/${id}`)).toBe(false);
    // No directory named for it in any hierarchy.
    expect(execFileSync('find', ['/sys/fs/cgroup', '-name', `*${id}*`], { encoding: 'utf8' }).trim()).toBe('');
  });
});
