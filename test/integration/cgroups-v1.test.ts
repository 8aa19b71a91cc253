/*
 * Resource limits on a cgroup v1 host (this machine is hybrid: v1 hierarchies for every
 * resource controller, cgroup2 at /sys/fs/cgroup/unified with hugetlb only), through the real
 * binary with the probe inside: each limit is seen to bite from inside the container, and the
 * cgroup's life (pause, update, kill --all, delete) is seen in the host's cgroup files.
 * The same tests run against runc (HUSK_TEST_RUNTIME=$(command -v runc)), which supports such
 * hosts; cgroup v2 is proven in the VM (test/vm/checks/cgroups-v2.sh).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  expectStatus,
  isHusk,
  makeBundle,
  newId,
  rt,
  rtSpawn,
  state,
  waitFor,
  waitForStatus,
} from './harness';

afterEach(cleanup);

const MiB = 1024 * 1024;

/** cgroup v1 controller -> its mount point, from this process's mountinfo. */
function v1Mounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const [fstype, , options] = right.split(' ');
    if (fstype !== 'cgroup') continue;
    const mountPoint = left.split(' ')[4];
    for (const o of options.split(',')) if (!out.has(o)) out.set(o, mountPoint);
  }
  return out;
}

const mounts = v1Mounts();
const v1Host = mounts.has('memory') && mounts.has('pids') && mounts.has('freezer');

/** The container's cgroup directory for each v1 controller, from its init's /proc/PID/cgroup. */
function cgroupDirs(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') {
      const unified = [...fs.readFileSync('/proc/self/mountinfo', 'utf8').matchAll(/^\S+ \S+ \S+ \S+ (\S+) .* - cgroup2 /gm)][0];
      if (unified) out.set('', path.join(unified[1], m[2]));
      continue;
    }
    for (const c of m[1].split(',')) {
      const mountPoint = mounts.get(c);
      if (mountPoint) out.set(c, path.join(mountPoint, m[2]));
    }
  }
  return out;
}

/** Where both runtimes put a container's cgroup by default: under their own cgroup (ours). */
function defaultDir(controller: string, id: string): string {
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => /^\d+:([^:]*):(.*)$/.exec(l)).find((m) => m && m[1].split(',').includes(controller))!;
  return path.join(mounts.get(controller)!, own[2], id);
}

function readCgroupFile(pid: number, controller: string, file: string): string {
  return fs.readFileSync(path.join(cgroupDirs(pid).get(controller)!, file), 'utf8');
}

/**
 * Creates a container with these resources, its init waiting in its cgroups, and returns its
 * id and init pid. A test that must look before the process runs (or ends) starts it itself.
 */
function createWith(args: string[], resources: Record<string, unknown>, extra?: (c: any) => void) {
  const bundle = makeBundle({
    args,
    config: (c) => {
      c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }], ...resources };
      extra?.(c);
    },
  });
  const id = newId('cg');
  expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
  const pid = state(id)!.pid;
  return { id, pid, bundle };
}

/** Starts a detached container with these resources and returns its id and init pid. */
function runDetached(args: string[], resources: Record<string, unknown>, extra?: (c: any) => void) {
  const created = createWith(args, resources, extra);
  expectStatus(rt(['start', created.id]), 0);
  return created;
}

/** user+system clock ticks of a process, from /proc/PID/stat. */
function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

