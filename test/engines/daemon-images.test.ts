/*
 * `husk daemon`'s image endpoints, driven by the docker CLI (the current one and Debian's
 * 20.10): pull from a local registry (Debian's docker-registry, images pushed with skopeo) with
 * the CLI's own progress display, ls and its filters, inspect, history, tag, rmi, save and load
 * (both ways, and husk's own reader of the archive), prune, events, and the bad requests.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildImage, makeTar, probeLayer, pushLayout, startRegistry, writeLayout, type BuiltImage, type Registry } from '../integration/image-fixtures';
import { DOCKER_CLIS, startHuskDaemon, type HuskDaemon } from './husk-daemon';
import { REPO, Workspace, explain, requireRoot, run, yieldToRunner } from './setup';

requireRoot();

let ws: Workspace;
let d: HuskDaemon;
let registry: Registry;
let one: BuiltImage;
let two: BuiltImage;
/** `127.0.0.1:PORT/husk/probe`: the repository the tests pull from. */
let repo: string;
const started = Math.floor(Date.now() / 1000);

beforeAll(async () => {
  ws = new Workspace('dimages');
  registry = await startRegistry();
  // Two images sharing their base layer (the probe), each with one layer of its own.
  one = await buildImage({ layers: [probeLayer(), { entries: [{ path: 'hello', content: 'one\n' }] }], config: { Cmd: ['/probe', 'report'], Labels: { 'org.husk.test': 'one' } } });
  two = await buildImage({ layers: [probeLayer(), { entries: [{ path: 'hello', content: 'two\n' }] }], config: { Cmd: ['/probe', 'report'], Labels: { 'org.husk.test': 'two' } } });
  const layout = ws.path('layout');
  writeLayout(layout, [{ tag: 'one', image: one }, { tag: 'two', image: two }]);
  pushLayout(layout, 'one', registry, 'husk/probe:1');
  pushLayout(layout, 'two', registry, 'husk/probe:2');
  pushLayout(layout, 'one', registry, 'husk/other:latest');
  repo = `${registry.host}/husk/probe`;
  d = await startHuskDaemon(ws);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  const problems = await ws?.teardown();
  expect(problems ?? []).toEqual([]);
}, 120_000);

/** One raw request on the daemon's socket. */
function request(method: string, url: string, o: { body?: Buffer | string; headers?: Record<string, string | number> } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path: url, headers: o.headers ?? {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

function docker(args: string[], binary = DOCKER_CLIS[0]) {
  const res = d.docker(args, { binary });
  return res;
}

function ok(args: string[], binary = DOCKER_CLIS[0]): string {
  const res = docker(args, binary);
  expect(res.status, explain(res)).toBe(0);
  return res.stdout;
}

/** Nothing a load or pull left behind in the store's tmp/. */
function storeTmp(): string[] {
  return fs.readdirSync(path.join(d.store, 'tmp')).filter((n) => !n.endsWith('.lock'));
}

it('pulls from a registry with the CLI\'s progress display, and says so when the image is up to date', async () => {
  const first = docker(['pull', `${repo}:1`]);
  expect(first.status, explain(first)).toBe(0);
  const out = first.stdout;
  expect(out).toContain('1: Pulling from husk/probe');
  expect(out).toMatch(/[0-9a-f]{12}: Pull complete/);
  expect(out).toMatch(/Digest: sha256:[0-9a-f]{64}/);
  expect(out).toContain(`Status: Downloaded newer image for ${repo}:1`);
  expect(out.trim().split('\n').at(-1)).toBe(`${repo}:1`);
  await yieldToRunner();
  // The base layer is shared with :1.
  const cli = DOCKER_CLIS.at(-1)!;
  const second = docker(['pull', `${repo}:2`], cli);
  expect(second.status, explain(second)).toBe(0);
  expect(second.stdout).toMatch(/[0-9a-f]{12}: Already exists/);
  expect(second.stdout).toMatch(/[0-9a-f]{12}: Pull complete/);
  const again = docker(['pull', `${repo}:1`], cli);
  expect(again.status, explain(again)).toBe(0);
  expect(again.stdout).toContain(`Status: Image is up to date for ${repo}:1`);
});

it('streams dockerd\'s JSON progress messages, one per line', async () => {
  const res = await request('POST', `/v1.43/images/create?fromImage=${encodeURIComponent(`${registry.host}/husk/other`)}&tag=latest`, { headers: { 'X-Registry-Auth': Buffer.from('{}').toString('base64url') } });
  expect(res.status).toBe(200);
  const lines = res.body.trim().split(/\r?\n/).map((l) => JSON.parse(l));
  expect(lines[0]).toEqual({ status: 'Pulling from husk/other', id: 'latest' });
  // The same image as :1: every layer is there already.
  expect(lines.filter((l) => l.status === 'Already exists')).toHaveLength(2);
  expect(lines.at(-2).status).toMatch(/^Digest: sha256:/);
  expect(lines.at(-1).status).toBe(`Status: Downloaded newer image for ${registry.host}/husk/other:latest`);
  await request('DELETE', `/images/${registry.host}/husk/other:latest`);
});

it('answers 404 before the stream for an image the registry does not have, and 400 for a bad name', async () => {
  for (const cli of DOCKER_CLIS) {
    const res = docker(['pull', `${repo}:nosuch`], cli);
    expect(res.status, explain(res)).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`manifest for ${repo.replace(/[.]/g, '\\.')}:nosuch not found`));
  }
  const raw = await request('POST', `/images/create?fromImage=${encodeURIComponent(`${registry.host}/husk/nothing`)}&tag=1`);
  expect(raw.status).toBe(404);
  expect(JSON.parse(raw.body).message).toMatch(/not found/);
  const bad = await request('POST', '/images/create?fromImage=Bad..Name&tag=1');
  expect(bad.status).toBe(400);
  expect(JSON.parse(bad.body).message).toMatch(/invalid reference format/);
  const src = await request('POST', '/images/create?fromSrc=-');
  expect(src.status).toBe(501);
  expect(JSON.parse(src.body).message).toMatch(/docker load/);
  expect(storeTmp()).toEqual([]);
});

