/*
 * Docker (20.10, dockerd -> containerd -> containerd-shim-runc-v2) with husk and with runc, side by
 * side. The test starts its own containerd and a dockerd on it, both with their data, state and
 * sockets in this file's workspace, without iptables, bridge or userland proxy (containers run
 * with --network none). husk is registered with `dockerd --add-runtime husk=PATH`; runc, through
 * its logging wrapper, in daemon.json's "runtimes" (Docker reserves the name runc, so it is
 * `logged-runc` there).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  IMAGE, RUNTIMES, Workspace, buildImage, cgroupFile, explain, frozen, memoryLimit, median, need, pidsLimit, printTimings, recordTiming, requireRoot, run, runOnTerminal,
  LINGER, comparableReport, reportDifferences, jsonLine, scenarios, yieldToRunner, waitFor, type Daemon, type Result, type RuntimeName,
  ENGINE_WAIT_MS,
} from './setup';

requireRoot();

const ENGINE = 'docker';
/** The name each runtime is registered under in dockerd. */
const DOCKER_RUNTIME: Record<RuntimeName, string> = { husk: 'husk', runc: 'logged-runc' };
let ws: Workspace;
let dockerBinary: string;
let env: Record<string, string>;
let containerd: Daemon | undefined;
let dockerd: Daemon | undefined;
let containerdAddress: string;

function docker(args: string[], opts: { timeoutMs?: number; terminal?: boolean } = {}): Result {
  const argv = [dockerBinary, ...args];
  return opts.terminal ? runOnTerminal(argv, { env, timeoutMs: opts.timeoutMs }) : run(argv, { env, timeoutMs: opts.timeoutMs });
}

function dockerRun(rt: RuntimeName, args: string[], opts: { terminal?: boolean } = {}): Result {
  return docker(['run', '--runtime', DOCKER_RUNTIME[rt], '--network', 'none', ...args], opts);
}

function ok(res: Result): Result {
  expect(res.status, explain(res)).toBe(0);
  return res;
}

function inspect(name: string, format: string): string {
  return ok(docker(['inspect', '--format', format, name])).stdout.trim();
}

function ttyReport(res: Result): unknown {
  const line = /\{"stdin".*\}/.exec(res.stdout);
  return line ? JSON.parse(line[0]) : undefined;
}

beforeAll(async () => {
  ws = new Workspace(ENGINE);
  // dockerd puts containers under /docker in every cgroup hierarchy (cgroupfs driver).
  ws.cgroupMarkers.push('docker', 'moby');
  // Debian's client matches Debian's daemon; another one on PATH negotiates the API version down.
  dockerBinary = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : need('docker');
  const dockerdBinary = need('dockerd');
  need('containerd-shim-runc-v2');
  for (const rt of RUNTIMES) ws.wrapper(rt);

  containerdAddress = ws.path('containerd.sock');
  const containerdConfig = ws.path('containerd.toml');
  fs.writeFileSync(
    containerdConfig,
    [
      'version = 2',
      `root = ${JSON.stringify(ws.mkdir('containerd-root'))}`,
      `state = ${JSON.stringify(ws.mkdir('containerd-state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(containerdAddress)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${containerdAddress}.ttrpc`)}`,
      '[debug]',
      `  address = ${JSON.stringify(ws.path('containerd-debug.sock'))}`,
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(ws.mkdir('containerd-opt'))}`,
      '',
    ].join('\n'),
  );
  containerd = ws.startDaemon('containerd', [need('containerd'), '--config', containerdConfig]);
  await containerd.waitReady(() => fs.existsSync(containerdAddress) && run([need('ctr'), '--address', containerdAddress, 'version'], { timeoutMs: 10_000 }).status === 0);

  const daemonJson = ws.path('daemon.json');
  fs.writeFileSync(
    daemonJson,
    JSON.stringify(
      {
        runtimes: { [DOCKER_RUNTIME.runc]: { path: ws.wrappers.get('runc')!.path } },
        // Otherwise dockerd writes its trust key to /etc/docker/key.json.
        'deprecated-key-path': ws.path('docker-key.json'),
      },
      null,
      2,
    ),
  );
  const socket = ws.path('docker.sock');
  env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: ws.mkdir('docker-cli') };
  dockerd = ws.startDaemon('dockerd', [
    dockerdBinary,
    '--config-file', daemonJson,
    '--data-root', ws.mkdir('docker-data'),
    '--exec-root', ws.mkdir('docker-exec'),
    '--pidfile', ws.path('docker.pid'),
    '--host', `unix://${socket}`,
    '--containerd', containerdAddress,
    '--iptables=false',
    '--ip6tables=false',
    '--ip-masq=false',
    '--bridge=none',
    '--userland-proxy=false',
    '--exec-opt', 'native.cgroupdriver=cgroupfs',
    '--add-runtime', `${DOCKER_RUNTIME.husk}=${ws.wrappers.get('husk')!.path}`,
  ]);
  await dockerd.waitReady(() => fs.existsSync(socket) && docker(['version'], { timeoutMs: 10_000 }).status === 0);
  ok(docker(['load', '--input', buildImage(ws)]));
}, 600_000);

