// The image store under stress: a pull killed half-way (the next one resumes the download and
// never uses a torn layer), two pulls of the same image at once, remove and prune keeping what
// is shared or in use, and images with many layers.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, expectStatus, isRunc, rt, rtSpawn, stateRoot, tempDir, waitFor } from './harness';
import { buildImage, probeLayer, pushLayout, startRegistry, writeLayout, type BuiltImage, type Entry, type Registry } from './image-fixtures';

afterEach(cleanup);

let registry: Registry;
let big: BuiltImage;
let layoutDir: string;
const bigFiles: Entry[] = [];

beforeAll(async () => {
  // One layer of random (incompressible) data, large enough to stop half-way through, and one
  // with many small files, for an unpack that takes a moment.
  bigFiles.push({ path: 'big/', type: 'directory' }, { path: 'big/random', content: randomBytes(4 * 1024 * 1024) });
  const many: Entry[] = [{ path: 'many/', type: 'directory' }];
  for (let i = 0; i < 3000; i++) many.push({ path: `many/f${i}`, content: `file ${i}\n`.repeat(20) });
  big = await buildImage({ layers: [probeLayer(), { entries: bigFiles }, { entries: many }], config: { Cmd: ['/probe', 'ls', '/many'] } });
  layoutDir = fs.mkdtempSync('/tmp/husk-store-layout-');
  writeLayout(layoutDir, [{ tag: 'big', image: big }]);
  registry = await startRegistry();
  pushLayout(layoutDir, 'big', registry, 'tests/big:1');
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  fs.rmSync(layoutDir, { recursive: true, force: true });
});

const bigLayer = () => [...big.blobs.keys()].find((d) => big.blobs.get(d)!.length > 4 * 1024 * 1024)!;

interface Proxy {
  host: string;
  /** Blob GETs seen: the digest and the Range header. */
  gets: { digest: string; range?: string }[];
  /** Stop sending this blob after `bytes` bytes (the connection stays open, as a stalled network). */
  stall(digest: string | undefined, bytes?: number): void;
  /** Answer blob GETs with a redirect to another host name (localhost) of this proxy, as
   * registries on object storage do; the requests that reach it, with their headers. */
  redirect(on: boolean): void;
  storageGets: http.IncomingHttpHeaders[];
  /** Answer 401 (a Basic challenge) to API requests without an Authorization header. */
  requireAuth(on: boolean): void;
  /** The Authorization headers of the blob GETs that came to the API. */
  blobAuthorizations: (string | undefined)[];
  stalled: boolean;
  close(): Promise<void>;
}

/** An HTTP proxy in front of the registry that can stall a blob half-way. */
async function startProxy(target: Registry): Promise<Proxy> {
  let stallDigest: string | undefined;
  let stallBytes = 0;
  let redirecting = false;
  let authRequired = false;
  const sockets = new Set<net.Socket>();
  const proxy: Proxy = {
    host: '',
    gets: [],
    stalled: false,
    stall(digest, bytes = 0) {
      stallDigest = digest;
      stallBytes = bytes;
    },
    redirect(on) {
      redirecting = on;
    },
    storageGets: [],
    requireAuth(on) {
      authRequired = on;
    },
    blobAuthorizations: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/storage/')) {
      proxy.storageGets.push(req.headers);
      req.url = req.url.slice('/storage'.length);
    } else if (authRequired && !req.headers.authorization) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="proxy"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    } else if (redirecting && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
      proxy.blobAuthorizations.push(req.headers.authorization);
      res.writeHead(307, { location: `http://localhost:${(server.address() as net.AddressInfo).port}/storage${req.url}` });
      res.end();
      return;
    }
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '');
    if (m && req.method === 'GET') proxy.gets.push({ digest: m[1], range: req.headers.range });
    const upstream = http.request({ host: '127.0.0.1', port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (m && m[1] === stallDigest) {
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= stallBytes) return;
          const part = chunk.subarray(0, stallBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= stallBytes) proxy.stalled = true;
        });
        return;
      }
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return proxy;
}

/** A call first, so that a warm server is up (unless HUSK_SERVER=0) for the next to find. */
async function warmServerUp() {
  expectStatus(rt(['list']), 0);
  if (process.env.HUSK_SERVER !== '0') await waitFor('the warm server', () => fs.existsSync(path.join(stateRoot(), '~server.sock')));
}

/** Its exit, or undefined when it still runs after ms. (Its stdout and stderr close only once
 * whoever ran the call, the door's node child or the server's worker, has stopped.) */
function exitWithin(running: { exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }> }, ms: number) {
  return Promise.race([running.exited, new Promise<undefined>((resolve) => setTimeout(resolve, ms))]);
}

function listJson(store: string) {
  return JSON.parse(rt(['image', 'list', '--store', store, '--format', 'json']).stdout);
}

