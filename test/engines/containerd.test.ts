/*
 * containerd (1.6, through containerd-shim-runc-v2) with husk and with runc, side by side,
 * driven with ctr. The test starts its own containerd: root, state and sockets in this file's
 * workspace, the CRI plugin off. `ctr run --runc-binary W` sets the runc shim's BinaryName
 * option (what a containerd config or a Kubernetes RuntimeClass does), `--runc-root` its Root.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import {
  IMAGE, RUNTIMES, Workspace, buildImage, explain, frozen, median, need, printTimings, recordTiming, requireRoot, run, runOnTerminal,
  LINGER, scenarios, yieldToRunner, waitFor, type Daemon, type Result, type RuntimeName,
  ENGINE_WAIT_MS,
} from './setup';

requireRoot();

const ENGINE = 'containerd';
const NAMESPACE = 'husk-engines';
let ws: Workspace;
let ctrBinary: string;
let address: string;
let containerd: Daemon;

function ctr(args: string[], opts: { timeoutMs?: number; terminal?: boolean } = {}): Result {
  const argv = [ctrBinary, '--address', address, '--namespace', NAMESPACE, ...args];
  return opts.terminal ? runOnTerminal(argv, { timeoutMs: opts.timeoutMs }) : run(argv, { timeoutMs: opts.timeoutMs });
}

/** `ctr run` options that select the runtime: the wrapper as the shim's runc binary. */
function runtimeArgs(rt: RuntimeName): string[] {
  return ['--runc-binary', ws.wrappers.get(rt)!.path, '--runc-root', ws.path(`state-${rt}`), '--fifo-dir', ws.path('fifo')];
}

function ok(res: Result): Result {
  expect(res.status, explain(res)).toBe(0);
  return res;
}

/** The task's pid and status as `ctr task ls` shows them, or undefined when there is no task. */
function task(id: string): { pid: number; status: string } | undefined {
  for (const line of ok(ctr(['task', 'ls'])).stdout.split('\n').slice(1)) {
    const [name, pid, status] = line.trim().split(/\s+/);
    if (name === id) return { pid: Number(pid), status };
  }
  return undefined;
}

beforeAll(async () => {
  ws = new Workspace(ENGINE);
  ws.cgroupMarkers.push(NAMESPACE);
  ctrBinary = need('ctr');
  need('containerd-shim-runc-v2');
  for (const rt of RUNTIMES) ws.wrapper(rt);
  ws.mkdir('fifo');
  address = ws.path('containerd.sock');
  const config = ws.path('containerd.toml');
  fs.writeFileSync(
    config,
    [
      'version = 2',
      `root = ${JSON.stringify(ws.mkdir('root'))}`,
      `state = ${JSON.stringify(ws.mkdir('state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(address)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
      '[debug]',
      `  address = ${JSON.stringify(ws.path('containerd-debug.sock'))}`,
      '  level = "info"',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(ws.mkdir('opt'))}`,
      '',
    ].join('\n'),
  );
  containerd = ws.startDaemon('containerd', [need('containerd'), '--config', config]);
  await containerd.waitReady(() => fs.existsSync(address) && ctr(['version'], { timeoutMs: 10_000 }).status === 0);
  ok(ctr(['images', 'import', buildImage(ws)]));
}, 600_000);

afterAll(async () => {
  if (!ws) return;
  try {
    printTimings(ENGINE);
  } finally {
    const problems = await ws.teardown(async () => {
      if (!containerd) return;
      for (const line of ctr(['task', 'ls', '--quiet']).stdout.split('\n').filter(Boolean)) {
        ctr(['task', 'kill', '--signal', 'SIGKILL', '--all', line]);
        await yieldToRunner();
        ctr(['task', 'delete', '--force', line]);
      }
      await yieldToRunner();
      for (const line of ctr(['containers', 'ls', '--quiet']).stdout.split('\n').filter(Boolean)) ctr(['containers', 'delete', line]);
      ctr(['images', 'rm', IMAGE]);
      ctr(['content', 'prune', 'references']);
      ctr(['namespaces', 'remove', NAMESPACE]);
    });
    if (problems.length) throw new Error(`containerd test left things behind:\n  ${problems.join('\n  ')}\ncontainerd's log:\n${containerd?.logTail()}`);
  }
}, 600_000);

