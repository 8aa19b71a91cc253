/*
 * `husk daemon`, the Docker Engine API: what a client asks first (ping, version, info, events),
 * with the current docker CLI and Debian's 20.10 one, and the daemon's own bad input.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DOCKER_CLIS, busyboxImage, startHuskDaemon, type HuskDaemon } from './husk-daemon';
import { REPO, Workspace, explain, requireRoot, run } from './setup';

requireRoot();

let ws: Workspace;
let d: HuskDaemon;

beforeAll(async () => {
  ws = new Workspace('daemon');
  d = await startHuskDaemon(ws);
}, 60_000);

afterAll(async () => {
  // What a test that failed half-way left is removed through the daemon first.
  const problems = await ws?.teardown(() => d?.removeAll());
  expect(problems ?? []).toEqual([]);
}, 120_000);

it.each(DOCKER_CLIS)('%s negotiates an API version and prints the server\'s version and info', (cli) => {
  const version = d.docker(['version', '--format', '{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}}'], { binary: cli });
  expect(version.status, explain(version)).toBe(0);
  expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+ 1\.\d+ linux\/amd64$/);
  const info = d.docker(['info', '--format', '{{.OSType}} {{.LoggingDriver}} {{.DockerRootDir}}'], { binary: cli });
  expect(info.status, explain(info)).toBe(0);
  expect(info.stdout.trim()).toBe(`linux json-file ${d.dataRoot}`);
});

it('answers /_ping with the version headers, and refuses versions it does not speak', async () => {
  const ping = await d.request('GET', '/_ping');
  expect(ping.status).toBe(200);
  expect(ping.body).toBe('OK');
  expect(ping.headers['api-version']).toBe('1.43');
  expect(ping.headers.ostype).toBe('linux');
  const head = await d.request('HEAD', '/_ping');
  expect(head.status).toBe(200);
  const versioned = await d.request('GET', '/v1.41/version');
  expect(versioned.status).toBe(200);
  expect(JSON.parse(versioned.body).ApiVersion).toBe('1.43');
  const tooNew = await d.request('GET', '/v1.99/version');
  expect(tooNew.status).toBe(400);
  expect(JSON.parse(tooNew.body).message).toBe('client version 1.99 is too new. Maximum supported API version is 1.43');
  const tooOld = await d.request('GET', '/v1.12/version');
  expect(tooOld.status).toBe(400);
  expect(JSON.parse(tooOld.body).message).toMatch(/^client version 1.12 is too old/);
  const missing = await d.request('GET', '/v1.43/no/such/thing');
  expect(missing.status).toBe(404);
  expect(JSON.parse(missing.body)).toEqual({ message: 'page not found' });
  const wrongMethod = await d.request('DELETE', '/version');
  expect(wrongMethod.status).toBe(405);
});

it('streams events from --since until --until, filtered', async () => {
  const events = d.docker(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000)), '--format', '{{json .}}']);
  expect(events.status, explain(events)).toBe(0);
  const bad = await d.request('GET', '/events?since=yesterday');
  expect(bad.status).toBe(400);
  expect(JSON.parse(bad.body).message).toMatch(/since/);
  const badFilter = await d.request('GET', `/events?until=1&filters=${encodeURIComponent('{"colour":["red"]}')}`);
  expect(badFilter.status).toBe(400);
  expect(JSON.parse(badFilter.body).message).toBe("invalid filter 'colour'");
});

it('refuses a TCP listener unless asked plainly, and a malformed -H, with one line and exit 1', () => {
  const husk = `${REPO}/bin/husk`;
  const tcp = run([husk, 'daemon', '-H', 'tcp://127.0.0.1:2399', '--data-root', ws.path('x'), '--exec-root', ws.path('y')]);
  expect(tcp.status, explain(tcp)).toBe(1);
  expect(tcp.stderr.trim().split('\n')).toHaveLength(1);
  expect(tcp.stderr).toMatch(/tcp:\/\/127.0.0.1:2399: a TCP socket gives anyone who reaches it root on this host/);
  const bad = run([husk, 'daemon', '-H', 'ftp://x', '--data-root', ws.path('x'), '--exec-root', ws.path('y')]);
  expect(bad.status, explain(bad)).toBe(1);
  expect(bad.stderr.trim()).toBe('husk: daemon: -H "ftp://x": expected unix:///PATH or tcp://HOST:PORT');
  expect(fs.existsSync(ws.path('x')) || fs.existsSync(ws.path('y'))).toBe(false);
});

it('creates, lists, inspects, removes and prunes volumes, and refuses a name that is a path', async () => {
  const create = d.docker(['volume', 'create', '--label', 'team=blue', 'data1']);
  expect(create.status, explain(create)).toBe(0);
  expect(create.stdout.trim()).toBe('data1');
  expect(d.docker(['volume', 'create', 'data1']).status).toBe(0); // again: the same volume
  const inspect = d.docker(['volume', 'inspect', 'data1']);
  expect(inspect.status, explain(inspect)).toBe(0);
  const [v] = JSON.parse(inspect.stdout);
  expect(v).toMatchObject({ Name: 'data1', Driver: 'local', Scope: 'local', Labels: { team: 'blue' } });
  expect(v.Mountpoint).toBe(`${d.dataRoot}/volumes/data1/_data`);
  expect(fs.statSync(v.Mountpoint).isDirectory()).toBe(true);
  expect(d.docker(['volume', 'create', 'data2']).status).toBe(0);
  const ls = d.docker(['volume', 'ls', '--filter', 'label=team=blue', '--format', '{{.Name}}']);
  expect(ls.stdout.trim()).toBe('data1');
  const all = d.docker(['volume', 'ls', '-q']);
  expect(all.stdout.trim().split('\n').sort()).toEqual(['data1', 'data2']);
  // Named volumes stay through a plain prune (API 1.42+), and go with --all.
  expect(d.docker(['volume', 'prune', '-f']).stdout).not.toMatch(/data1/);
  const pruned = d.docker(['volume', 'prune', '-f', '--all']);
  expect(pruned.status, explain(pruned)).toBe(0);
  expect(pruned.stdout).toMatch(/data1/);
  expect(fs.existsSync(v.Mountpoint)).toBe(false);
  for (const bad of ['../etc', 'a/b', '.hidden']) {
    const res = d.docker(['volume', 'create', bad]);
    expect(res.status, explain(res)).toBe(1);
    expect(res.stderr).toMatch(/invalid characters for a local volume name/);
  }
  expect(fs.readdirSync(`${d.dataRoot}/volumes`)).toEqual([]);
  const missing = d.docker(['volume', 'rm', 'nope']);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/no such volume/);
  const opts = await d.request('POST', '/volumes/create', JSON.stringify({ Name: 'x1', DriverOpts: { type: 'nfs' } }));
  expect(opts.status).toBe(400);
  const unknown = await d.request('POST', '/volumes/create', JSON.stringify({ Name: 'x1', Colour: 'red' }));
  expect(unknown.status).toBe(400);
  expect(JSON.parse(unknown.body).message).toBe('volume create: unknown field "Colour"');
  const malformed = await d.request('POST', '/volumes/create', '{"Name": ');
  expect(malformed.status).toBe(400);
  expect(JSON.parse(malformed.body).message).toMatch(/^malformed JSON in the request body/);
  expect(fs.readdirSync(`${d.dataRoot}/volumes`)).toEqual([]);
});

it('creates, lists, inspects and removes networks as CNI networks, and keeps the predefined ones', async () => {
  const ls = d.docker(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
  expect(ls.status, explain(ls)).toBe(0);
  expect(ls.stdout.trim().split('\n')).toEqual(['bridge bridge', 'host host', 'none null']);
  const create = d.docker(['network', 'create', '--subnet', '10.99.7.0/24', '--label', 'project=p1', 'backend']);
  expect(create.status, explain(create)).toBe(0);
  const id = create.stdout.trim();
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  const conflist = JSON.parse(fs.readFileSync(`${ws.path('d', 'cni')}/backend.conflist`, 'utf8'));
  expect(conflist.plugins[0]).toMatchObject({ type: 'bridge', ipam: { ranges: [[{ subnet: '10.99.7.0/24', gateway: '10.99.7.1' }]] } });
  const inspect = d.docker(['network', 'inspect', id.slice(0, 12)]);
  expect(inspect.status, explain(inspect)).toBe(0);
  const [n] = JSON.parse(inspect.stdout);
  expect(n).toMatchObject({ Name: 'backend', Id: id, Driver: 'bridge', Scope: 'local', Labels: { project: 'p1' }, IPAM: { Config: [{ Subnet: '10.99.7.0/24', Gateway: '10.99.7.1' }] } });
  const again = d.docker(['network', 'create', 'backend']);
  expect(again.status).toBe(1);
  expect(again.stderr).toMatch(/network with name backend already exists/);
  const overlap = d.docker(['network', 'create', '--subnet', '10.99.7.128/25', 'other']);
  expect(overlap.status).toBe(1);
  expect(overlap.stderr).toMatch(/overlaps 10.99.7.0\/24 of network "backend"/);
  const predefined = d.docker(['network', 'rm', 'bridge']);
  expect(predefined.status).toBe(1);
  expect(predefined.stderr).toMatch(/bridge is a pre-defined network and cannot be removed/);
  const filtered = d.docker(['network', 'ls', '--filter', 'label=project=p1', '--format', '{{.Name}}']);
  expect(filtered.stdout.trim()).toBe('backend');
  const unknownOption = await d.request('POST', '/networks/create', JSON.stringify({ Name: 'x', Options: { 'com.docker.network.bridge.enable_icc': 'false' } }));
  expect(unknownOption.status).toBe(400);
  expect(fs.existsSync(`${ws.path('d', 'cni')}/x.conflist`)).toBe(false);
  const rm = d.docker(['network', 'rm', 'backend']);
  expect(rm.status, explain(rm)).toBe(0);
  expect(fs.existsSync(`${ws.path('d', 'cni')}/backend.conflist`)).toBe(false);
  const missing = d.docker(['network', 'inspect', 'backend']);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/network backend not found/);
});

it('connects a running container to a second network and disconnects it; a created one joins at start', async () => {
  const image = 'localhost/husk-web:1';
  const load = d.docker(['load', '-i', busyboxImage(ws, image, { 'www/index.html': 'page of a\n' })]);
  expect(load.status, explain(load)).toBe(0);
  for (const [name, subnet] of [['front', '10.99.8.0/24'], ['back', '10.99.9.0/24']]) {
    const res = d.docker(['network', 'create', '--subnet', subnet, name]);
    expect(res.status, explain(res)).toBe(0);
  }
  const ok = (args: string[]) => {
    const res = d.docker(args);
    expect(res.status, explain(res)).toBe(0);
    return res.stdout;
  };
  ok(['run', '-d', '--name', 'web-a', '--network', 'front', image, 'httpd', '-f', '-p', '8080', '-h', '/www']);
  ok(['run', '-d', '--name', 'box-b', '--network', 'back', image, 'sleep', '600']);
  // busybox's own timeout: its wget crashes with -T (Debian's busybox-static 1.35).
  const fetch = (from: string) => d.docker(['exec', from, 'timeout', '3', 'wget', '-qO-', 'http://web-a:8080/']);
  expect(fetch('box-b').status).not.toBe(0);
  // Not by its address either: Docker's networks do not reach each other.
  const addressOfA = ok(['inspect', '--format', '{{.NetworkSettings.Networks.front.IPAddress}}', 'web-a']).trim();
  expect(addressOfA).toMatch(/^10\.99\.8\.\d+$/);
  expect(d.docker(['exec', 'box-b', 'timeout', '3', 'wget', '-qO-', `http://${addressOfA}:8080/`]).status).not.toBe(0);
  ok(['network', 'connect', '--alias', 'bee', 'front', 'box-b']);
  const networks = JSON.parse(ok(['inspect', '--format', '{{json .NetworkSettings.Networks}}', 'box-b']));
  expect(Object.keys(networks).sort()).toEqual(['back', 'front']);
  expect(networks.front.IPAddress).toMatch(/^10\.99\.8\.\d+$/);
  expect(networks.front.Aliases).toContain('bee');
  expect(ok(['exec', 'box-b', 'ip', '-o', '-4', 'addr', 'show', 'eth1'])).toContain(networks.front.IPAddress);
  const fetched = fetch('box-b');
  expect(fetched.stdout, explain(fetched)).toBe('page of a\n');
  expect(ok(['exec', 'web-a', 'cat', '/etc/hosts'])).toMatch(new RegExp(`${networks.front.IPAddress.replace(/\./g, '\\.')}\\s.*\\bbee\\b`));
  const again = d.docker(['network', 'connect', 'front', 'box-b']);
  expect(again.status).toBe(1);
  expect(again.stderr).toMatch(/already exists in network front/);
  const busy = d.docker(['network', 'rm', 'front']);
  expect(busy.status).toBe(1);
  expect(busy.stderr).toMatch(/has active endpoints/);
  ok(['network', 'disconnect', 'front', 'box-b']);
  expect(Object.keys(JSON.parse(ok(['inspect', '--format', '{{json .NetworkSettings.Networks}}', 'box-b'])))).toEqual(['back']);
  expect(d.docker(['exec', 'box-b', 'ip', 'link', 'show', 'eth1']).status).not.toBe(0);
  expect(fetch('box-b').status).not.toBe(0);
  expect(d.docker(['exec', 'box-b', 'timeout', '3', 'wget', '-qO-', `http://${addressOfA}:8080/`]).status).not.toBe(0);
  // Created, then connected: attached to both when it starts.
  ok(['create', '--name', 'box-c', '--network', 'back', image, 'sleep', '600']);
  ok(['network', 'connect', 'front', 'box-c']);
  ok(['start', 'box-c']);
  expect(fetch('box-c').stdout).toBe('page of a\n');
  ok(['rm', '-f', 'web-a', 'box-b', 'box-c']);
  ok(['network', 'rm', 'front', 'back']);
  expect(d.netns!.links().filter((l) => l.startsWith('veth'))).toEqual([]);
});

it('refuses a body too large and a host port in use, in Docker\'s shape, leaving nothing', async () => {
  const huge = await d.request('POST', '/containers/create', JSON.stringify({ Image: 'x', Env: ['A='.padEnd(2 << 20, 'a')] }));
  expect(huge.status).toBe(413);
  expect(JSON.parse(huge.body).message).toMatch(/^request body too large/);
  const image = 'localhost/husk-web:1';
  if (d.docker(['image', 'inspect', image]).status !== 0) {
    const load = d.docker(['load', '-i', busyboxImage(ws, image, { 'www/index.html': 'page\n' })]);
    expect(load.status, explain(load)).toBe(0);
  }
  const first = d.docker(['run', '-d', '--name', 'port-owner', '-p', '18080:8080', image, 'httpd', '-f', '-p', '8080', '-h', '/www']);
  expect(first.status, explain(first)).toBe(0);
  const second = d.docker(['run', '--rm', '-p', '18080:8080', image, 'true']);
  expect(second.status, explain(second)).toBe(125);
  expect(second.stderr).toMatch(/18080/);
  expect(d.docker(['ps', '-aq']).stdout.trim().split('\n')).toHaveLength(1);
  expect(d.docker(['rm', '-f', 'port-owner']).status).toBe(0);
  expect(d.netns!.links().filter((l) => l.startsWith('veth'))).toEqual([]);
});