afterAll(async () => {
  if (!ws) return;
  try {
    printTimings(ENGINE);
  } finally {
    const problems = await ws.teardown(async () => {
      if (dockerd) {
        const all = docker(['ps', '--all', '--quiet']).stdout.split('\n').filter(Boolean);
        if (all.length) docker(['rm', '--force', ...all]);
        await yieldToRunner();
        docker(['rmi', '--force', IMAGE]);
      }
      // dockerd stops before containerd (daemons stop newest first).
    });
    if (problems.length) {
      throw new Error(
        `docker test left things behind:\n  ${problems.join('\n  ')}\ndockerd's log:\n${dockerd?.logTail()}\ncontainerd's log:\n${containerd?.logTail()}`,
      );
    }
  }
}, 600_000);

const scenario = scenarios(ENGINE, () => ws);
const nameOf = (rt: RuntimeName, what: string) => `husk-engines-${what}-${rt}`;

scenario('docker run --rm: output and exit status pass through', (rt, w) => {
  const hello = ok(dockerRun(rt, ['--rm', IMAGE, '/probe', 'echo', 'hello from', rt, ...LINGER]));
  expect(hello.stdout).toBe(`hello from ${rt}\n`);
  const failing = dockerRun(rt, ['--rm', IMAGE, '/probe', 'exit', '6']);
  expect(failing.status, explain(failing)).toBe(6);
  const create = w.calls().find((c) => c.verb === 'create');
  expect(create, w.report()).toBeDefined();
  expect(create!.argv).toEqual(expect.arrayContaining(['--log-format', 'json']));
});

scenario('docker run --rm true, 5 times (timed)', (rt) => {
  const times = [0, 1, 2, 3, 4].map(() => ok(dockerRun(rt, ['--rm', IMAGE, '/probe', 'exit', '0'])).ms);
  recordTiming(ENGINE, 'docker run --rm true: median of 5', rt, median(times));
});

scenario(
  'docker run -d, exec, exec -t, top, pause, unpause, stop, rm',
  async (rt) => {
    const name = nameOf(rt, 'detached');
    ok(dockerRun(rt, ['--detach', '--name', name, IMAGE, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => docker(['logs', name]).stdout.includes('ready'), ENGINE_WAIT_MS);
    expect(inspect(name, '{{.State.Status}}')).toBe('running');

    expect(ok(docker(['exec', name, '/probe', 'echo', 'in', 'exec', ...LINGER])).stdout).toBe('in exec\n');
    const failing = docker(['exec', name, '/probe', 'exit', '4']);
    expect(failing.status, explain(failing)).toBe(4);
    const env = ok(docker(['exec', '--env', 'FROM_EXEC=yes', '--workdir', '/tmp', name, '/probe', 'env', 'then', 'cwd', ...LINGER]));
    expect(env.stdout).toContain('FROM_EXEC=yes\n');
    expect(env.stdout).toMatch(/\/tmp\n$/);
    // A command that does not exist: docker exec's 126 with the runtime's message from its log.
    const missing = docker(['exec', name, '/no/such/command']);
    expect(missing.status, explain(missing)).toBe(126);
    // (docker exec prints the daemon's error on stdout.)
    expect(missing.stdout + missing.stderr, explain(missing)).toMatch(/OCI runtime exec failed: .*exec: "\/no\/such\/command"/);

    const tty = ok(docker(['exec', '--tty', name, '/probe', 'tty', ...LINGER], { terminal: true }));
    expect(ttyReport(tty), explain(tty)).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true });

    // docker top asks the runtime (`ps --format json`) for the container's pids.
    const top = ok(docker(['top', name]));
    expect(top.stdout).toContain('/probe signals 0');

    const pid = Number(inspect(name, '{{.State.Pid}}'));
    expect(pid).toBeGreaterThan(0);
    ok(docker(['pause', name]));
    expect(inspect(name, '{{.State.Status}}')).toBe('paused');
    expect(frozen(pid)).toBe(true);
    ok(docker(['unpause', name]));
    expect(inspect(name, '{{.State.Status}}')).toBe('running');
    expect(frozen(pid)).toBe(false);
    expect(ok(docker(['exec', name, '/probe', 'echo', 'thawed', ...LINGER])).stdout).toBe('thawed\n');

    ok(docker(['stop', '--time', '60', name]));
    expect(inspect(name, '{{.State.Status}}')).toBe('exited');
    expect(inspect(name, '{{.State.ExitCode}}')).toBe('0');
    await waitFor('"signal TERM" in docker logs', () => docker(['logs', name]).stdout.includes('signal TERM'), ENGINE_WAIT_MS);
    ok(docker(['rm', name]));
  },
  (rt) => {
    docker(['rm', '--force', nameOf(rt, 'detached')]);
  },
);