describe.skipIf(isRunc)('interrupted and concurrent pulls', () => {
  it('resumes a download killed half-way with a Range request, and stores nothing unverified', async () => {
    const proxy = await startProxy(registry);
    try {
      const store = tempDir('store-');
      const digest = bigLayer();
      const half = Math.floor(big.blobs.get(digest)!.length / 2);
      proxy.stall(digest, half);
      const first = rtSpawn(['image', 'pull', '--store', store, `${proxy.host}/tests/big:1`]);
      await waitFor('the download to stall', () => proxy.stalled && fs.existsSync(path.join(store, 'tmp', `ingest-sha256-${digest.slice(7)}`)));
      await waitFor('the partial file to hold half the blob', () => fs.statSync(path.join(store, 'tmp', `ingest-sha256-${digest.slice(7)}`)).size === half);
      first.child.kill('SIGKILL');
      await first.exited;
      expect(fs.existsSync(path.join(store, 'blobs', 'sha256', digest.slice(7)))).toBe(false);
      expect(listJson(store)).toEqual([]);

      proxy.stall(undefined);
      const second = rtSpawn(['image', 'pull', '--store', store, `${proxy.host}/tests/big:1`]);
      expect((await second.exited).status).toBe(0);
      const resumed = proxy.gets.filter((g) => g.digest === digest);
      expect(resumed.at(-1)!.range).toBe(`bytes=${half}-`);
      expect(fs.readFileSync(path.join(store, 'blobs', 'sha256', digest.slice(7))).equals(big.blobs.get(digest)!)).toBe(true);
      // Only staging directories of unpacks the kill interrupted may be left; prune clears them.
      expect(fs.readdirSync(path.join(store, 'tmp')).filter((n) => !n.startsWith('layer-'))).toEqual([]);
      expectStatus(rt(['image', 'prune', '--store', store]), 0);
      expect(fs.readdirSync(path.join(store, 'tmp'))).toEqual([]);
      const inspect = JSON.parse(rt(['image', 'inspect', '--store', store, `${proxy.host}/tests/big:1`]).stdout);
      expect(fs.readFileSync(path.join(inspect.layers[1].path, 'big', 'random')).equals(bigFiles[1].content as Buffer)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('an image run that must pull first stops at Ctrl-C, and leaves no container', async () => {
    const proxy = await startProxy(registry);
    try {
      const store = tempDir('store-');
      // The run must still not be served by the warm server, where the door would hold the
      // SIGINT for a container that never comes.
      await warmServerUp();
      proxy.stall(bigLayer(), 1024 * 1024);
      const run = rtSpawn(['image', 'run', '--rm', '-q', '--store', store, `${proxy.host}/tests/big:1`], { detached: true });
      await waitFor('the download to stall', () => proxy.stalled);
      // Ctrl-C on a terminal: SIGINT to the foreground process group.
      process.kill(-run.child.pid!, 'SIGINT');
      const ended = await exitWithin(run, 15_000);
      expect(ended, 'image run still pulling 15 s after SIGINT').toBeDefined();
      expect(ended!.status !== 0 || ended!.signal !== null).toBe(true);
      expect(rt(['list', '-q']).stdout.trim()).toBe('');
      expect(fs.existsSync(path.join(store, 'containers')) ? fs.readdirSync(path.join(store, 'containers')) : []).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('a pull stops at Ctrl-C with a warm server up (which runs it): its locks are let go, and the next pull resumes', async () => {
    const proxy = await startProxy(registry);
    try {
      const store = tempDir('store-');
      await warmServerUp();
      const digest = bigLayer();
      proxy.stall(digest, 1024 * 1024);
      const first = rtSpawn(['image', 'pull', '--store', store, `${proxy.host}/tests/big:1`], { detached: true });
      await waitFor('the download to stall', () => proxy.stalled);
      process.kill(-first.child.pid!, 'SIGINT');
      const ended = await exitWithin(first, 15_000);
      expect(ended, 'image pull still running 15 s after SIGINT').toBeDefined();
      proxy.stall(undefined);
      const second = rtSpawn(['image', 'pull', '--store', store, '-q', `${proxy.host}/tests/big:1`]);
      const done = await exitWithin(second, 30_000);
      expect(done, 'the next pull waited for a lock the stopped one still held').toBeDefined();
      expect(done!.status).toBe(0);
      expect(proxy.gets.filter((g) => g.digest === digest).at(-1)!.range).toMatch(/^bytes=[1-9][0-9]*-$/);
    } finally {
      await proxy.close();
    }
  });

  it('follows blob GETs redirected to another host (object storage), without the registry\'s Authorization', async () => {
    const proxy = await startProxy(registry);
    try {
      proxy.redirect(true);
      proxy.requireAuth(true);
      const config = tempDir('docker-config-');
      fs.writeFileSync(path.join(config, 'config.json'), JSON.stringify({ auths: { [proxy.host]: { auth: Buffer.from('tester:secret').toString('base64') } } }));
      const store = tempDir('store-');
      // (Not rt: the proxy runs in this process, whose loop a synchronous call would block.)
      const pull = rtSpawn(['image', 'pull', '--store', store, '-q', `${proxy.host}/tests/big:1`], { env: { DOCKER_CONFIG: config } });
      expect((await pull.exited).status).toBe(0);
      // The config and three layers: asked of the registry with its credentials, fetched from
      // "storage" without them.
      const basic = `Basic ${Buffer.from('tester:secret').toString('base64')}`;
      expect(proxy.blobAuthorizations).toEqual([basic, basic, basic, basic]);
      expect(proxy.storageGets.length).toBe(4);
      expect(proxy.storageGets.every((h) => h.host?.startsWith('localhost:') && h.authorization === undefined)).toBe(true);
      const inspect = JSON.parse(rt(['image', 'inspect', '--store', store, `${proxy.host}/tests/big:1`]).stdout);
      expect(fs.readFileSync(path.join(inspect.layers[1].path, 'big', 'random')).equals(bigFiles[1].content as Buffer)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('never uses a layer whose unpack was killed: the next pull redoes it', async () => {
    const store = tempDir('store-');
    const src = `oci:${layoutDir}:big`;
    const first = rtSpawn(['image', 'pull', '--store', store, src]);
    // Kill it while a layer is being unpacked (or, if it is too quick, after: either way the
    // next pull must give complete layers).
    await waitFor('an unpack to start', () => first.child.exitCode !== null || (fs.existsSync(path.join(store, 'tmp')) && fs.readdirSync(path.join(store, 'tmp')).some((n) => n.startsWith('layer-'))), 20_000);
    first.child.kill('SIGKILL');
    await first.exited;
    for (const hex of fs.existsSync(path.join(store, 'layers', 'sha256')) ? fs.readdirSync(path.join(store, 'layers', 'sha256')) : []) {
      // Whatever is in layers/ is complete: it has its meta.json, written last.
      expect(fs.existsSync(path.join(store, 'layers', 'sha256', hex, 'meta.json'))).toBe(true);
    }
    expectStatus(rt(['image', 'pull', '--store', store, '-q', src]), 0);
    const run = rt(['image', 'run', '--store', store, '--rm', '-q', src]);
    expectStatus(run, 0);
    expect(run.stdout.split('\n').filter(Boolean)).toHaveLength(3000);
    // The killed unpack's staging directory is never used; prune removes it (a pull only
    // removes those older than a minute, as another pull may have just made one).
    expectStatus(rt(['image', 'prune', '--store', store]), 0);
    expect(fs.readdirSync(path.join(store, 'tmp'))).toEqual([]);
  });

  it('two pulls of the same image at once both succeed and store each layer once', async () => {
    const store = tempDir('store-');
    const a = rtSpawn(['image', 'pull', '--store', store, `${registry.host}/tests/big:1`]);
    const b = rtSpawn(['image', 'pull', '--store', store, `oci:${layoutDir}:big`]);
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    expect(ra.status, a.stderr).toBe(0);
    expect(rb.status, b.stderr).toBe(0);
    expect(fs.readdirSync(path.join(store, 'layers', 'sha256')).sort()).toEqual(big.diffIDs.map((d) => d.slice(7)).sort());
    expect(fs.readdirSync(path.join(store, 'l'))).toHaveLength(3);
    expect(fs.readdirSync(path.join(store, 'tmp'))).toEqual([]);
    const rows = listJson(store);
    expect(rows.map((r: { digest: string }) => r.digest)).toEqual([big.manifestDigest, big.manifestDigest]);
  });
});

describe.skipIf(isRunc)('remove and prune', () => {
  async function twoImages() {
    const base = probeLayer();
    const one = await buildImage({ layers: [base, { entries: [{ path: 'one', content: '1' }] }] });
    const two = await buildImage({ layers: [base, { entries: [{ path: 'two', content: '2' }] }] });
    const dir = tempDir('layout-');
    writeLayout(dir, [{ tag: 'one', image: one }, { tag: 'two', image: two }]);
    return { one, two, src1: `oci:${dir}:one`, src2: `oci:${dir}:two` };
  }

  it('keeps shared layers until the last image using them goes', async () => {
    const { one, two, src1, src2 } = await twoImages();
    const store = tempDir('store-');
    expectStatus(rt(['image', 'pull', '--store', store, '-q', src1]), 0);
    expectStatus(rt(['image', 'pull', '--store', store, '-q', src2]), 0);
    const layers = () => fs.readdirSync(path.join(store, 'layers', 'sha256')).sort();
    expect(layers()).toHaveLength(3);
    const rm1 = rt(['image', 'remove', '--store', store, src1]);
    expectStatus(rm1, 0);
    expect(rm1.stdout).toContain(`Untagged: ${src1}`);
    expect(layers()).toEqual([two.diffIDs[0], two.diffIDs[1]].map((d) => d.slice(7)).sort());
    expect(fs.existsSync(path.join(store, 'blobs', 'sha256', one.manifestDigest.slice(7)))).toBe(false);
    expectStatus(rt(['image', 'remove', '--store', store, two.configDigest.slice(7, 19)]), 0);
    expect(layers()).toEqual([]);
    expect(fs.readdirSync(path.join(store, 'blobs', 'sha256'))).toEqual([]);
    expect(fs.readdirSync(path.join(store, 'l'))).toEqual([]);
    const missing = rt(['image', 'remove', '--store', store, src1]);
    expectStatus(missing, 1);
    expect(missing.stderr).toContain(`no image "${src1}"`);
  });

  it('remove --force untags an image in use; its layers stay until the bundle goes', async () => {
    const { src1 } = await twoImages();
    const store = tempDir('store-');
    const bundle = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', src1, bundle]), 0);
    const refused = rt(['image', 'remove', '--store', store, src1]);
    expectStatus(refused, 1);
    expect(refused.stderr).toContain(`in use by bundle ${bundle}`);
    expectStatus(rt(['image', 'remove', '--store', store, '--force', src1]), 0);
    expect(listJson(store)).toEqual([]);
    expect(fs.readdirSync(path.join(store, 'layers', 'sha256'))).toHaveLength(2);
    expectStatus(rt(['run', '--bundle', bundle, 'c-' + process.pid + '-force']), 0);
    expectStatus(rt(['image', 'unbundle', '--store', store, bundle]), 0);
    const prune = rt(['image', 'prune', '--store', store]);
    expectStatus(prune, 0);
    expect(prune.stdout).toContain('Deleted 2 layers');
    expect(fs.readdirSync(path.join(store, 'layers', 'sha256'))).toEqual([]);
  });

  it('prune -a removes images nothing uses, and prune clears interrupted leftovers', async () => {
    const { src1, src2 } = await twoImages();
    const store = tempDir('store-');
    expectStatus(rt(['image', 'pull', '--store', store, '-q', src1]), 0);
    const bundle = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', src2, bundle]), 0);
    // What a killed pull leaves: a partial download and a staging directory nobody holds.
    fs.writeFileSync(path.join(store, 'tmp', `ingest-sha256-${'a'.repeat(64)}`), 'partial');
    fs.mkdirSync(path.join(store, 'tmp', 'layer-killed'));
    fs.writeFileSync(path.join(store, 'tmp', 'layer-killed', 'half'), 'x');
    const prune = rt(['image', 'prune', '--store', store, '-a']);
    expectStatus(prune, 0);
    expect(prune.stdout).toContain(`Untagged: ${src1}`);
    expect(prune.stdout).not.toContain(`Untagged: ${src2}`);
    expect(fs.readdirSync(path.join(store, 'tmp'))).toEqual([]);
    expect(listJson(store).map((r: { name: string }) => r.name)).toEqual([src2]);
    expectStatus(rt(['image', 'unbundle', '--store', store, bundle]), 0);
  });
});

describe.skipIf(isRunc)('many layers', () => {
  it('mounts an image with 120 layers (more than fit in one page of mount options as full paths)', async () => {
    const layers = [probeLayer([{ path: 'many/', type: 'directory' }])];
    for (let i = 0; i < 119; i++) layers.push({ entries: [{ path: `many/layer${String(i).padStart(3, '0')}`, content: `${i}\n` }] });
    // A later layer replaces a file of an earlier one, and removes another.
    layers.push({ entries: [{ path: 'many/layer000', content: 'replaced\n' }, { path: 'many/.wh.layer001', content: '' }] });
    const image = await buildImage({ layers, config: { Cmd: ['/probe', 'ls', '/many'] } });
    const dir = tempDir('layout-');
    writeLayout(dir, [{ tag: 'many', image }]);
    const store = tempDir('store-');
    const run = rt(['image', 'run', '--store', store, '--rm', '-q', `oci:${dir}:many`], { timeoutMs: 60_000 });
    expectStatus(run, 0);
    const names = run.stdout.split('\n').filter(Boolean);
    expect(names).toHaveLength(118);
    expect(names).not.toContain('layer001');
    const cat = rt(['image', 'run', '--store', store, '--rm', '-q', `oci:${dir}:many`, '/probe', 'cat', '/many/layer000']);
    expect(cat.stdout).toBe('replaced\n');
    const fullPaths = image.diffIDs.map((d) => path.join(store, 'layers', 'sha256', d.slice(7), 'diff')).join(':');
    expect(fullPaths.length).toBeGreaterThan(4096);
  });
});
