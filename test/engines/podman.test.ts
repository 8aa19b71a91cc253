/*
 * Podman (through conmon) with husk and with runc, side by side. Podman keeps its storage, run
 * state and temporary files in this file's workspace (--root, --runroot, --tmpdir), finds the
 * runtimes by name in a containers.conf of ours ([engine.runtimes] husk = [...], runc = [...]),
 * and passes `--log-format=json --log FILE` to them because both are listed in
 * runtime_supports_json. This machine has no systemd: --cgroup-manager cgroupfs and
 * --events-backend file.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  IMAGE, RUNTIMES, Workspace, buildImage, explain, frozen, memoryLimit, median, need, pidsLimit, printTimings,
  comparableReport, reportDifferences, jsonLine, recordTiming, requireRoot, run, runOnTerminal, scenarios, yieldToRunner, TERMINAL_SIZE, waitFor, type Result, type RuntimeName,
  ENGINE_WAIT_MS,
} from './setup';

requireRoot();

const ENGINE = 'podman';
let ws: Workspace;
let podmanBinary: string;
let globalArgs: string[];
let env: Record<string, string>;

function podman(rt: RuntimeName, args: string[], opts: { timeoutMs?: number; terminal?: boolean; extraFds?: number[] } = {}): Result {
  const argv = [podmanBinary, ...globalArgs, '--runtime', rt, ...args];
  const runOpts = { env, timeoutMs: opts.timeoutMs, extraFds: opts.extraFds };
  return opts.terminal ? runOnTerminal(argv, runOpts) : run(argv, runOpts);
}

function ok(res: Result): Result {
  expect(res.status, explain(res)).toBe(0);
  return res;
}

/** The probe's `tty` JSON line in a command's output (a terminal adds \r\n), or undefined. */
function ttyReport(res: Result): unknown {
  const line = /\{"stdin".*\}/.exec(res.stdout);
  return line ? JSON.parse(line[0]) : undefined;
}

function inspect(rt: RuntimeName, name: string, format: string): string {
  return ok(podman(rt, ['inspect', '--format', format, name])).stdout.trim();
}

beforeAll(() => {
  ws = new Workspace(ENGINE);
  ws.cgroupMarkers.push('libpod_parent', 'libpod-');
  podmanBinary = need('podman');
  need('conmon');
  for (const rt of RUNTIMES) ws.wrapper(rt, { root: ws.mkdir(`state-${rt}`) });
  const conf = ws.path('containers.conf');
  fs.writeFileSync(
    conf,
    [
      '[containers]',
      // The session may lack CAP_SYS_RESOURCE: Podman's default rlimits would fail to apply.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      // Podman passes --log-format=json --log FILE only to the runtimes listed here.
      'runtime_supports_json = ["crun", "runc", "husk"]',
      // File locks under --tmpdir instead of /dev/shm/libpod_lock.
      'lock_type = "file"',
      '[engine.runtimes]',
      ...RUNTIMES.map((rt) => `${rt} = [${JSON.stringify(ws.wrappers.get(rt)!.path)}]`),
      '',
    ].join('\n'),
  );
  env = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: ws.path('storage.conf') };
  fs.writeFileSync(
    env.CONTAINERS_STORAGE_CONF,
    `[storage]\ndriver = "overlay"\nrunroot = ${JSON.stringify(ws.mkdir('runroot'))}\ngraphroot = ${JSON.stringify(ws.mkdir('root'))}\n`,
  );
  globalArgs = [
    '--root', ws.mkdir('root'),
    '--runroot', ws.mkdir('runroot'),
    '--tmpdir', ws.mkdir('tmp'),
    '--network-config-dir', ws.mkdir('networks'),
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--storage-driver', 'overlay',
  ];
  const tarball = buildImage(ws);
  ok(podman('runc', ['load', '--input', tarball]));
}, 600_000);

afterAll(async () => {
  if (!ws) return;
  try {
    printTimings(ENGINE);
  } finally {
    const problems = await ws.teardown(async () => {
      for (const rt of RUNTIMES) {
        podman(rt, ['rm', '--all', '--force', '--time', '0']);
        await yieldToRunner();
      }
      podman('runc', ['rmi', '--all', '--force']);
      await yieldToRunner();
      // Podman's storage keeps its layer store mounted until the last user is gone.
      podman('runc', ['system', 'reset', '--force']);
    });
    if (problems.length) throw new Error(`podman test left things behind:\n  ${problems.join('\n  ')}`);
  }
}, 600_000);

const scenario = scenarios(ENGINE, () => ws);