scenario('docker run -t: the process has a terminal', (rt) => {
  const res = ok(dockerRun(rt, ['--rm', '--tty', IMAGE, '/probe', 'tty', ...LINGER], { terminal: true }));
  expect(ttyReport(res), explain(res)).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true, sid: 1 });
});

scenario("a command that does not exist: exit 127 and the runtime's message from its JSON log", (rt) => {
  const missing = dockerRun(rt, ['--rm', IMAGE, '/no/such/command']);
  // The docker client maps "no such file or directory" in the runtime's error to 127 ...
  expect(missing.status, explain(missing)).toBe(127);
  expect(missing.stderr, explain(missing)).toMatch(/OCI runtime create failed: .*exec: "\/no\/such\/command"/);
  expect(missing.stderr.toLowerCase()).toContain('no such file or directory');
  const notExecutable = dockerRun(rt, ['--rm', IMAGE, '/etc/hostname']);
  // ... and "permission denied" to 126.
  expect(notExecutable.status, explain(notExecutable)).toBe(126);
  expect(notExecutable.stderr.toLowerCase()).toContain('permission denied');
});

scenario("docker run --init: the engine's init (tini, bind-mounted) is pid 1 and starts the command", (rt) => {
  const res = ok(dockerRun(rt, ['--rm', '--init', IMAGE, '/probe', 'report', ...LINGER]));
  const report = JSON.parse(res.stdout);
  expect(report.pid).not.toBe(1);
  expect(report.ppid).toBe(1);
});