describe.skipIf(!v1Host)('cgroup v1 limits, seen from inside the container', () => {
  it('the container sees its memory limit in its own memory cgroup', () => {
    const bundle = makeBundle({
      args: ['cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes'],
      config: (c) => (c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 64 * MiB } }),
    });
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    expect(res.stdout).toBe(`${64 * MiB}\n`);
  });

  it('a memory limit OOM-kills the hog, and memory.oom_control counts the kill', async () => {
    const { id } = runDetached(['hog-memory', '512'], { memory: { limit: 32 * MiB, swap: 32 * MiB } });
    await waitForStatus(id, 'stopped');
    const memoryDir = defaultDir('memory', id);
    expect(fs.readFileSync(path.join(memoryDir, 'memory.oom_control'), 'utf8')).toMatch(/^oom_kill [1-9]/m);
    expectStatus(rt(['delete', id]), 0);
  });

  it('the foreground run of an OOM-killed process exits 137 before the hog is done', () => {
    const bundle = makeBundle({
      args: ['hog-memory', '512'],
      config: (c) => (c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }], memory: { limit: 32 * MiB, swap: 32 * MiB } }),
    });
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 137);
    expect(res.stdout).not.toContain('done');
  });

  it('pids.max stops the fork bomb at the limit', () => {
    const bundle = makeBundle({
      args: ['fork-bomb', '50'],
      config: (c) => (c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 10 } }),
    });
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    // The probe itself is one of the 10.
    expect(res.stdout).toBe('forked 9\nfailed at 9: EAGAIN\n');
  });

  it('a CPU quota throttles the spinning process (cpu.stat nr_throttled)', async () => {
    // Looked at before the start: the spin lasts one second of wall-clock time.
    const { id, pid } = createWith(['spin', '1'], { cpu: { quota: 10000, period: 100000 } });
    const cpuDir = cgroupDirs(pid).get('cpu')!;
    expect(fs.readFileSync(path.join(cpuDir, 'cpu.cfs_quota_us'), 'utf8')).toBe('10000\n');
    expectStatus(rt(['start', id]), 0);
    await waitForStatus(id, 'stopped');
    const throttled = Number(/^nr_throttled (\d+)$/m.exec(fs.readFileSync(path.join(cpuDir, 'cpu.stat'), 'utf8'))![1]);
    expect(throttled).toBeGreaterThan(0);
    expectStatus(rt(['delete', id]), 0);
  });

  it('device rules deny a device that is not allowed, and allow it once listed', () => {
    const kmsg = { path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 };
    const denied = makeBundle({ args: ['write', '/dev/kmsg', 'husk cgroup test: denied\n'], config: (c) => (c.linux!.devices = [kmsg]) });
    const res = expectStatus(rt(['run', '--bundle', denied.dir, newId()]), 1);
    expect(res.stderr).toContain('write /dev/kmsg: EPERM');
    const allowed = makeBundle({
      args: ['write', '/dev/kmsg', 'husk cgroup test: allowed\n'],
      config: (c) => {
        c.linux!.devices = [kmsg];
        c.linux!.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'w' }] };
      },
    });
    expectStatus(rt(['run', '--bundle', allowed.dir, newId()]), 0);
  });
});