scenario('run --rm: output and exit status pass through', (rt, w) => {
  const hello = ok(podman(rt, ['run', '--rm', '--network', 'none', IMAGE, '/probe', 'echo', 'hello from', rt]));
  expect(hello.stdout).toBe(`hello from ${rt}\n`);
  const failing = podman(rt, ['run', '--rm', '--network', 'none', IMAGE, '/probe', 'exit', '3']);
  expect(failing.status, explain(failing)).toBe(3);
  // Podman called the runtime as containers.conf says, with the JSON log.
  const create = w.calls().find((c) => c.verb === 'create');
  expect(create, w.report()).toBeDefined();
  expect(create!.argv).toContain('--log-format=json');
  expect(create!.logFile).toBeTruthy();
});

scenario('run --rm true, 5 times (timed)', (rt) => {
  const times = [0, 1, 2, 3, 4].map(() => ok(podman(rt, ['run', '--rm', '--network', 'none', IMAGE, '/probe', 'exit', '0'])).ms);
  recordTiming(ENGINE, 'run --rm true: median of 5', rt, median(times));
});

const DETACHED = (rt: RuntimeName) => `husk-engines-${rt}-detached`;

scenario(
  'run -d, exec, exec -t, pause, unpause, stop, rm',
  async (rt) => {
    const name = DETACHED(rt);
    ok(podman(rt, ['run', '--detach', '--name', name, '--network', 'none', IMAGE, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => podman(rt, ['logs', name]).stdout.includes('ready'), ENGINE_WAIT_MS);
    expect(inspect(rt, name, '{{.State.Status}}')).toBe('running');

    const exec = ok(podman(rt, ['exec', name, '/probe', 'echo', 'in', 'exec']));
    expect(exec.stdout).toBe('in exec\n');
    const failing = podman(rt, ['exec', name, '/probe', 'exit', '4']);
    expect(failing.status, explain(failing)).toBe(4);
    const env = ok(podman(rt, ['exec', '--env', 'FROM_EXEC=yes', '--workdir', '/tmp', name, '/probe', 'env', 'then', 'cwd']));
    expect(env.stdout).toContain('FROM_EXEC=yes\n');
    expect(env.stdout).toMatch(/\/tmp\n$/);
    // A command that does not exist: 127, with the runtime's message (from exec's JSON log).
    const missing = podman(rt, ['exec', name, '/no/such/command']);
    expect(missing.status, explain(missing)).toBe(127);
    expect(missing.stderr, explain(missing)).toMatch(/exec: "\/no\/such\/command"/);

    // exec -t: the process gets a terminal of its own, its controlling terminal. (Its size comes
    // from conmon once it has the terminal, racing with the process: not checked here.)
    const tty = ok(podman(rt, ['exec', '--tty', name, '/probe', 'tty'], { terminal: true }));
    expect(ttyReport(tty), explain(tty)).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true });

    const pid = Number(inspect(rt, name, '{{.State.Pid}}'));
    expect(pid).toBeGreaterThan(0);
    ok(podman(rt, ['pause', name]));
    expect(inspect(rt, name, '{{.State.Status}}')).toBe('paused');
    expect(frozen(pid)).toBe(true);
    ok(podman(rt, ['unpause', name]));
    expect(inspect(rt, name, '{{.State.Status}}')).toBe('running');
    expect(frozen(pid)).toBe(false);
    expect(ok(podman(rt, ['exec', name, '/probe', 'echo', 'thawed'])).stdout).toBe('thawed\n');

    // stop: SIGTERM reaches the probe, which reports it and exits 0 (well before the 60 s KILL).
    ok(podman(rt, ['stop', '--time', '60', name]));
    expect(inspect(rt, name, '{{.State.Status}}')).toBe('exited');
    expect(inspect(rt, name, '{{.State.ExitCode}}')).toBe('0');
    await waitFor('"signal TERM" in podman logs', () => podman(rt, ['logs', name]).stdout.includes('signal TERM'), ENGINE_WAIT_MS);

    ok(podman(rt, ['rm', name]));
    expect(ok(podman(rt, ['ps', '--all', '--quiet', '--filter', `name=${name}`])).stdout.trim()).toBe('');
  },
  (rt) => {
    podman(rt, ['rm', '--force', '--time', '0', DETACHED(rt)]);
  },
);

scenario("a command that does not exist: exit 127 and the runtime's message from its JSON log", (rt) => {
  const missing = podman(rt, ['run', '--rm', '--network', 'none', IMAGE, '/no/such/command']);
  // Podman maps the runtime's "no such file or directory" to 127, like a shell.
  expect(missing.status, explain(missing)).toBe(127);
  // The runtime's own words (Podman prefixes the runtime's name).
  expect(missing.stderr, explain(missing)).toMatch(new RegExp(`${rt}: .*exec: "/no/such/command"`));
  expect(missing.stderr.toLowerCase()).toContain('no such file or directory');

  const notExecutable = podman(rt, ['run', '--rm', '--network', 'none', IMAGE, '/etc/hostname']);
  // ... and "permission denied" to 126.
  expect(notExecutable.status, explain(notExecutable)).toBe(126);
  expect(notExecutable.stderr.toLowerCase()).toContain('permission denied');
});