scenario(
  'docker kill --signal USR1 reaches the init; docker kill ends it with 137',
  async (rt) => {
    const name = nameOf(rt, 'signalled');
    ok(dockerRun(rt, ['--detach', '--name', name, IMAGE, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => docker(['logs', name]).stdout.includes('ready'), ENGINE_WAIT_MS);
    ok(docker(['kill', '--signal', 'USR1', name]));
    await waitFor('the probe to report USR1', () => docker(['logs', name]).stdout.includes('signal USR1'), ENGINE_WAIT_MS);
    ok(docker(['kill', name]));
    await waitFor('the container to exit', () => inspect(name, '{{.State.Status}}') === 'exited', ENGINE_WAIT_MS);
    expect(inspect(name, '{{.State.ExitCode}}')).toBe('137');
    ok(docker(['rm', name]));
  },
  (rt) => {
    docker(['rm', '--force', nameOf(rt, 'signalled')]);
  },
);

scenario(
  'resources: docker run --memory --pids-limit, then docker update (update --resources - on stdin)',
  (rt, w) => {
    const name = nameOf(rt, 'limited');
    ok(dockerRun(rt, ['--detach', '--name', name, '--memory', '64m', '--memory-swap', '128m', '--pids-limit', '40', IMAGE, '/probe', 'sleep', 'inf']));
    const pid = Number(inspect(name, '{{.State.Pid}}'));
    expect(memoryLimit(pid)).toBe(String(64 * 1024 * 1024));
    expect(pidsLimit(pid)).toBe('40');
    ok(docker(['update', '--memory', '96m', '--memory-swap', '192m', '--pids-limit', '50', name]));
    expect(memoryLimit(pid)).toBe(String(96 * 1024 * 1024));
    expect(pidsLimit(pid)).toBe('50');
    const update = w.calls().find((c) => c.verb === 'update');
    expect(update?.stdin, w.report()).toBeTruthy();
    ok(docker(['rm', '--force', name]));
  },
  (rt) => {
    docker(['rm', '--force', nameOf(rt, 'limited')]);
  },
);

scenario(
  'docker run --network/--pid/--ipc container:X joins another container\'s namespaces; exec --user; restart',
  async (rt) => {
    const first = nameOf(rt, 'first');
    ok(dockerRun(rt, ['--detach', '--name', first, '--ipc', 'shareable', IMAGE, '/probe', 'signals', '0']));
    await waitFor('the container to print ready', () => docker(['logs', first]).stdout.includes('ready'), ENGINE_WAIT_MS);
    const pid = Number(inspect(first, '{{.State.Pid}}'));
    const ns = (type: string) => fs.readlinkSync(`/proc/${pid}/ns/${type}`);
    // --network container:X leaves out --network none (they cannot be combined).
    const joined = ok(docker(['run', '--rm', '--runtime', DOCKER_RUNTIME[rt], '--network', `container:${first}`, '--pid', `container:${first}`, '--ipc', `container:${first}`, IMAGE, '/probe', 'report', ...LINGER]));
    const report = jsonLine(joined.stdout);
    expect(report.namespaces.net).toBe(ns('net'));
    expect(report.namespaces.pid).toBe(ns('pid'));
    expect(report.namespaces.ipc).toBe(ns('ipc'));
    expect(report.namespaces.mnt).not.toBe(ns('mnt'));
    expect(report.pid).not.toBe(1);

    const id = ok(docker(['exec', '--user', '65534:65534', first, '/probe', 'id', ...LINGER]));
    expect(id.stdout).toBe('uid=65534 gid=65534 groups=65534\n');

    // restart: the runtime kills, deletes and creates the same id again.
    ok(docker(['restart', '--time', '30', first]));
    await waitFor('the restarted container to run', () => inspect(first, '{{.State.Status}}') === 'running' && docker(['logs', first]).stdout.split('ready').length === 3, ENGINE_WAIT_MS);
    expect(Number(inspect(first, '{{.State.Pid}}'))).not.toBe(pid);
    ok(docker(['rm', '--force', first]));
  },
  (rt) => {
    docker(['rm', '--force', nameOf(rt, 'first')]);
  },
);

/**
 * Differential: the same `docker run` options with each runtime; what the probe sees inside
 * (ids, capabilities, seccomp and no_new_privs, rlimits, oom_score_adj, environment, mounts with
 * their options, interfaces, open fds) must be the same, and so must /dev.
 */
const OPTION_SETS: Record<string, (volume: string) => string[]> = {
  'user, groups, capabilities, read-only rootfs, tmpfs, bind mount, sysctl, ulimit, oom score': (volume) => [
    '--user', '65534:65534', '--group-add', '10', '--cap-drop', 'ALL', '--cap-add', 'NET_BIND_SERVICE', '--cap-add', 'KILL',
    '--read-only', '--tmpfs', '/run:size=1m,mode=0750', '--volume', `${volume}:/data:ro`, '--hostname', 'husky',
    '--env', 'FROM_DOCKER=1', '--workdir', '/tmp', '--ulimit', 'nofile=1000:2000', '--oom-score-adj', '300',
    '--security-opt', 'no-new-privileges', '--sysctl', 'kernel.msgmax=65536', '--shm-size', '2m',
  ],
  // Not --privileged: Docker 20.10 then asks for every capability it knows, and this machine's
  // bounding set lacks CAP_SYS_RESOURCE, so runc cannot start it either ("unable to apply caps").
  'added capabilities, no seccomp, no masked paths, an extra device': () => [
    '--cap-add', 'SYS_ADMIN', '--cap-add', 'NET_ADMIN', '--security-opt', 'seccomp=unconfined',
    '--security-opt', 'systempaths=unconfined', '--device', '/dev/null:/dev/husk-null', '--device', '/dev/zero:/dev/husk-zero:r',
  ],
  'default options': () => [],
};

for (const [label, options] of Object.entries(OPTION_SETS)) {
  it(`docker run with ${label}: the container sees the same with husk as with runc`, async () => {
    const volume = ws.mkdir('volume');
    fs.writeFileSync(`${volume}/file`, 'data\n');
    const reports: Record<string, Record<string, unknown>> = {};
    const devices: Record<string, string> = {};
    for (const rt of RUNTIMES) {
      await yieldToRunner();
      const res = ok(dockerRun(rt, ['--rm', ...options(volume), IMAGE, '/probe', 'report', 'then', 'ls', '/dev', ...LINGER]));
      reports[rt] = comparableReport(jsonLine(res.stdout));
      devices[rt] = res.stdout.slice(res.stdout.indexOf('\n') + 1);
    }
    const differences = reportDifferences(reports.husk, reports.runc);
    if (devices.husk !== devices.runc) differences.push(`/dev: husk ${JSON.stringify(devices.husk)}, runc ${JSON.stringify(devices.runc)}`);
    expect(differences, `docker run ${options(volume).join(' ')}: what differs:\n  ${differences.join('\n  ')}`).toEqual([]);
  });
}

it('docker run --cpus --cpu-shares --cpuset-cpus --memory --memory-reservation --pids-limit: the same cgroup files with husk as with runc', async () => {
  const files: [string, string, string][] = [
    ['cpu', 'cpu.cfs_quota_us', 'cpu.max'],
    ['cpu', 'cpu.cfs_period_us', 'cpu.max'],
    ['cpu', 'cpu.shares', 'cpu.weight'],
    ['cpuset', 'cpuset.cpus', 'cpuset.cpus'],
    ['memory', 'memory.limit_in_bytes', 'memory.max'],
    ['memory', 'memory.soft_limit_in_bytes', 'memory.low'],
    ['pids', 'pids.max', 'pids.max'],
  ];
  const values: Record<string, Record<string, string>> = {};
  for (const rt of RUNTIMES) {
    await yieldToRunner();
    const name = nameOf(rt, 'cgroups');
    try {
      ok(dockerRun(rt, [
        '--detach', '--name', name, '--cpus', '0.5', '--cpu-shares', '512', '--cpuset-cpus', '0', '--memory', '64m',
        '--memory-reservation', '32m', '--pids-limit', '40', IMAGE, '/probe', 'sleep', 'inf',
      ]));
      const pid = Number(inspect(name, '{{.State.Pid}}'));
      values[rt] = Object.fromEntries(files.map(([controller, v1, v2]) => [`${controller} ${v1}`, cgroupFile(pid, controller, v1, v2)]));
    } finally {
      docker(['rm', '--force', name]);
    }
  }
  expect(values.husk).toEqual(values.runc);
  expect(values.runc['memory memory.limit_in_bytes']).toBe(String(64 * 1024 * 1024));
});

scenario(
  'five docker exec at once into one container; --memory enforced (OOM kill, 137)',
  async (rt) => {
    const name = nameOf(rt, 'busy');
    ok(dockerRun(rt, ['--detach', '--name', name, IMAGE, '/probe', 'sleep', 'inf']));
    // The runtime's state is read and locked by five calls at the same time.
    const script = [0, 1, 2, 3, 4]
      .map((i) => `${dockerBinary} exec ${name} /probe echo exec-${i} then sleep 0.5 > ${ws.path(`exec-${rt}-${i}.out`)} 2>&1 & pids="$pids $!"`)
      .join('\n');
    const parallel = run(['sh', '-c', `${script}\nfail=0; for pid in $pids; do wait $pid || fail=1; done; exit $fail`], { env });
    const outputs = [0, 1, 2, 3, 4].map((i) => fs.readFileSync(ws.path(`exec-${rt}-${i}.out`), 'utf8'));
    expect(parallel.status, `${explain(parallel)}\noutputs: ${JSON.stringify(outputs)}`).toBe(0);
    expect(outputs).toEqual([0, 1, 2, 3, 4].map((i) => `exec-${i}\n`));
    ok(docker(['rm', '--force', name]));

    const hog = dockerRun(rt, ['--rm', '--memory', '32m', '--memory-swap', '32m', IMAGE, '/probe', 'hog-memory', '256']);
    expect(hog.status, explain(hog)).toBe(137);
    expect(hog.stdout).not.toContain('done');
  },
  (rt) => {
    docker(['rm', '--force', nameOf(rt, 'busy')]);
  },
);
