// The lifecycle verbs one at a time: create, start, state, kill, delete, list, ps.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, cleanup, makeBundle, newId, rt, state, waitFor, waitForStatus, expectStatus } from './harness';

afterEach(cleanup);

describe('create, start, kill, delete', () => {
  it('walks created -> running -> stopped -> gone', async () => {
    const bundle = makeBundle({ args: ['echo', 'started', 'then', 'signals', '0'] });
    const id = newId();

    const create = rt(['create', '--bundle', bundle.dir, id]);
    expectStatus(create, 0);
    expect(create.stderr).toBe('');
    const created = state(id)!;
    expect(created.status).toBe('created');
    expect(created.pid).toBeGreaterThan(0);
    expect(alive(created.pid)).toBe(true);
    // The init waits for `start`: the user's program has not run yet.
    expect(create.readStdout()).toBe('');

    const start = rt(['start', id]);
    expectStatus(start, 0);
    expect(start.stderr).toBe('');
    await waitFor('the process to start', () => create.readStdout() === 'started\nready\n');
    const running = state(id)!;
    expect(running.status).toBe('running');
    expect(running.pid).toBe(created.pid);

    expectStatus(rt(['kill', id]), 0);
    const stopped = await waitForStatus(id, 'stopped');
    // The default signal is TERM.
    expect(create.readStdout()).toBe('started\nready\nsignal TERM\n');
    expect(stopped.pid).toBe(0);
    expect(alive(created.pid)).toBe(false);

    const del = rt(['delete', id]);
    expectStatus(del, 0);
    expect(del.stderr).toBe('');
    const after = rt(['state', id]);
    expectStatus(after, 1);
    expect(after.stdout).toBe('');
  });

  it.each([['KILL'], ['SIGKILL'], ['9'], ['TERM'], ['SIGTERM'], ['15']])('kill accepts the signal as %s', async (signal) => {
    const bundle = makeBundle({ args: ['signals', '0'] });
    const id = newId();
    const run = expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    // A pid namespace's init gets a signal from outside only once it handles it: wait for that.
    await waitFor('the probe to handle signals', () => run.readStdout().includes('ready\n'));
    const { pid } = state(id)!;
    const kill = rt(['kill', id, signal]);
    expectStatus(kill, 0);
    expect(kill.stderr).toBe('');
    await waitForStatus(id, 'stopped');
    expect(alive(pid)).toBe(false);
  });

  it('shows stopped once a started process exits on its own', async () => {
    const bundle = makeBundle({ args: ['exit', '0'] });
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    expectStatus(rt(['start', id]), 0);
    const stopped = await waitForStatus(id, 'stopped');
    expect(stopped.pid).toBe(0);
    expectStatus(rt(['delete', id]), 0);
  });

  it('refuses to delete a running container without --force, which keeps running', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    const { pid } = state(id)!;
    const del = rt(['delete', id]);
    expectStatus(del, 1);
    expect(del.stderr).not.toBe('');
    expect(state(id)!.status).toBe('running');
    expect(alive(pid)).toBe(true);
  });

  it('delete --force kills and removes a running container', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    const { pid } = state(id)!;
    const del = rt(['delete', '--force', id]);
    expectStatus(del, 0);
    expect(del.stderr).toBe('');
    expectStatus(rt(['state', id]), 1);
    expect(alive(pid)).toBe(false);
  });

  it('delete --force removes a created container that never started', () => {
    const bundle = makeBundle({ args: ['echo', 'never'] });
    const id = newId();
    const create = rt(['create', '--bundle', bundle.dir, id]);
    expectStatus(create, 0);
    const { pid } = state(id)!;
    expectStatus(rt(['delete', '--force', id]), 0);
    expectStatus(rt(['state', id]), 1);
    expect(alive(pid)).toBe(false);
    expect(create.readStdout()).toBe('');
  });

  it('refuses to start a container twice, or a stopped one, and to kill a stopped one', async () => {
    const bundle = makeBundle({ args: ['signals', '0'] });
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    expectStatus(rt(['start', id]), 0);
    expectStatus(rt(['start', id]), 1);
    expect(state(id)!.status).toBe('running');
    expectStatus(rt(['kill', id, 'KILL']), 0);
    await waitForStatus(id, 'stopped');
    expectStatus(rt(['start', id]), 1);
    expectStatus(rt(['kill', id, 'KILL']), 1);
    expect(state(id)!.status).toBe('stopped');
  });

  it('refuses a second container with the same id and leaves the first alone', () => {
    const bundle = makeBundle();
    const other = makeBundle();
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    const first = state(id)!;
    const again = rt(['create', '--bundle', other.dir, id]);
    expectStatus(again, 1);
    expect(again.stderr).not.toBe('');
    const after = state(id)!;
    expect(after).toEqual(first);
    expect(alive(first.pid)).toBe(true);
  });
});