// The size is the client's: conmon sets it between create and start.
scenario('run -t: the process has a terminal of the client\'s size (create --console-socket)', (rt, w) => {
  const res = ok(podman(rt, ['run', '--rm', '--tty', '--network', 'none', IMAGE, '/probe', 'tty'], { terminal: true }));
  expect(ttyReport(res), explain(res)).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true, rows: TERMINAL_SIZE.rows, cols: TERMINAL_SIZE.cols, sid: 1 });
  expect(w.calls().find((c) => c.verb === 'create')?.argv).toContain('--console-socket');
});

scenario('run --init: the engine\'s init (catatonit, bind-mounted) is pid 1 and starts the command', (rt) => {
  const res = ok(podman(rt, ['run', '--rm', '--init', '--network', 'none', IMAGE, '/probe', 'report']));
  const report = JSON.parse(res.stdout);
  expect(report.pid).not.toBe(1);
  expect(report.ppid).toBe(1);
});

scenario('run --preserve-fds 1: an open file of the caller is fd 3 in the container', (rt, w) => {
  const file = ws.path(`preserved-${rt}.txt`);
  fs.writeFileSync(file, 'preserved\n');
  const fd = fs.openSync(file, 'r');
  try {
    const res = ok(podman(rt, ['run', '--rm', '--preserve-fds', '1', '--network', 'none', IMAGE, '/probe', 'cat', '/proc/self/fd/3'], { extraFds: [fd] }));
    expect(res.stdout).toBe('preserved\n');
  } finally {
    fs.closeSync(fd);
  }
  expect(w.calls().find((c) => c.verb === 'create')?.argv).toEqual(expect.arrayContaining(['--preserve-fds']));
});

scenario('run --tmpfs /etc and --read-only: the tmpfs starts with what the image had there (tmpcopyup)', (rt) => {
  const etc = ok(podman(rt, ['run', '--rm', '--network', 'none', '--tmpfs', '/etc', IMAGE, '/probe', 'cat', '/etc/passwd']));
  expect(etc.stdout).toContain('root:x:0:0:');
  // --read-only adds tmpfs on /tmp, /var/tmp and /run, each with tmpcopyup: /tmp is writable, / is not.
  const readOnly = podman(rt, ['run', '--rm', '--network', 'none', '--read-only', IMAGE, '/probe', 'write', '/tmp/x', 'then', 'write', '/x']);
  expect(readOnly.status, explain(readOnly)).toBe(1);
  expect(readOnly.stderr, explain(readOnly)).toContain('write /x: EROFS');
});

const POD = (rt: RuntimeName) => `husk-engines-${rt}-pod`;

scenario(
  'pod: the infra container (catatonit) holds the namespaces a container of the pod joins by path',
  (rt) => {
    const pod = POD(rt);
    ok(podman(rt, ['pod', 'create', '--name', pod, '--network', 'none']));
    ok(podman(rt, ['pod', 'start', pod]));
    const infra = ok(podman(rt, ['pod', 'inspect', '--format', '{{.InfraContainerID}}', pod])).stdout.trim();
    const infraPid = Number(inspect(rt, infra, '{{.State.Pid}}'));
    expect(infraPid).toBeGreaterThan(0);
    const res = ok(podman(rt, ['run', '--rm', '--pod', pod, IMAGE, '/probe', 'report']));
    const report = JSON.parse(res.stdout);
    for (const type of ['net', 'ipc', 'uts'] as const) expect(report.namespaces[type]).toBe(fs.readlinkSync(`/proc/${infraPid}/ns/${type}`));
    expect(report.namespaces.mnt).not.toBe(fs.readlinkSync(`/proc/${infraPid}/ns/mnt`));
    ok(podman(rt, ['pod', 'rm', '--force', pod]));
  },
  (rt) => {
    podman(rt, ['pod', 'rm', '--force', POD(rt)]);
  },
);

const SIGNALLED = (rt: RuntimeName) => `husk-engines-${rt}-signalled`;