const scenario = scenarios(ENGINE, () => ws);
const id = (rt: RuntimeName, what: string) => `${what}-${rt}`;

async function removeContainer(name: string): Promise<void> {
  if (task(name)) {
    ctr(['task', 'kill', '--signal', 'SIGKILL', '--all', name]);
    await waitFor(`task ${name} to stop`, () => task(name)?.status !== 'RUNNING', ENGINE_WAIT_MS).catch(() => undefined);
    ctr(['task', 'delete', '--force', name]);
  }
  ctr(['containers', 'delete', name]);
}

scenario(
  'ctr run --rm: output and exit status pass through',
  (rt, w) => {
    const hello = ok(ctr(['run', '--rm', ...runtimeArgs(rt), IMAGE, id(rt, 'hello'), '/probe', 'echo', 'hello from', rt, ...LINGER]));
    expect(hello.stdout).toBe(`hello from ${rt}\n`);
    const failing = ctr(['run', '--rm', ...runtimeArgs(rt), IMAGE, id(rt, 'exit'), '/probe', 'exit', '5']);
    expect(failing.status, explain(failing)).toBe(5);
    const create = w.calls().find((c) => c.verb === 'create');
    expect(create, w.report()).toBeDefined();
    expect(create!.argv).toEqual(expect.arrayContaining(['--log-format', 'json']));
  },
  async (rt) => {
    await removeContainer(id(rt, 'hello'));
    await removeContainer(id(rt, 'exit'));
  },
);

scenario(
  'ctr run --rm -t: the process has a terminal (create --console-socket)',
  (rt, w) => {
    const res = ok(ctr(['run', '--rm', '--tty', ...runtimeArgs(rt), IMAGE, id(rt, 'tty'), '/probe', 'tty', ...LINGER], { terminal: true }));
    const line = /\{"stdin".*\}/.exec(res.stdout);
    expect(line, explain(res)).not.toBeNull();
    expect(JSON.parse(line![0])).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true, sid: 1 });
    expect(w.calls().find((c) => c.verb === 'create')?.argv).toContain('--console-socket');
  },
  (rt) => removeContainer(id(rt, 'tty')),
);

scenario(
  'ctr run --rm true, 5 times (timed)',
  (rt) => {
    const times = [0, 1, 2, 3, 4].map(() => ok(ctr(['run', '--rm', ...runtimeArgs(rt), IMAGE, id(rt, 'true'), '/probe', 'exit', '0'])).ms);
    recordTiming(ENGINE, 'ctr run --rm true: median of 5', rt, median(times));
  },
  (rt) => removeContainer(id(rt, 'true')),
);