it('pulls from a registry that wants a password with the credentials the CLI sends (X-Registry-Auth)', async () => {
  const locked = await startRegistry({ htpasswd: { user: 'alice', password: 'secret' } });
  try {
    pushLayout(ws.path('layout'), 'one', locked, 'private/probe:1', 'alice:secret');
    const ref = `${locked.host}/private/probe:1`;
    const anonymous = docker(['pull', ref]);
    expect(anonymous.status, explain(anonymous)).toBe(1);
    expect(anonymous.stderr).toMatch(/user name and password \(log in with `docker login/);
    // What `docker login` leaves in the CLI's config: the CLI sends it along with the pull.
    const config = ws.mkdir('d', 'docker-config-alice');
    fs.writeFileSync(path.join(config, 'config.json'), JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from('alice:secret').toString('base64') } } }));
    for (const cli of DOCKER_CLIS) {
      const res = run([cli, 'pull', ref], { env: { ...d.env, DOCKER_CONFIG: config } });
      expect(res.status, explain(res)).toBe(0);
      expect(res.stdout).toContain(ref);
    }
    const wrong = await request('POST', `/images/create?fromImage=${encodeURIComponent(`${locked.host}/private/probe`)}&tag=2`, { headers: { 'X-Registry-Auth': Buffer.from(JSON.stringify({ username: 'alice', password: 'wrong' })).toString('base64url') } });
    expect(wrong.status).toBe(500);
    expect(JSON.parse(wrong.body).message).toMatch(/unauthorized/);
    ok(['rmi', ref]);
  } finally {
    await locked.stop();
  }
});

it('lists images with their tags, digests, sizes and labels, filtered', async () => {
  for (const cli of DOCKER_CLIS) {
    const ls = ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], cli);
    expect(ls).toContain(`${repo}:1 ${one.configDigest.slice(7, 19)}`);
    expect(ls).toContain(`${repo}:2 ${two.configDigest.slice(7, 19)}`);
  }
  const digests = ok(['images', '--digests', '--format', '{{.Tag}} {{.Digest}}', repo]);
  expect(digests).toContain(`1 ${one.manifestDigest}`);
  const byLabel = ok(['images', '-q', '--no-trunc', '--filter', 'label=org.husk.test=two']);
  expect(byLabel.trim()).toBe(two.configDigest);
  const byReference = ok(['images', '--format', '{{.Tag}}', '--filter', `reference=${repo}:1`]);
  expect(byReference.trim()).toBe('1');
  const byGlob = ok(['images', '--format', '{{.Tag}}', '--filter', `reference=*/husk/*:2`]);
  expect(byGlob.trim()).toBe('2');
  const raw = JSON.parse((await request('GET', '/images/json')).body);
  const entry = raw.find((i: { Id: string }) => i.Id === one.configDigest);
  expect(entry).toMatchObject({ RepoTags: [`${repo}:1`], RepoDigests: [`${repo}@${one.manifestDigest}`], Created: Date.parse('2024-01-02T03:04:05Z') / 1000, Labels: { 'org.husk.test': 'one' } });
  expect(entry.Size).toBeGreaterThan(1000);
  const bad = await request('GET', `/images/json?filters=${encodeURIComponent('{"colour":["red"]}')}`);
  expect(bad.status).toBe(400);
});

it('inspects an image by name, ID and ID prefix, and shows its history', () => {
  for (const cli of DOCKER_CLIS) {
    for (const name of [`${repo}:1`, one.configDigest, one.configDigest.slice(7, 19)]) {
      const out = ok(['image', 'inspect', '--format', '{{.Id}} {{.Os}}/{{.Architecture}} {{json .RootFS.Layers}} {{json .Config.Cmd}} {{.Parent}}|', name], cli);
      expect(out.trim()).toBe(`${one.configDigest} linux/amd64 ${JSON.stringify(one.diffIDs)} ["/probe","report"] |`);
    }
    const history = ok(['history', '--no-trunc', '--format', '{{.ID}} {{.CreatedBy}}', `${repo}:1`], cli);
    expect(history.trim().split('\n')).toEqual([`${one.configDigest} husk tests`, '<missing> husk tests']);
  }
  const missing = docker(['image', 'inspect', 'nosuch:1']);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/No such image: nosuch:1/);
});

it('tags (names with slashes and ports too) and removes tags, then the image', async () => {
  ok(['tag', `${repo}:1`, 'localhost:5000/a/b:t']);
  ok(['tag', `${repo}:1`, 'plain']);
  expect(ok(['image', 'inspect', '--format', '{{.Id}}', 'localhost:5000/a/b:t']).trim()).toBe(one.configDigest);
  expect(ok(['image', 'inspect', '--format', '{{json .RepoTags}}', 'plain:latest']).trim()).toBe(JSON.stringify([`${repo}:1`, 'localhost:5000/a/b:t', 'plain:latest'].sort()));
  const byId = docker(['rmi', one.configDigest.slice(7, 19)]);
  expect(byId.status, explain(byId)).toBe(1);
  expect(byId.stderr).toMatch(/unable to delete [0-9a-f]{12} \(must be forced\) - image is referenced in multiple repositories/);
  expect(ok(['rmi', 'localhost:5000/a/b:t']).trim()).toBe('Untagged: localhost:5000/a/b:t');
  expect(ok(['rmi', 'plain']).trim()).toBe('Untagged: plain:latest');
  const missing = docker(['rmi', 'nosuch']);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/No such image: nosuch/);
  // A bundle husk made from the image (a container's rootfs): the last name stays, forced or not.
  const husk = path.join(REPO, 'bin', 'husk');
  const bundle = ws.path('bundle');
  const made = run([husk, 'image', 'bundle', '--store', d.store, `${repo}:1`, bundle]);
  expect(made.status, explain(made)).toBe(0);
  try {
    const inUse = docker(['rmi', `${repo}:1`]);
    expect(inUse.status, explain(inUse)).toBe(1);
    expect(inUse.stderr).toContain(`conflict: unable to remove repository reference "${repo}:1" (must force) - bundle ${bundle} is using its referenced image ${one.configDigest.slice(7, 19)}`);
    expect(docker(['rmi', one.configDigest.slice(7, 19)]).stderr).toMatch(/\(cannot be forced\) - bundle/);
    expect(ok(['image', 'prune', '-a', '-f', '--filter', 'label=org.husk.test=one'])).not.toContain(one.configDigest);
  } finally {
    const gone = run([husk, 'image', 'unbundle', '--store', d.store, bundle]);
    expect(gone.status, explain(gone)).toBe(0);
  }
  const badTag = await request('POST', `/images/${repo}:1/tag?repo=UPPER&tag=x`);
  expect(badTag.status).toBe(400);
});

it('saves and loads back (docker save | docker load), with husk reading the archive too', async () => {
  const archive = ws.path('saved.tar');
  for (const cli of DOCKER_CLIS) {
    ok(['save', '-o', archive, `${repo}:1`, `${repo}:2`], cli);
    await yieldToRunner();
    const removed = ok(['rmi', `${repo}:2`], cli);
    expect(removed).toContain(`Untagged: ${repo}:2`);
    expect(removed).toContain(`Deleted: ${two.configDigest}`);
    const loaded = ok(['load', '-i', archive], cli);
    expect(loaded).toContain(`Loaded image: ${repo}:1`);
    expect(loaded).toContain(`Loaded image: ${repo}:2`);
    expect(ok(['image', 'inspect', '--format', '{{.Id}}', `${repo}:2`], cli).trim()).toBe(two.configDigest);
    await yieldToRunner();
  }
  // A pipe, as users write it.
  const piped = run(['sh', '-c', `${DOCKER_CLIS[0]} save ${repo}:1 | ${DOCKER_CLIS[0]} load`], { env: d.env });
  expect(piped.status, explain(piped)).toBe(0);
  expect(piped.stdout).toContain(`Loaded image: ${repo}:1`);
  // A reader that stops early: the daemon lives on, and lets go of the store.
  const cut = run(['sh', '-c', `${DOCKER_CLIS[0]} save ${repo}:1 | head -c 1000 | wc -c`], { env: d.env });
  expect(cut.stdout.trim(), explain(cut)).toBe('1000');
  ok(['tag', `${repo}:1`, 'cut:1']);
  expect(ok(['rmi', 'cut:1']).trim()).toBe('Untagged: cut:1');
  // By ID: no tags in the archive; it loads as the same image.
  const byId = ws.path('by-id.tar');
  ok(['save', '-o', byId, two.configDigest]);
  const loadedById = ok(['load', '-i', byId]);
  expect(loadedById).toContain(`Loaded image ID: ${two.configDigest}`);
  // husk's own reader of docker archives.
  const store = ws.mkdir('husk-store');
  const husk = run([path.join(REPO, 'bin', 'husk'), 'image', 'pull', '--store', store, `docker-archive:${archive}:${repo}:2`]);
  expect(husk.status, explain(husk)).toBe(0);
  const inspect = run([path.join(REPO, 'bin', 'husk'), 'image', 'inspect', '--store', store, `${repo}:2`]);
  expect(inspect.status, explain(inspect)).toBe(0);
  expect(JSON.parse(inspect.stdout).id).toBe(two.configDigest);
  expect(storeTmp()).toEqual([]);
});

it('loads an OCI archive, named by a full reference in its index', () => {
  const layout = ws.path('oci-layout');
  writeLayout(layout, [{ tag: 'localhost/husk/oci:1', image: two }]);
  const archive = ws.path('oci.tar');
  const tarred = run(['tar', '-C', layout, '-cf', archive, '.']);
  expect(tarred.status, explain(tarred)).toBe(0);
  expect(ok(['load', '-i', archive]).trim()).toBe('Loaded image: localhost/husk/oci:1');
  expect(ok(['image', 'inspect', '--format', '{{.Id}}', 'localhost/husk/oci:1']).trim()).toBe(two.configDigest);
  ok(['rmi', 'localhost/husk/oci:1']);
  expect(storeTmp()).toEqual([]);
});

it('refuses archives that escape, are not archives, or are too big, and leaves nothing behind', async () => {
  const escaping = await makeTar([{ path: '../escape', content: 'x' }, { path: 'manifest.json', content: '[]' }]);
  const res = await request('POST', '/images/load?quiet=1', { body: escaping, headers: { 'Content-Type': 'application/x-tar' } });
  expect(res.status).toBe(400);
  expect(JSON.parse(res.body).message).toMatch(/"\.\.\/escape" points outside the archive/);
  const junk = await request('POST', '/images/load', { body: 'not a tar at all'.repeat(100) });
  expect(junk.status).toBe(400);
  expect(JSON.parse(junk.body).message).toMatch(/image archive/);
  const huge = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method: 'POST', path: '/images/load', headers: { 'Content-Length': String(2 ** 50) } }, (r) => {
      let text = '';
      r.on('data', (c) => (text += c));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.write('x'.repeat(1024));
  });
  expect(huge.status).toBe(413);
  expect(JSON.parse(huge.body).message).toMatch(/image archive too large/);
  // An archive whose layer is not the one its config names: no image, no blobs left.
  const broken = await makeTar([
    { path: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: ['broken:1'], Layers: ['l.tar'] }]) },
    { path: 'c.json', content: JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } }) },
    { path: 'l.tar', content: await makeTar([{ path: 'x', content: 'y' }]) },
  ]);
  const blobsBefore = fs.readdirSync(path.join(d.store, 'blobs', 'sha256')).length;
  const brokenRes = await request('POST', '/images/load?quiet=1', { body: broken });
  expect(brokenRes.status).toBe(400);
  expect(JSON.parse(brokenRes.body).message).toMatch(/^image archive: image 1: layer sha256:[0-9a-f]{64}: the uncompressed layer's digest is sha256:[0-9a-f]{64}, but the image config says sha256:0{64}$/);
  // Without quiet the layer's progress has started the stream: the error comes in it.
  const brokenStream = await request('POST', '/images/load?quiet=0', { body: broken });
  expect(brokenStream.status).toBe(200);
  const last = JSON.parse(brokenStream.body.trim().split(/\r?\n/).at(-1)!);
  expect(last.errorDetail.message).toMatch(/^image archive: image 1: .*but the image config says/);
  expect(brokenStream.body).toContain('"status":"Loading layer"');
  expect(docker(['image', 'inspect', 'broken:1']).status).toBe(1);
  expect(fs.readdirSync(path.join(d.store, 'blobs', 'sha256')).length).toBe(blobsBefore);
  expect(storeTmp()).toEqual([]);
});

it('keeps an image that lost its tag as dangling, and prunes it; prune -a removes the rest', () => {
  // :2 now names :1's image; the old :2 keeps no name.
  ok(['tag', `${repo}:1`, `${repo}:2`]);
  const dangling = ok(['images', '-q', '--no-trunc', '--filter', 'dangling=true']);
  expect(dangling.trim()).toBe(two.configDigest);
  expect(ok(['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'dangling=true']).trim()).toBe('<none>:<none>');
  const pruned = ok(['image', 'prune', '-f']);
  expect(pruned).toContain(`deleted: ${two.configDigest}`);
  expect(pruned).toMatch(/Total reclaimed space: [0-9.]+k?B/);
  expect(ok(['images', '-q', '--filter', 'dangling=true']).trim()).toBe('');
  const all = ok(['image', 'prune', '-a', '-f']);
  expect(all).toContain(`untagged: ${repo}:1`);
  expect(ok(['images', '-q']).trim()).toBe('');
});

/** python3-docker (Debian's, or one on python3's path), when there is one. */
const pythonDocker = run(['python3', '-c', 'import docker']).status === 0;

it.skipIf(!pythonDocker)('serves python3-docker: pull with a decoded stream, list, tag, save, load, remove', () => {
  const script = `
import docker, json, sys
c = docker.DockerClient(base_url='unix://${d.socket}', timeout=60)
statuses = [m.get('status', '') for m in c.api.pull('${repo}', tag='1', stream=True, decode=True)]
img = c.images.get('${repo}:1')
img.tag('py/probe', 'x')
data = b''.join(img.save(named=True))
c.images.remove('py/probe:x')
loaded = c.images.load(data)
try:
    c.images.get('nosuch:1')
    missing = None
except docker.errors.ImageNotFound as e:
    missing = e.explanation
print(json.dumps({'statuses': statuses, 'id': img.id, 'tags': sorted(t for i in c.images.list() for t in i.tags), 'loaded': [i.id for i in loaded], 'missing': missing}))
`;
  const res = run(['python3', '-c', script]);
  expect(res.status, explain(res)).toBe(0);
  const out = JSON.parse(res.stdout);
  expect(out.statuses[0]).toBe('Pulling from husk/probe');
  expect(out.statuses.at(-1)).toMatch(/^Status: (Image is up to date|Downloaded newer image) for /);
  expect(out.id).toBe(one.configDigest);
  expect(out.tags).toContain(`${repo}:1`);
  expect(out.tags).not.toContain('py/probe:x');
  expect(out.loaded).toEqual([one.configDigest]);
  expect(out.missing).toBe('No such image: nosuch:1');
});

it('reports pull, tag, untag, delete, load and save as image events', () => {
  const events = ok(['events', '--since', String(started), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=image', '--format', '{{.Action}}']);
  const actions = new Set(events.trim().split('\n'));
  for (const action of ['pull', 'tag', 'untag', 'delete', 'load', 'save']) expect(actions).toContain(action);
});
