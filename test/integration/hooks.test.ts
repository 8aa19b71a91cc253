// hooks: each kind runs, in the spec's order, in the right mount namespace, with its args and env,
// and with the container's state on stdin; failing and slow hooks fail the operation cleanly.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, isRunc, makeBundle, newId, rt, state, tempDir, waitFor, waitForStatus, type Spec, expectStatus } from './harness';

afterEach(cleanup);

interface HookRecord {
  name: string;
  /** readlink /proc/self/ns/mnt of the hook. */
  mountNamespace: string;
  /** $HOOK_VAR as the hook saw it (from the hook's env). */
  hookVar: string;
  /** The state JSON the hook read on stdin. */
  state: { ociVersion: string; id: string; status: string; pid?: number; bundle: string; annotations?: Record<string, string> };
}

const HOST_HOOKS = ['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop'] as const;

/**
 * A bundle whose hooks append one line each to a log: NAME, mount namespace, $HOOK_VAR and the
 * state read on stdin. Runtime-namespace hooks are a host shell script; startContainer runs in
 * the container, so it is busybox's sh from the rootfs, writing to the same log bind-mounted at
 * /hooklog.
 */
function hookedBundle(args: string[] = ['echo', 'user process ran']) {
  const logDir = tempDir('hooks-');
  const log = path.join(logDir, 'log');
  const script = path.join(logDir, 'hook.sh');
  fs.writeFileSync(
    script,
    '#!/bin/sh\nstate=$(cat)\nprintf \'%s\\t%s\\t%s\\t%s\\n\' "$1" "$(readlink /proc/self/ns/mnt)" "$HOOK_VAR" "$state" >> ' + log + '\n',
    { mode: 0o755 },
  );
  const env = (name: string) => ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOOK_VAR=env of ${name}`];
  const bundle = makeBundle({
    args,
    busybox: true,
    config: (c) => {
      c.mounts!.push({ destination: '/hooklog', type: 'bind', source: logDir, options: ['rbind', 'rw'] });
      c.hooks = {};
      for (const name of HOST_HOOKS) c.hooks[name] = [{ path: script, args: [script, name], env: env(name) }];
      c.hooks.startContainer = [
        {
          path: '/bin/busybox',
          args: [
            'busybox',
            'sh',
            '-c',
            'state=$(cat); printf \'%s\\t%s\\t%s\\t%s\\n\' startContainer "$(/bin/busybox readlink /proc/self/ns/mnt)" "$HOOK_VAR" "$state" >> /hooklog/log',
          ],
          env: env('startContainer'),
        },
      ];
    },
  });
  const read = (): HookRecord[] =>
    (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name, mountNamespace, hookVar, json] = line.split('\t');
        return { name, mountNamespace, hookVar, state: JSON.parse(json) };
      });
  return { bundle, read, log };
}

describe('hooks that succeed', () => {
  it('run each kind once, in order, in the right mount namespace, with their args, env and the state', async () => {
    const { bundle, read } = hookedBundle();
    const id = newId();

    const create = rt(['create', '--bundle', bundle.dir, id]);
    expectStatus(create, 0);
    expect(create.stderr).toBe('');
    const { pid } = state(id)!;
    const containerMountNamespace = fs.readlinkSync(`/proc/${pid}/ns/mnt`);
    const hostMountNamespace = fs.readlinkSync('/proc/self/ns/mnt');
    // The create hooks ran during create: prestart first (deprecated, but still run), then
    // createRuntime, then createContainer.
    const afterCreate = read().map((r) => r.name);
    expect(afterCreate.slice(0, 3)).toEqual(['prestart', 'createRuntime', 'createContainer']);
    if (isRunc) {
      // runc 1.1 runs poststart at the end of `create`, before the user's program has run
      // (fixed in runc 1.2). The spec runs it after the program started, during `start`.
      expect(afterCreate).toEqual(['prestart', 'createRuntime', 'createContainer', 'poststart']);
    } else {
      expect(afterCreate).toEqual(['prestart', 'createRuntime', 'createContainer']);
    }

    expectStatus(rt(['start', id]), 0);
    // startContainer ran in the container before the user's program; poststart ran before
    // start returned.
    const afterStart = read().map((r) => r.name);
    if (isRunc) {
      expect(afterStart).toEqual(['prestart', 'createRuntime', 'createContainer', 'poststart', 'startContainer']);
    } else {
      expect(afterStart).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart']);
    }
    await waitForStatus(id, 'stopped');
    expect(create.readStdout()).toBe('user process ran\n');
    expect(read().map((r) => r.name)).not.toContain('poststop');

    expectStatus(rt(['delete', id]), 0);
    const records = read();
    expect(records.map((r) => r.name).at(-1)).toBe('poststop');
    expect(records).toHaveLength(6);

    const byName = Object.fromEntries(records.map((r) => [r.name, r])) as Record<string, HookRecord>;
    for (const record of records) {
      expect(record.hookVar, record.name).toBe(`env of ${record.name}`);
      expect(record.state.id, record.name).toBe(id);
      expect(record.state.bundle, record.name).toBe(bundle.dir);
      expect(typeof record.state.ociVersion, record.name).toBe('string');
    }
    // Where each kind runs: the runtime's mount namespace, or the container's.
    for (const name of ['prestart', 'createRuntime', 'poststart', 'poststop']) {
      expect(byName[name].mountNamespace, name).toBe(hostMountNamespace);
    }
    for (const name of ['createContainer', 'startContainer']) {
      expect(byName[name].mountNamespace, name).toBe(containerMountNamespace);
    }
    // The status and pid each kind sees. The pid is the init's as seen from where the hook
    // runs: the host pid for runtime-namespace hooks, 1 inside the container's pid namespace.
    expect(byName.prestart.state).toMatchObject({ status: 'creating', pid });
    expect(byName.createRuntime.state).toMatchObject({ status: 'creating', pid });
    expect(byName.createContainer.state).toMatchObject({ status: 'creating', pid: 1 });
    expect(byName.startContainer.state).toMatchObject({ status: 'created', pid: 1 });
    // runc reports "created" to poststart (it runs it from create); after the program has
    // started, as the spec has it, "running" is right, so either is accepted.
    expect(['created', 'running']).toContain(byName.poststart.state.status);
    expect(byName.poststart.state.pid).toBe(pid);
    expect(byName.poststop.state.status).toBe('stopped');
    // runc leaves pid out of a stopped container's state.
    expect([undefined, 0]).toContain(byName.poststop.state.pid);
  });

  it('pass the annotations in the state', () => {
    const { bundle, read } = hookedBundle();
    bundle.patch((c) => (c.annotations = { 'org.example.hooked': 'yes' }));
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 0);
    for (const record of read()) expect(record.state.annotations, record.name).toEqual({ 'org.example.hooked': 'yes' });
  });

  it('run poststop on delete --force of a running container', () => {
    const { bundle, read } = hookedBundle(['sleep', 'inf']);
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    expect(read().map((r) => r.name)).not.toContain('poststop');
    expectStatus(rt(['delete', '--force', id]), 0);
    const records = read();
    expect(records.at(-1)!.name).toBe('poststop');
    expect(records.at(-1)!.state.status).toBe('stopped');
  });

  it('run every hook of a kind, in the order listed', () => {
    const logDir = tempDir('hooks-');
    const log = path.join(logDir, 'log');
    const script = path.join(logDir, 'hook.sh');
    fs.writeFileSync(script, `#!/bin/sh\ncat > /dev/null\necho "$1" >> ${log}\n`, { mode: 0o755 });
    const bundle = makeBundle({
      args: ['exit', '0'],
      config: (c) => (c.hooks = { createRuntime: ['first', 'second', 'third'].map((n) => ({ path: script, args: ['hook.sh', n] })) }),
    });
    expectStatus(rt(['create', '--bundle', bundle.dir, newId()]), 0);
    expect(fs.readFileSync(log, 'utf8')).toBe('first\nsecond\nthird\n');
  });
});