describe.skipIf(!v1Host)('the cgroup over the container\'s life', () => {
  it('pause freezes every process (state paused, no CPU time) and resume thaws it', async () => {
    const { id, pid } = runDetached(['spin', '120'], {});
    await waitFor('the probe to spin', () => cpuTicks(pid) > 0);
    expectStatus(rt(['pause', id]), 0);
    expect(state(id)!.status).toBe('paused');
    expect(readCgroupFile(pid, 'freezer', 'freezer.state')).toBe('FROZEN\n');
    const frozenAt = cpuTicks(pid);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(cpuTicks(pid)).toBe(frozenAt);
    expect(rt(['pause', id]).stderr).toContain('container not running');
    expectStatus(rt(['resume', id]), 0);
    expect(state(id)!.status).toBe('running');
    expect(readCgroupFile(pid, 'freezer', 'freezer.state')).toBe('THAWED\n');
    await waitFor('the probe to spin again', () => cpuTicks(pid) > frozenAt);
    expect(rt(['resume', id]).stderr).toContain('container not paused');
    expectStatus(rt(['delete', '--force', id]), 0);
  });

  it('delete --force kills a paused container and removes its cgroups', async () => {
    const { id, pid } = runDetached(['sleep', 'inf'], { pids: { limit: 20 } });
    const dirs = [...cgroupDirs(pid).values()];
    expectStatus(rt(['pause', id]), 0);
    expectStatus(rt(['delete', '--force', id]), 0);
    for (const dir of dirs) expect(fs.existsSync(dir), dir).toBe(false);
  });

  it('kill KILL stops a paused container (the frozen init is thawed to die)', async () => {
    const { id } = runDetached(['sleep', 'inf'], {});
    expectStatus(rt(['pause', id]), 0);
    expectStatus(rt(['kill', id, 'KILL']), 0);
    await waitForStatus(id, 'stopped');
    expectStatus(rt(['delete', id]), 0);
  });

  it('update changes pids.max and the memory limit of a running container (flags and --resources -)', () => {
    const { id, pid } = runDetached(['sleep', 'inf'], { pids: { limit: 20 }, memory: { limit: 64 * MiB } });
    expect(readCgroupFile(pid, 'pids', 'pids.max')).toBe('20\n');
    expectStatus(rt(['update', '--pids-limit', '42', id]), 0);
    expect(readCgroupFile(pid, 'pids', 'pids.max')).toBe('42\n');
    expectStatus(rt(['update', '--memory', '100M', id]), 0);
    expect(readCgroupFile(pid, 'memory', 'memory.limit_in_bytes')).toBe(`${100 * MiB}\n`);
    expectStatus(rt(['update', '-r', '-', id], { input: JSON.stringify({ pids: { limit: 7 }, cpu: { shares: 512 } }) }), 0);
    expect(readCgroupFile(pid, 'pids', 'pids.max')).toBe('7\n');
    expect(readCgroupFile(pid, 'cpu', 'cpu.shares')).toBe('512\n');
    expectStatus(rt(['delete', '--force', id]), 0);
    expect(rt(['update', '--pids-limit', '5', id]).status).toBe(1);
  });

  it('kill --all signals every process in the cgroup, ps lists them', async () => {
    const bundle = makeBundle({ busybox: true, args: [] });
    bundle.patch((c) => (c.process!.args = ['/bin/sh', '-c', '/probe sleep inf & /probe sleep inf & wait']));
    const id = newId('cg');
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    await waitFor('three processes in the container', () => JSON.parse(rt(['ps', '--format', 'json', id]).stdout).length === 3);
    // TERM does not stop the shell (as the pid namespace's init it ignores signals it has no
    // handler for); the probes die of it, the shell's `wait` returns and the container stops.
    expectStatus(rt(['kill', '--all', id, 'TERM']), 0);
    await waitForStatus(id, 'stopped');
    expectStatus(rt(['delete', id]), 0);
  });

  it('delete removes the container\'s directory in every hierarchy', async () => {
    const { id, pid } = runDetached(['sleep', 'inf'], { memory: { limit: 64 * MiB }, pids: { limit: 20 } });
    const dirs = cgroupDirs(pid);
    expect([...dirs.keys()]).toEqual(expect.arrayContaining(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'name=systemd']));
    for (const dir of dirs.values()) expect(dir.endsWith(`/${id}`), dir).toBe(true);
    expectStatus(rt(['kill', id, 'KILL']), 0);
    await waitForStatus(id, 'stopped');
    expectStatus(rt(['delete', id]), 0);
    for (const dir of dirs.values()) expect(fs.existsSync(dir), dir).toBe(false);
  });

  it('events --stats prints one stats line in runc\'s shape', () => {
    const { id } = runDetached(['sleep', 'inf'], { memory: { limit: 32 * MiB }, pids: { limit: 30 } });
    const stats = JSON.parse(expectStatus(rt(['events', '--stats', id]), 0).stdout);
    expect(stats).toMatchObject({ type: 'stats', id, data: { memory: { usage: { limit: 32 * MiB } }, pids: { current: 1, limit: 30 } } });
    expect(Object.keys(stats.data)).toEqual(['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb', 'intel_rdt', 'network_interfaces']);
    expectStatus(rt(['delete', '--force', id]), 0);
  });

  it('the events stream reports an OOM kill', async () => {
    // The hog starts once the stream is watching (its first stats line): an OOM kill before
    // that would not be reported.
    const { id } = createWith(['hog-memory', '512'], { memory: { limit: 32 * MiB, swap: 32 * MiB } });
    const events = rtSpawn(['events', '--interval', '200ms', id]);
    await events.waitForStdout(`{"type":"stats","id":"${id}"`, 20_000);
    expectStatus(rt(['start', id]), 0);
    await events.waitForStdout(`{"type":"oom","id":"${id}"}`, 20_000);
    await waitForStatus(id, 'stopped');
    expectStatus(rt(['delete', id]), 0);
  });
});

describe.skipIf(!v1Host)('what a cgroup v1 host cannot apply', () => {
  it('refuses cgroup v2 files (linux.resources.unified), naming them, and leaves nothing behind', async () => {
    const bundle = makeBundle({ config: (c) => (c.linux!.resources = { unified: { 'memory.high': '100000000' } }) });
    const id = newId();
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, id]), 1);
    if (isHusk) {
      expect(res.stderr).toBe(
        `husk: run ${id}: config.json: linux.resources.unified: cgroup v2 files cannot be set on this host, whose resource controllers are cgroup v1 (hybrid: cgroup v1 controllers, and cgroup v2 at /sys/fs/cgroup/unified)\n`,
      );
    } else {
      expect(res.stderr).toContain('invalid configuration: cannot use unified on cgroup v1');
    }
    await expectNothingLeft();
  });

  it('a limit the kernel refuses fails create, naming the field, and removes the cgroups', async () => {
    const bundle = makeBundle({ config: (c) => (c.linux!.resources = { cpu: { cpus: '63' } }) });
    const id = newId();
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, id]), 1);
    if (isHusk) expect(res.stderr).toMatch(new RegExp(`^husk: run ${id}: linux.resources.cpu.cpus: write "63" to /sys/fs/cgroup/cpuset/(.*/)?${id}/cpuset.cpus: result too large\\n$`));
    else expect(res.stderr).toContain('cpuset.cpus');
    await expectNothingLeft();
  });
});