scenario(
  'ctr run -d, task exec, exec -t, ps, pause, resume, kill --all, delete',
  async (rt) => {
    const name = id(rt, 'detached');
    const output = ws.path(`${name}.out`);
    fs.rmSync(output, { force: true });
    ok(ctr(['run', '--detach', '--log-uri', `file://${output}`, ...runtimeArgs(rt), IMAGE, name, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => fs.existsSync(output) && fs.readFileSync(output, 'utf8').includes('ready'), ENGINE_WAIT_MS);
    const init = task(name);
    expect(init?.status).toBe('RUNNING');

    const fifo = ['--fifo-dir', ws.path('fifo')];
    const exec = ok(ctr(['task', 'exec', ...fifo, '--exec-id', 'echo', name, '/probe', 'echo', 'in', 'exec', ...LINGER]));
    expect(exec.stdout).toBe('in exec\n');
    const failing = ctr(['task', 'exec', ...fifo, '--exec-id', 'exit', name, '/probe', 'exit', '4']);
    expect(failing.status, explain(failing)).toBe(4);
    const env = ok(ctr(['task', 'exec', ...fifo, '--exec-id', 'env', '--cwd', '/tmp', name, '/probe', 'cwd', ...LINGER]));
    expect(env.stdout).toBe('/tmp\n');
    const missing = ctr(['task', 'exec', ...fifo, '--exec-id', 'missing', name, '/no/such/command']);
    expect(missing.status, explain(missing)).not.toBe(0);
    expect(missing.stderr, explain(missing)).toMatch(/OCI runtime exec failed: .*exec: "\/no\/such\/command"/);

    // exec -t: ctr wants a terminal of its own; the process gets one as its controlling terminal.
    const tty = ok(ctr(['task', 'exec', ...fifo, '--tty', '--exec-id', 'tty', name, '/probe', 'tty', ...LINGER], { terminal: true }));
    const line = /\{"stdin".*\}/.exec(tty.stdout);
    expect(line, explain(tty)).not.toBeNull();
    expect(JSON.parse(line![0])).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true });

    // A second process that stays: ps lists both.
    ok(ctr(['task', 'exec', ...fifo, '--detach', '--exec-id', 'sleeper', name, '/probe', 'sleep', 'inf']));
    const pids = await waitFor('ps to list two processes', () => {
      const ps = ok(ctr(['task', 'ps', name]));
      const found = ps.stdout.split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0])).filter((n) => n > 0);
      return found.length === 2 ? found : undefined;
    }, ENGINE_WAIT_MS);
    expect(pids).toContain(init!.pid);

    ok(ctr(['task', 'pause', name]));
    expect(task(name)?.status).toBe('PAUSED');
    expect(frozen(init!.pid)).toBe(true);
    ok(ctr(['task', 'resume', name]));
    expect(task(name)?.status).toBe('RUNNING');
    expect(frozen(init!.pid)).toBe(false);

    // kill --all with SIGTERM: the init reports it and exits 0, the sleeper dies of it.
    ok(ctr(['task', 'kill', '--all', name]));
    await waitFor('the task to stop', () => task(name)?.status === 'STOPPED', ENGINE_WAIT_MS);
    // The shim may copy the last output after the task shows STOPPED.
    await waitFor('"signal TERM" in the output', () => fs.readFileSync(output, 'utf8').includes('signal TERM'), ENGINE_WAIT_MS);
    ok(ctr(['task', 'delete', name]));
    ok(ctr(['containers', 'delete', name]));
    expect(task(name)).toBeUndefined();
  },
  (rt) => removeContainer(id(rt, 'detached')),
);

scenario(
  "a command that does not exist: ctr shows the runtime's message from its JSON log",
  (rt) => {
    const missing = ctr(['run', '--rm', ...runtimeArgs(rt), IMAGE, id(rt, 'missing'), '/no/such/command']);
    expect(missing.status, explain(missing)).not.toBe(0);
    // containerd reads the last error of the runtime's log.json into its own error.
    expect(missing.stderr, explain(missing)).toMatch(/OCI runtime create failed: .*exec: "\/no\/such\/command"/);
    expect(missing.stderr.toLowerCase()).toContain('no such file or directory');
  },
  (rt) => removeContainer(id(rt, 'missing')),
);

scenario(
  'task exec into a paused task is refused at once; kill --signal USR1 reaches the init',
  async (rt) => {
    const name = id(rt, 'paused');
    const output = ws.path(`${name}.out`);
    fs.rmSync(output, { force: true });
    ok(ctr(['run', '--detach', '--log-uri', `file://${output}`, ...runtimeArgs(rt), IMAGE, name, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => fs.existsSync(output) && fs.readFileSync(output, 'utf8').includes('ready'), ENGINE_WAIT_MS);
    ok(ctr(['task', 'pause', name]));
    // containerd does not check; the runtime must refuse (runc: "cannot exec in a paused state").
    const exec = ctr(['task', 'exec', '--fifo-dir', ws.path('fifo'), '--exec-id', 'refused', name, '/probe', 'echo', 'no']);
    expect(exec.signal, explain(exec)).toBeNull();
    expect(exec.status, explain(exec)).not.toBe(0);
    expect(exec.stderr, explain(exec)).toMatch(/paused/i);
    expect(exec.stdout).not.toContain('no');
    ok(ctr(['task', 'resume', name]));

    ok(ctr(['task', 'kill', '--signal', 'SIGUSR1', name]));
    await waitFor('the probe to report USR1', () => fs.readFileSync(output, 'utf8').includes('signal USR1'), ENGINE_WAIT_MS);
    ok(ctr(['task', 'kill', '--signal', 'SIGKILL', name]));
    await waitFor('the task to stop', () => task(name)?.status === 'STOPPED', ENGINE_WAIT_MS);
    ok(ctr(['task', 'delete', name]));
    ok(ctr(['containers', 'delete', name]));
  },
  (rt) => removeContainer(id(rt, 'paused')),
);