scenario(
  'kill --signal USR1 reaches the init; kill (KILL) ends it with 137',
  async (rt) => {
    const name = SIGNALLED(rt);
    ok(podman(rt, ['run', '--detach', '--name', name, '--network', 'none', IMAGE, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => podman(rt, ['logs', name]).stdout.includes('ready'), ENGINE_WAIT_MS);
    ok(podman(rt, ['kill', '--signal', 'USR1', name]));
    await waitFor('the probe to report USR1', () => podman(rt, ['logs', name]).stdout.includes('signal USR1'), ENGINE_WAIT_MS);
    ok(podman(rt, ['kill', name]));
    await waitFor('the container to exit', () => inspect(rt, name, '{{.State.Status}}') === 'exited', ENGINE_WAIT_MS);
    expect(inspect(rt, name, '{{.State.ExitCode}}')).toBe('137');
    ok(podman(rt, ['rm', name]));
  },
  (rt) => {
    podman(rt, ['rm', '--force', '--time', '0', SIGNALLED(rt)]);
  },
);

const LIMITED = (rt: RuntimeName) => `husk-engines-${rt}-limited`;

scenario(
  'resources: run --memory --pids-limit, then update --memory',
  async (rt, w) => {
    const name = LIMITED(rt);
    ok(podman(rt, ['run', '--detach', '--name', name, '--memory', '64m', '--pids-limit', '40', '--network', 'none', IMAGE, '/probe', 'sleep', 'inf']));
    const pid = Number(inspect(rt, name, '{{.State.Pid}}'));
    expect(memoryLimit(pid)).toBe(String(64 * 1024 * 1024));
    expect(pidsLimit(pid)).toBe('40');
    // Podman 4.3's update has no --pids-limit; it hands the runtime `update --resources FILE`.
    ok(podman(rt, ['update', '--memory', '96m', name]));
    expect(memoryLimit(pid)).toBe(String(96 * 1024 * 1024));
    expect(w.calls().find((c) => c.verb === 'update'), w.report()).toBeDefined();
    ok(podman(rt, ['rm', '--force', '--time', '0', name]));
  },
  (rt) => {
    podman(rt, ['rm', '--force', '--time', '0', LIMITED(rt)]);
  },
);

/**
 * Differential: the same `podman run` options with each runtime; what the probe sees inside
 * (ids, capabilities, seccomp and no_new_privs, rlimits, oom_score_adj, environment, mounts with
 * their options, interfaces, open fds) and /dev must be the same.
 */
const OPTION_SETS: Record<string, (volume: string) => string[]> = {
  'default options': () => [],
  'user, groups, capabilities, read-only rootfs, tmpfs, bind mount, sysctl, ulimit, oom score': (volume) => [
    '--user', '65534:65534', '--group-add', '10', '--cap-drop', 'all', '--cap-add', 'NET_BIND_SERVICE', '--cap-add', 'KILL',
    '--read-only', '--tmpfs', '/run:size=1m,mode=0750', '--volume', `${volume}:/data:ro`, '--hostname', 'husky',
    // --ulimit replaces containers.conf's default_ulimits, and Podman gives a non-root user
    // RLIMIT_NPROC 1048576, above this session's hard limit (no CAP_SYS_RESOURCE): runc fails too.
    '--env', 'FROM_PODMAN=1', '--workdir', '/tmp', '--ulimit', 'nofile=1000:2000', '--ulimit', 'nproc=32768:32768', '--oom-score-adj', '300',
    '--security-opt', 'no-new-privileges', '--sysctl', 'kernel.msgmax=65536', '--shm-size', '2m',
  ],
  // Podman gives a privileged container the capabilities of its own bounding set.
  privileged: () => ['--privileged'],
  'a user namespace (--uidmap, --gidmap)': () => ['--uidmap', '0:200000:65536', '--gidmap', '0:200000:65536'],
};

for (const [label, options] of Object.entries(OPTION_SETS)) {
  it(`podman run with ${label}: the container sees the same with husk as with runc`, async () => {
    const volume = ws.mkdir('volume');
    fs.writeFileSync(`${volume}/file`, 'data\n');
    const reports: Record<string, Record<string, unknown>> = {};
    const devices: Record<string, string> = {};
    for (const rt of RUNTIMES) {
      await yieldToRunner();
      const res = ok(podman(rt, ['run', '--rm', '--network', 'none', ...options(volume), IMAGE, '/probe', 'report', 'then', 'ls', '/dev']));
      reports[rt] = comparableReport(jsonLine(res.stdout));
      devices[rt] = res.stdout.slice(res.stdout.indexOf('\n') + 1);
    }
    const differences = reportDifferences(reports.husk, reports.runc);
    if (devices.husk !== devices.runc) differences.push(`/dev: husk ${JSON.stringify(devices.husk)}, runc ${JSON.stringify(devices.runc)}`);
    expect(differences, `podman run ${options(volume).join(' ')}: what differs:\n  ${differences.join('\n  ')}`).toEqual([]);
  });
}