describe('--pid-file', () => {
  it('holds the init pid, the same as state.pid', () => {
    const bundle = makeBundle();
    const id = newId();
    const pidFile = path.join(bundle.dir, 'init.pid');
    expectStatus(rt(['create', '--bundle', bundle.dir, '--pid-file', pidFile, id]), 0);
    const { pid } = state(id)!;
    // runc writes the bare number without a newline.
    expect(fs.readFileSync(pidFile, 'utf8')).toBe(String(pid));
  });

  it('is relative to the working directory, and works with run -d', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--pid-file', 'run.pid', id], { cwd: bundle.dir }), 0);
    const { pid } = state(id)!;
    expect(fs.readFileSync(path.join(bundle.dir, 'run.pid'), 'utf8').trim()).toBe(String(pid));
  });
});

describe('state', () => {
  it('has exactly the OCI fields with their types', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    const res = rt(['state', id]);
    expectStatus(res, 0);
    const s = JSON.parse(res.stdout);
    expect(Object.keys(s).sort()).toEqual(['bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status']);
    expect(typeof s.ociVersion).toBe('string');
    expect(s.id).toBe(id);
    expect(Number.isInteger(s.pid)).toBe(true);
    expect(s.status).toBe('created');
    expect(s.bundle).toBe(bundle.dir);
    expect(s.rootfs).toBe(bundle.rootfs);
    expect(typeof s.created).toBe('string');
    // RFC 3339 with fractional seconds in UTC, like "2024-01-02T03:04:05.123456789Z".
    expect(s.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Number.isNaN(Date.parse(s.created))).toBe(false);
    // `state` leaves owner empty (only `list` fills it in).
    expect(s.owner).toBe('');
  });

  it('includes the annotations when the config has some', () => {
    const bundle = makeBundle({ config: (c) => (c.annotations = { 'org.example.key': 'value', other: '' }) });
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    const s = JSON.parse(rt(['state', id]).stdout);
    expect(Object.keys(s).sort()).toEqual(['annotations', 'bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status']);
    expect(s.annotations).toEqual({ 'org.example.key': 'value', other: '' });
  });

  it('records the bundle as an absolute path when given a relative one', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['create', '--bundle', path.basename(bundle.dir), id], { cwd: path.dirname(bundle.dir) }), 0);
    const s = state(id)!;
    expect(s.bundle).toBe(bundle.dir);
    expect(s.rootfs).toBe(bundle.rootfs);
  });

  it('fails with exit 1 for an unknown container', () => {
    const res = rt(['state', newId()]);
    expectStatus(res, 1);
    expect(res.stdout).toBe('');
    expect(res.stderr).not.toBe('');
  });
});

