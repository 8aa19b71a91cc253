/*
 * `docker exec` against `husk daemon`, driven by the real docker CLI (the current one and
 * Debian's 20.10): output and exit status, stdin, a terminal and its size, -d, -u, -e, -w,
 * the refusals for stopped, paused and unknown containers, and the exec's inspect. Then
 * `docker system df`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER_CLIS, startHuskDaemon, type HuskDaemon } from './husk-daemon';
import { IMAGE, REPO, TERMINAL_SIZE, Workspace, buildImage, explain, jsonLine, requireRoot, run, runOnTerminal, sleep, waitFor } from './setup';

requireRoot();

let ws: Workspace;
let d: HuskDaemon;

beforeAll(async () => {
  ws = new Workspace('daemon-exec');
  d = await startHuskDaemon(ws);
  const pulled = run([path.join(REPO, 'bin', 'husk'), 'image', 'pull', '--store', d.store, `docker-archive:${buildImage(ws)}`]);
  expect(pulled.status, explain(pulled)).toBe(0);
  const box = d.docker(['run', '-d', '--name', 'box', IMAGE]);
  expect(box.status, explain(box)).toBe(0);
}, 120_000);

afterAll(async () => {
  // What a test that failed half-way left is removed through the daemon first.
  const problems = await ws?.teardown(() => d?.removeAll());
  expect(problems ?? []).toEqual([]);
}, 120_000);

describe.each(DOCKER_CLIS)('%s', (cli) => {
  const docker = (args: string[], opts: { timeoutMs?: number; input?: string } = {}) => d.docker(args, { ...opts, timeoutMs: 30_000, ...opts, binary: cli });

  it('shows the output and passes on the exit status', () => {
    const hello = docker(['exec', 'box', 'sh', '-c', 'echo out; echo err >&2']);
    expect(hello.status, explain(hello)).toBe(0);
    expect(hello.stdout).toBe('out\n');
    expect(hello.stderr).toBe('err\n');
    const seven = docker(['exec', 'box', 'sh', '-c', 'exit 7']);
    expect(seven.status, explain(seven)).toBe(7);
    const killed = docker(['exec', 'box', 'sh', '-c', 'kill -9 $$']);
    expect(killed.status, explain(killed)).toBe(137);
  });

  it('fails a missing program with 127 and a non-executable one with 126, in Docker\'s words', () => {
    const missing = docker(['exec', 'box', '/nonexistent']);
    expect(missing.status, explain(missing)).toBe(127);
    expect(missing.stdout + missing.stderr).toMatch(/exec: "\/nonexistent": stat \/nonexistent: no such file or directory|no such file or directory/);
    const notInPath = docker(['exec', 'box', 'nosuchprogram']);
    expect(notInPath.status, explain(notInPath)).toBe(127);
    expect(notInPath.stdout + notInPath.stderr).toMatch(/executable file not found in \$PATH|not found/);
    const notExecutable = docker(['exec', 'box', '/etc/passwd']);
    expect(notExecutable.status, explain(notExecutable)).toBe(126);
    expect(notExecutable.stdout + notExecutable.stderr).toMatch(/permission denied/);
  });

  it('relays piped stdin with -i, and its end reaches the process', () => {
    const res = docker(['exec', '-i', 'box', 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' });
    expect(res.status, explain(res)).toBe(0);
    expect(res.stdout).toBe('line one\nline two\ndone\n');
    const noInput = docker(['exec', 'box', 'sh', '-c', 'cat; echo eof'], { input: 'ignored\n' });
    expect(noInput.stdout, explain(noInput)).toBe('eof\n');
  });

  it('gives -it a terminal', () => {
    const res = runOnTerminal([cli, 'exec', '-it', 'box', '/probe', 'tty'], { env: d.env, timeoutMs: 30_000 });
    expect(res.status, explain(res)).toBe(0);
    const tty = jsonLine(res.stdout);
    expect(tty.stdin, explain(res)).toBe(true);
    expect(tty.stdout).toBe(true);
    if (cli === DOCKER_CLIS[0]) expect([tty.rows, tty.cols], explain(res)).toEqual([TERMINAL_SIZE.rows, TERMINAL_SIZE.cols]);
  });

  it('returns at once with -d while the process runs on', async () => {
    const marker = `/tmp/detached-${cli.includes('local') ? 'new' : 'old'}`;
    const res = docker(['exec', '-d', 'box', 'sh', '-c', `sleep 3; echo ran > ${marker}`]);
    expect(res.status, explain(res)).toBe(0);
    // It did not wait for the process's 3 seconds.
    expect(res.ms).toBeLessThan(2500);
    expect(docker(['exec', 'box', 'cat', marker]).status).not.toBe(0);
    expect(res.stdout).toBe('');
    await waitFor('the detached exec\'s file', () => docker(['exec', 'box', 'cat', marker]).stdout === 'ran\n', 10_000);
  });

  it('runs as -u (a name or uid:gid), with -e and -w', () => {
    const byName = docker(['exec', '-u', 'nobody', 'box', 'id']);
    expect(byName.stdout, explain(byName)).toMatch(/^uid=65534\(nobody\) gid=65534\(nogroup\)/);
    const byIds = docker(['exec', '-u', '65534:0', 'box', 'sh', '-c', 'echo $(id -u):$(id -g)']);
    expect(byIds.stdout, explain(byIds)).toBe('65534:0\n');
    const unknown = docker(['exec', '-u', 'nosuchuser', 'box', 'id']);
    expect(unknown.status, explain(unknown)).not.toBe(0);
    expect(unknown.stderr).toMatch(/nosuchuser/);
    const env = docker(['exec', '-e', 'FOO=bar', '-w', '/tmp', 'box', 'sh', '-c', 'echo $FOO $(pwd)']);
    expect(env.stdout, explain(env)).toBe('bar /tmp\n');
  });

  it('refuses a stopped, a paused and an unknown container with Docker\'s messages', () => {
    const name = `stopped-${cli.includes('local') ? 'new' : 'old'}`;
    expect(docker(['create', '--name', name, IMAGE]).status).toBe(0);
    const id = docker(['inspect', '--format', '{{.Id}}', name]).stdout.trim();
    const stopped = docker(['exec', name, 'true']);
    expect(stopped.status, explain(stopped)).toBe(1);
    expect(stopped.stderr).toContain(`Container ${id} is not running`);
    expect(docker(['rm', name]).status).toBe(0);
    expect(docker(['pause', 'box']).status).toBe(0);
    try {
      const boxId = docker(['inspect', '--format', '{{.Id}}', 'box']).stdout.trim();
      const paused = docker(['exec', 'box', 'true']);
      expect(paused.status, explain(paused)).toBe(1);
      expect(paused.stderr).toContain(`Container ${boxId} is paused, unpause the container before exec`);
    } finally {
      expect(docker(['unpause', 'box']).status).toBe(0);
    }
    const unknown = docker(['exec', 'nosuchcontainer', 'true']);
    expect(unknown.status, explain(unknown)).toBe(1);
    expect(unknown.stderr).toContain('No such container: nosuchcontainer');
  });
});

it('tells an exec\'s ExitCode, Running and Pid through GET /exec/ID/json, and lists it in the container\'s ExecIDs', async () => {
  const made = await d.request('POST', '/v1.43/containers/box/exec', JSON.stringify({ Cmd: ['sh', '-c', 'sleep 1; exit 3'] }));
  expect(made.status, made.body).toBe(201);
  const id = JSON.parse(made.body).Id as string;
  const before = JSON.parse((await d.request('GET', `/v1.43/exec/${id}/json`)).body);
  expect([before.Running, before.ExitCode, before.Pid]).toEqual([false, null, 0]);
  expect(JSON.parse(d.docker(['inspect', '--format', '{{json .ExecIDs}}', 'box']).stdout)).toContain(id);
  const started = await d.request('POST', `/v1.43/exec/${id}/start`, JSON.stringify({ Detach: true }));
  expect(started.status, started.body).toBe(200);
  const during = JSON.parse((await d.request('GET', `/v1.43/exec/${id}/json`)).body);
  expect(during.Running).toBe(true);
  expect(during.Pid).toBeGreaterThan(0);
  expect(fs.existsSync(`/proc/${during.Pid}`)).toBe(true);
  let after = during;
  for (let i = 0; i < 100 && after.Running; i++) {
    await sleep(100);
    after = JSON.parse((await d.request('GET', `/v1.43/exec/${id}/json`)).body);
  }
  expect([after.Running, after.ExitCode]).toEqual([false, 3]);
  expect(d.docker(['inspect', '--format', '{{json .ExecIDs}}', 'box']).stdout.trim()).toBe('null');
  const again = await d.request('POST', `/v1.43/exec/${id}/start`, JSON.stringify({ Detach: true }));
  expect(again.status).toBe(409);
  const nope = await d.request('GET', '/v1.43/exec/nosuchexec/json');
  expect(nope.status).toBe(404);
  expect(JSON.parse(nope.body).message).toBe('No such exec instance: nosuchexec');
});

it('shows images, containers, volumes and build cache in docker system df (and -v)', () => {
  expect(d.docker(['volume', 'create', 'dfvol']).status).toBe(0);
  const user = d.docker(['run', '-d', '--name', 'dfuser', '-v', 'dfvol:/data', IMAGE, '/probe', 'write', '/data/f', 'twelve bytes', 'then', 'sleep', 'inf']);
  expect(user.status, explain(user)).toBe(0);
  const running = d.docker(['ps', '-q']).stdout.split('\n').filter(Boolean).length;
  const all = d.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean).length;
  const volumes = d.docker(['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean).length;
  for (const cli of DOCKER_CLIS) {
    const df = d.docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Active}}'], { binary: cli });
    expect(df.status, explain(df)).toBe(0);
    expect(df.stdout.split('\n').filter(Boolean), explain(df)).toEqual([
      'Images 1 1',
      `Containers ${all} ${running}`,
      `Local Volumes ${volumes} ${volumes}`,
      'Build Cache 0 0',
    ]);
    const table = d.docker(['system', 'df'], { binary: cli });
    expect(table.stdout, explain(table)).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n/);
    const verbose = d.docker(['system', 'df', '-v'], { binary: cli });
    expect(verbose.status, explain(verbose)).toBe(0);
    expect(verbose.stdout, explain(verbose)).toMatch(new RegExp(`${IMAGE.split(':')[0]}\\s+latest\\s`));
    expect(verbose.stdout).toMatch(/dfuser/);
    expect(verbose.stdout).toMatch(/dfvol\s+1\s+12B/);
  }
  expect(d.docker(['rm', '-f', 'dfuser']).status).toBe(0);
  expect(d.docker(['volume', 'rm', 'dfvol']).status).toBe(0);
});
