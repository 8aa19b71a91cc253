/*
 * Clients of the Docker Engine API that must work with `husk daemon` unchanged: Debian's
 * docker-compose 1.29 (a server and a client that reaches it by its service name over the
 * project's network), python3-docker, and Testcontainers for Node (its reaper disabled, the
 * image loaded with `docker load`). The daemon runs in a network namespace the test made: the
 * networks' bridges, the containers' addresses and the published ports live there, and so do
 * the clients that connect to them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestNetns } from '../lib/netns';
import { busyboxImage, startHuskDaemon, type HuskDaemon } from './husk-daemon';
import { REPO, Workspace, explain, need, requireRoot, run, waitFor, yieldToRunner } from './setup';

requireRoot();

const IMAGE = 'localhost/husk-web:1';
const PAGE = 'hello from husk\n';
let ws: Workspace;
let netns: TestNetns;
let d: HuskDaemon;

beforeAll(async () => {
  ws = new Workspace('daemon-clients');
  netns = new TestNetns('husk-dc');
  d = await startHuskDaemon(ws, [], 'husk-daemon', netns);
  const tarball = busyboxImage(ws, IMAGE, { 'www/index.html': PAGE });
  const load = d.docker(['load', '-i', tarball]);
  expect(load.status, explain(load)).toBe(0);
}, 120_000);

afterAll(async () => {
  // What a test that failed half-way left is removed through the daemon first.
  const problems = await ws?.teardown(() => d?.removeAll());
  netns?.remove();
  expect(problems ?? []).toEqual([]);
}, 180_000);

it('docker-compose up -d, ps, logs, exec and down -v: the client reaches the server by its service name', async () => {
  const compose = need('docker-compose');
  const dir = ws.mkdir('compose');
  fs.writeFileSync(path.join(dir, 'docker-compose.yml'), [
    'version: "2.4"',
    'services:',
    '  web:',
    `    image: ${IMAGE}`,
    '    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]',
    // docker-init (tini) as PID 1: httpd alone would ignore the SIGTERM of `down`.
    '    init: true',
    '  client:',
    `    image: ${IMAGE}`,
    '    command: ["sh", "-c", "until wget -qO- http://web:8080/; do sleep 0.2; done; exec sleep 600"]',
    '    depends_on: [web]',
    '    stop_grace_period: 1s',
    '    volumes: ["cache:/cache"]',
    'volumes:',
    '  cache: {}',
    '',
  ].join('\n'));
  const dc = (args: string[]) => run([compose, '-p', 'huskt', ...args], { env: { ...d.env, COMPOSE_INTERACTIVE_NO_CLI: '1' }, cwd: dir, timeoutMs: 45_000 });
  const up = dc(['up', '-d']);
  expect(up.status, explain(up)).toBe(0);
  await yieldToRunner();
  const ps = dc(['ps']);
  expect(ps.status, explain(ps)).toBe(0);
  expect(ps.stdout).toMatch(/huskt_web_1\s.*Up/);
  expect(ps.stdout).toMatch(/huskt_client_1\s.*Up/);
  await waitFor('the client to fetch the page', () => dc(['logs', 'client']).stdout.includes(PAGE.trim()), 30_000);
  const exec = dc(['exec', '-T', 'web', 'sh', '-c', 'echo from-exec; hostname']);
  expect(exec.status, explain(exec)).toBe(0);
  expect(exec.stdout).toMatch(/^from-exec\n/);
  const network = d.docker(['network', 'inspect', 'huskt_default']);
  expect(network.status, explain(network)).toBe(0);
  expect(Object.keys(JSON.parse(network.stdout)[0].Containers)).toHaveLength(2);
  const down = dc(['down', '-v']);
  expect(down.status, explain(down)).toBe(0);
  expect(d.docker(['ps', '-aq']).stdout.trim()).toBe('');
  expect(d.docker(['network', 'ls', '--format', '{{.Name}}']).stdout).not.toMatch(/huskt_default/);
  expect(d.docker(['volume', 'ls', '-q']).stdout).not.toMatch(/huskt_cache/);
  expect(netns.links().filter((l) => l.startsWith('veth'))).toEqual([]);
});

it('python3-docker lists images, runs a container, reads its logs and removes it', () => {
  // Debian's python3, which python3-docker is installed for (another python3 may come first on PATH).
  expect(fs.existsSync('/usr/bin/python3'), '/usr/bin/python3 (apt-get install python3-docker)').toBe(true);
  const script = ws.path('client.py');
  fs.writeFileSync(script, [
    'import docker',
    'client = docker.from_env()',
    `assert any("${IMAGE}" in i.tags for i in client.images.list()), "image not listed"`,
    `c = client.containers.run("${IMAGE}", ["sh", "-c", "echo out; echo err >&2; exit 3"], detach=True)`,
    'result = c.wait()',
    'print("status", result["StatusCode"])',
    'print("logs", c.logs(stdout=True, stderr=True).decode().replace("\\n", "|"))',
    'c.remove()',
    'print("left", len(client.containers.list(all=True)))',
  ].join('\n'));
  const res = run(['/usr/bin/python3', script], { env: d.env });
  expect(res.status, explain(res)).toBe(0);
  expect(res.stdout).toBe('status 3\nlogs out|err|\nleft 0\n');
});

it('Testcontainers starts a container, waits for its log line and its port, talks to it and stops it', async () => {
  const script = ws.path('testcontainers.js');
  fs.writeFileSync(script, `
const { GenericContainer, Wait } = require(${JSON.stringify(path.join(REPO, 'node_modules', 'testcontainers'))});
(async () => {
  const container = await new GenericContainer(${JSON.stringify(IMAGE)})
    .withCommand(['sh', '-c', 'echo server is up; exec httpd -f -v -p 80 -h /www'])
    .withExposedPorts(80)
    .withWaitStrategy(Wait.forAll([Wait.forLogMessage('server is up'), Wait.forListeningPorts()]))
    .start();
  const port = container.getMappedPort(80);
  const res = await fetch('http://127.0.0.1:' + port + '/');
  console.log('page', JSON.stringify(await res.text()));
  await container.stop();
  console.log('stopped');
})().catch((err) => { console.error(err); process.exit(1); });
`);
  const res = run(netns.argv([process.execPath, script]), { env: { ...d.env, TESTCONTAINERS_RYUK_DISABLED: 'true' }, timeoutMs: 45_000 });
  expect(res.status, explain(res)).toBe(0);
  expect(res.stdout).toContain(`page ${JSON.stringify(PAGE)}`);
  expect(res.stdout).toContain('stopped');
  expect(d.docker(['ps', '-aq']).stdout.trim()).toBe('');
});