describe('list', () => {
  it('shows every container in the table, as JSON, and as bare ids', () => {
    const a = makeBundle();
    const b = makeBundle();
    const idA = newId('a');
    const idB = newId('b');
    expectStatus(rt(['create', '--bundle', a.dir, idA]), 0);
    expectStatus(rt(['run', '-d', '--bundle', b.dir, idB]), 0);
    const pidA = state(idA)!.pid;
    const pidB = state(idB)!.pid;

    const table = rt(['list']);
    expectStatus(table, 0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s+/)).toEqual(['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']);
    const rows = lines.slice(1).map((line) => line.split(/\s+/));
    expect(rows).toHaveLength(2);
    const rowA = rows.find((r) => r[0] === idA)!;
    const rowB = rows.find((r) => r[0] === idB)!;
    expect(rowA.slice(0, 4)).toEqual([idA, String(pidA), 'created', a.dir]);
    expect(rowB.slice(0, 4)).toEqual([idB, String(pidB), 'running', b.dir]);
    expect(rowA[5]).toBe('root');

    const json = rt(['list', '--format', 'json']);
    expectStatus(json, 0);
    const entries = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(entries).toHaveLength(2);
    const entryA = entries.find((e) => e.id === idA)!;
    expect(Object.keys(entryA).sort()).toEqual(['bundle', 'created', 'id', 'ociVersion', 'owner', 'pid', 'rootfs', 'status']);
    expect(entryA).toMatchObject({ id: idA, pid: pidA, status: 'created', bundle: a.dir, rootfs: a.rootfs, owner: 'root' });
    expect(entries.find((e) => e.id === idB)).toMatchObject({ id: idB, pid: pidB, status: 'running', owner: 'root' });
    expect(entryA.created).toBe(state(idA)!.created);

    const quiet = rt(['list', '-q']);
    expectStatus(quiet, 0);
    expect(quiet.stdout.trimEnd().split('\n').sort()).toEqual([idA, idB].sort());
  });

  it('shows the header only, JSON null, and nothing when there are no containers', () => {
    const table = rt(['list']);
    expectStatus(table, 0);
    expect(table.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(table.stdout.split(/\s+/).filter(Boolean)).toEqual(['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']);
    // runc prints a JSON null (not []) for no containers; a drop-in prints the same.
    const json = rt(['list', '--format', 'json']);
    expectStatus(json, 0);
    expect(JSON.parse(json.stdout)).toBeNull();
    const quiet = rt(['list', '-q']);
    expectStatus(quiet, 0);
    expect(quiet.stdout).toBe('');
  });

  it('shows a container that exited as stopped with pid 0', async () => {
    const bundle = makeBundle({ args: ['exit', '0'] });
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    await waitForStatus(id, 'stopped');
    const entries = JSON.parse(rt(['list', '--format', 'json']).stdout);
    expect(entries).toEqual([expect.objectContaining({ id, pid: 0, status: 'stopped' })]);
  });
});

describe('ps', () => {
  it('lists the init pid, as JSON and in the ps table', () => {
    const bundle = makeBundle();
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    const { pid } = state(id)!;

    const json = rt(['ps', '--format', 'json', id]);
    expectStatus(json, 0);
    expect(JSON.parse(json.stdout)).toEqual([pid]);

    const table = rt(['ps', id]);
    expectStatus(table, 0);
    const lines = table.stdout.trimEnd().split('\n');
    const column = lines[0].trim().split(/\s+/).indexOf('PID');
    expect(column).toBeGreaterThanOrEqual(0);
    const pids = lines.slice(1).map((line) => Number(line.trim().split(/\s+/)[column]));
    expect(pids).toEqual([pid]);
  });

  it('fails for an unknown container', () => {
    expectStatus(rt(['ps', newId()]), 1);
  });
});

describe('kill --all', () => {
  it('signals every process of the container, not just the init', async () => {
    // Without a pid namespace, killing the init alone would leave its child running; --all
    // reaches the child too. The shell starts a child and then becomes the init's program.
    const bundle = makeBundle({
      busybox: true,
      config: (c) => {
        c.process!.args = ['/bin/sh', '-c', '/probe sleep inf & exec /probe sleep inf'];
        c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'pid');
      },
    });
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    const pids = await waitFor('two processes in the container', () => {
      const res = rt(['ps', '--format', 'json', id]);
      const list = res.status === 0 ? (JSON.parse(res.stdout) as number[]) : [];
      return list.length === 2 ? list : undefined;
    });

    const kill = rt(['kill', '--all', id, 'KILL']);
    expectStatus(kill, 0);
    await waitForStatus(id, 'stopped');
    await waitFor(`processes ${pids.join(', ')} to die`, () => pids.every((pid) => !alive(pid)));
  });
});