describe('hooks that fail', () => {
  function failingHook(logDir: string): string {
    const script = path.join(logDir, 'fail.sh');
    fs.writeFileSync(script, '#!/bin/sh\ncat > /dev/null\necho "hook says no" >&2\nexit 3\n', { mode: 0o755 });
    return script;
  }

  it.each(['prestart', 'createRuntime', 'createContainer'])('a failing %s hook makes create fail with 1 and leaves nothing', (kind) => {
    const logDir = tempDir('hooks-');
    const script = failingHook(logDir);
    const bundle = makeBundle({ config: (c) => (c.hooks = { [kind]: [{ path: script }] }) });
    const id = newId();
    const res = rt(['create', '--bundle', bundle.dir, id]);
    expectStatus(res, 1);
    expect(res.stderr).not.toBe('');
    expectStatus(rt(['state', id]), 1);
    expect(rt(['list', '-q']).stdout).toBe('');
    // cleanup() then checks that no process, mount or state entry is left.
  });

  it('a hook past its timeout is killed and create fails', () => {
    const logDir = tempDir('hooks-');
    // A copy of sleep in the test's directory: cleanup() finds it by its command line if the
    // runtime left it running.
    const sleeper = path.join(logDir, 'slow-hook');
    fs.copyFileSync('/bin/sleep', sleeper);
    fs.chmodSync(sleeper, 0o755);
    const bundle = makeBundle({ config: (c) => (c.hooks = { createRuntime: [{ path: sleeper, args: [sleeper, '50'], timeout: 1 }] }) });
    const id = newId();
    const res = rt(['create', '--bundle', bundle.dir, id]);
    expectStatus(res, 1);
    expect(res.stderr).not.toBe('');
    expectStatus(rt(['state', id]), 1);
  });

  it('a failing poststop hook does not stop delete', () => {
    const logDir = tempDir('hooks-');
    const script = failingHook(logDir);
    const bundle = makeBundle({ args: ['exit', '0'], config: (c) => (c.hooks = { poststop: [{ path: script }] }) });
    const id = newId();
    expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
    expectStatus(rt(['delete', '--force', id]), 0);
    expectStatus(rt(['state', id]), 1);
  });

  // The spec: a failing poststart hook is logged as a warning and the lifecycle continues.
  // runc 1.1 instead fails `start` (and `run`) and tears the container down.
  it.skipIf(isRunc)('a failing poststart hook does not stop the container', async () => {
    const logDir = tempDir('hooks-');
    const script = failingHook(logDir);
    const bundle = makeBundle({ args: ['signals', '0'], config: (c: Spec) => (c.hooks = { poststart: [{ path: script }] }) });
    const id = newId();
    const create = rt(['create', '--bundle', bundle.dir, id]);
    expectStatus(create, 0);
    expectStatus(rt(['start', id]), 0);
    await waitFor('the process to run', () => create.readStdout() === 'ready\n');
    expect(state(id)!.status).toBe('running');
  });
});
