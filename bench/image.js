#!/usr/bin/env node
// npm run bench (second part): husk's image side against the tools people compare it with,
// in one run, as ratios.
//  - unpack: one large layer (a Debian 12 minbase made with debootstrap, tarred and gzipped)
//    unpacked by husk (the overlay unpack of `husk image pull`, called directly, and the whole
//    `husk image pull oci:LAYOUT` from a local OCI layout: the same command as a pull, without
//    the network), by `umoci unpack` (the whole image -> bundle) and by `tar -xzf` (GNU tar
//    with gzip).
//  - pull: the same image pulled from Debian's docker-registry on 127.0.0.1 by `husk image pull`
//    (download, verify and unpack) and copied by `skopeo copy` to an OCI layout (download and
//    verify only: skopeo does not unpack).
//  - run: `husk image run --rm IMAGE true` against `podman run --rm` of the same layer.
//  - five layers at once against the same five pulled one after another; the peak memory of a
//    pull of a 1 GiB layer.
// The tools take turns within each round, so that what drifts on the machine meets them all.
// Every timed run writes into a new directory after a `sync` (not timed), on a fresh ext4 of
// the bench's own (a sparse file in the cache, loop-mounted, removed at the end), where
// nothing is removed until the end: this VM's root filesystem (ext4 without a journal) skips
// recently freed inodes when it allocates, so files created in the minutes after thousands
// were removed (the last bench's, the last round's) cost several times more (ext4's
// recently_deleted()); the figures moved by half from one run to the next.
// The debootstrap rootfs, its layer and the OCI layout are cached in /var/cache/husk-bench, so
// reruns take seconds. Needs root, a built husk (dist/), and Debian's debootstrap, umoci,
// skopeo and docker-registry.
'use strict';
const { spawn, spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const lib = require('./lib');

const REPO = path.join(__dirname, '..');
const HUSK = path.join(REPO, 'bin', 'husk');
const CACHE = process.env.HUSK_BENCH_CACHE || '/var/cache/husk-bench';
const ROUNDS = Number(process.env.BENCH_IMAGE_ROUNDS || 5);
const MIRROR = process.env.HUSK_BENCH_MIRROR || 'http://deb.debian.org/debian';
// Every husk call gets a --root of the bench's own: with the front door, a call in the default
// /run/husk would start (or be served by) a warm server there, which may be another checkout's.
const STATE_ROOT = path.join(CACHE, `state-${process.pid}`);
const huskArgs = (...args) => ['--root', STATE_ROOT, ...args];

function which(name) {
  for (const dir of (process.env.PATH || '').split(':')) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.status}): ${(res.stderr || '').slice(-2000)}`);
  return res;
}

const sha256 = (data) => `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;

function fileDigest(file) {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n <= 0) break;
    hash.update(buf.subarray(0, n));
  }
  fs.closeSync(fd);
  return `sha256:${hash.digest('hex')}`;
}

/** The debootstrap rootfs, its gzipped layer and an OCI layout holding it (cached). */
function prepare() {
  const layout = path.join(CACHE, 'layout');
  if (fs.existsSync(path.join(layout, 'index.json'))) return layout;
  fs.mkdirSync(CACHE, { recursive: true });
  const rootfs = path.join(CACHE, 'rootfs');
  if (!fs.existsSync(path.join(rootfs, 'etc', 'debian_version'))) {
    if (!which('debootstrap')) throw new Error('debootstrap is not installed (apt-get install debootstrap)');
    const tmp = `${rootfs}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    process.stderr.write(`bench: debootstrap --variant=minbase bookworm (once; cached in ${CACHE})\n`);
    run('debootstrap', ['--variant=minbase', 'bookworm', tmp, MIRROR]);
    fs.rmSync(path.join(tmp, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true });
    fs.mkdirSync(path.join(tmp, 'var', 'cache', 'apt', 'archives', 'partial'), { recursive: true });
    fs.renameSync(tmp, rootfs);
  }
  writeLayout(layout, [tarLayer(['-C', rootfs, '.'], '-6')], 'minbase');
  return layout;
}

/** A gzipped layer made by `tar -c ARGS` in CACHE: its file and the digest of its tar (diffID). */
function tarLayer(tarArgs, level) {
  const tarFile = path.join(CACHE, 'layer.tar');
  run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-cf', tarFile, ...tarArgs]);
  const diffID = fileDigest(tarFile);
  const gz = path.join(CACHE, 'layer.tar.gz');
  run('sh', ['-c', `gzip ${level} -c ${JSON.stringify(tarFile)} > ${JSON.stringify(gz)}`]);
  fs.rmSync(tarFile);
  return { gz, diffID };
}

/** An OCI layout at `layout` (made in a temporary directory and renamed) with one image of these layers. */
function writeLayout(layout, layers, tag) {
  const tmpLayout = `${layout}.tmp`;
  fs.rmSync(tmpLayout, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmpLayout, 'blobs', 'sha256'), { recursive: true });
  const descriptors = layers.map(({ gz }) => {
    const digest = fileDigest(gz);
    const blob = path.join(tmpLayout, 'blobs', 'sha256', digest.slice(7));
    fs.renameSync(gz, blob);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: fs.statSync(blob).size };
  });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: descriptors,
  }));
  fs.writeFileSync(path.join(tmpLayout, 'blobs', 'sha256', sha256(config).slice(7)), config);
  fs.writeFileSync(path.join(tmpLayout, 'blobs', 'sha256', sha256(manifest).slice(7)), manifest);
  fs.writeFileSync(path.join(tmpLayout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(tmpLayout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
  fs.rmSync(layout, { recursive: true, force: true });
  fs.renameSync(tmpLayout, layout);
  return layout;
}

/** A fresh ext4 (24 GiB sparse file in CACHE, loop-mounted) to work in; release() removes it. */
function scratchFilesystem() {
  const image = path.join(CACHE, `scratch-${process.pid}.img`);
  const dir = path.join(CACHE, `run-${process.pid}`);
  fs.mkdirSync(dir);
  run('truncate', ['-s', '24G', image]);
  run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  run('mount', ['-o', 'loop', image, dir]);
  return {
    dir,
    release() {
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
      fs.rmSync(image, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A layer holding one file of `mb` MiB of random bytes (incompressible), cached. */
function randomLayer(name, mb) {
  const layout = path.join(CACHE, name);
  if (fs.existsSync(path.join(layout, 'index.json'))) return layout;
  const dir = path.join(CACHE, `${name}.rootfs`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  run('sh', ['-c', `head -c ${mb}M /dev/urandom > ${JSON.stringify(path.join(dir, 'data'))}`]);
  writeLayout(layout, [tarLayer(['-C', dir, '.'], '-1')], name);
  fs.rmSync(dir, { recursive: true, force: true });
  return layout;
}

/** Five layers of random data as one image (five-layer) and as five one-layer images. */
function fiveLayers() {
  const layout = path.join(CACHE, 'five');
  const singles = [0, 1, 2, 3, 4].map((i) => randomLayer(`single-${i}`, 12));
  if (!fs.existsSync(path.join(layout, 'index.json'))) {
    const layers = singles.map((single) => {
      const index = JSON.parse(fs.readFileSync(path.join(single, 'index.json'), 'utf8'));
      const manifest = JSON.parse(fs.readFileSync(path.join(single, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
      const config = JSON.parse(fs.readFileSync(path.join(single, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
      const gz = path.join(CACHE, `five-${manifest.layers[0].digest.slice(7, 19)}.gz`);
      fs.copyFileSync(path.join(single, 'blobs', 'sha256', manifest.layers[0].digest.slice(7)), gz);
      return { gz, diffID: config.rootfs.diff_ids[0] };
    });
    writeLayout(layout, layers, 'five');
  }
  return { layout, singles };
}

/** `husk image pull` of ref into a fresh store: its time and its peak RSS (VmHWM, from GNU time). */
async function pullPeak(ref, store) {
  const out = path.join(store, '..', `time-${crypto.randomBytes(4).toString('hex')}`);
  const t0 = process.hrtime.bigint();
  // The node process that pulls, timed by GNU time itself: through the front door, GNU time
  // would see only the door (the one-shot node child it starts is not one GNU time waits for).
  await spawnAsync('/usr/bin/time', ['-f', '%M', '-o', out, process.execPath, path.join(REPO, 'dist', 'cli', 'main.js'), ...huskArgs('image', 'pull', '--store', store, '-q', ref)]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const kb = Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop());
  fs.rmSync(out, { force: true });
  return { ms, rssMB: kb / 1024 };
}

function layerBlob(layout) {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  return path.join(layout, 'blobs', 'sha256', manifest.layers[0].digest.slice(7));
}

/**
 * Times each step once a round, the steps taking turns, for `rounds` rounds. A step is
 * { label, setup?, run(ctx, round) }: setup (not timed) makes its context, then `sync`, then run
 * is timed. Returns { label: { label, median, min } }.
 */
async function timeRounds(rounds, steps) {
  const samples = Object.fromEntries(steps.map((st) => [st.label, []]));
  for (let i = 0; i < rounds; i++) {
    for (const step of steps) {
      const ctx = step.setup ? step.setup(i) : undefined;
      spawnSync('sync');
      const t0 = process.hrtime.bigint();
      await step.run(ctx, i);
      samples[step.label].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([label, list]) => {
    list.sort((a, b) => a - b);
    return [label, { label, median: list[Math.floor(list.length / 2)], min: list[0] }];
  }));
}

function spawnAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-1000)}`))));
  });
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function startRegistry(dir) {
  const port = await freePort();
  const config = path.join(dir, 'registry.yml');
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'registry')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const child = spawn(which('docker-registry'), ['serve', config], { stdio: 'ignore' });
  for (let i = 0; i < 150; i++) {
    const ok = await new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/v2/' }, (res) => { res.resume(); resolve(true); }).on('error', () => resolve(false));
    });
    if (ok) return { host: `127.0.0.1:${port}`, stop: () => new Promise((resolve) => { child.on('exit', resolve); child.kill('SIGTERM'); }) };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('docker-registry did not start');
}

function row(name, r, base) {
  return `  ${name.padEnd(46)} ${(r.median / 1000).toFixed(2).padStart(7)} s   (min ${(r.min / 1000).toFixed(2)} s)${base ? `   ${(r.median / base.median).toFixed(2)}x` : ''}`;
}

/**
 * `podman run --rm` arguments that run here, or why none does. Podman's default rlimits are
 * above this VM's hard limits (whose bounding set lacks CAP_SYS_RESOURCE), so the bench's own
 * limits are passed; its default runtime (crun) refuses this host's hybrid cgroup layout, so
 * runc is tried next.
 */
function podmanRunArgs(image) {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const soft = (name) => Number((new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(limits) || [])[1]);
  const ulimits = ['--ulimit', `nofile=${soft('Max open files')}:${soft('Max open files')}`, '--ulimit', `nproc=${Math.min(32768, soft('Max processes'))}:${Math.min(32768, soft('Max processes'))}`];
  let failure;
  for (const runtime of [undefined, 'runc']) {
    const args = ['run', '--rm', '--net', 'none', ...(runtime ? ['--runtime', runtime] : []), ...ulimits, image, 'true'];
    // The first run also warms Podman (it sets up its state).
    const res = spawnSync('podman', args, { encoding: 'utf8' });
    if (res.status === 0) return { args, note: runtime ? ` (--runtime ${runtime})` : '' };
    failure = (res.stderr || '').trim().split('\n').pop();
  }
  return { failure };
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  for (const tool of ['umoci', 'skopeo', 'docker-registry', 'tar']) {
    if (!which(tool)) throw new Error(`bench: ${tool} is not installed (apt-get install ${tool === 'docker-registry' ? 'docker-registry' : tool})`);
  }
  const { unpackLayer } = require(path.join(REPO, 'dist', 'image', 'unpack.js'));
  fs.mkdirSync(STATE_ROOT, { recursive: true });
  const layout = prepare();
  const blob = layerBlob(layout);
  const scratch = scratchFilesystem();
  const work = scratch.dir;
  const fresh = (name) => () => {
    const dir = path.join(work, `${name}-${crypto.randomBytes(4).toString('hex')}`);
    fs.mkdirSync(dir);
    return dir;
  };
  const remove = (dir) => fs.rmSync(dir, { recursive: true, force: true });
  let registry;
  const ratio = (a, b) => a.median / b.median;
  const tarArgs = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xzf', blob, '-C'];
  try {
    const size = fs.statSync(blob).size;
    console.log(`image benchmark: Debian 12 minbase, one layer of ${(size / 1e6).toFixed(1)} MB gzip; ${ROUNDS} rounds, medians`);
    registry = await startRegistry(work);
    run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:minbase`, `docker://${registry.host}/bench/minbase:1`]);
    const ref = `${registry.host}/bench/minbase:1`;

    const t = await timeRounds(ROUNDS, [
      { label: 'tar', setup: fresh('tar'), run: (dir) => spawnAsync('tar', [...tarArgs, dir]) },
      { label: 'husk', setup: fresh('husk'), run: (dir) => unpackLayer(blob, dir, { mode: 'overlay', what: 'bench layer' }) },
      { label: 'huskLayout', setup: fresh('layout-store'), run: (dir) => spawnAsync(HUSK, huskArgs('image', 'pull', '--store', dir, '-q', `oci:${layout}:minbase`)) },
      { label: 'umoci', setup: () => path.join(work, `umoci-${crypto.randomBytes(4).toString('hex')}`), run: (dir) => spawnAsync('umoci', ['unpack', '--image', `${layout}:minbase`, dir]) },
      { label: 'skopeo', setup: fresh('skopeo'), run: (dir) => spawnAsync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:x`]) },
      {
        label: 'skopeoUmoci',
        setup: fresh('skopeo-umoci'),
        run: async (dir) => {
          await spawnAsync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:x`]);
          await spawnAsync('umoci', ['unpack', '--image', `${dir}/layout:x`, `${dir}/bundle`]);
        },
      },
      { label: 'pull', setup: fresh('store'), run: (dir) => spawnAsync(HUSK, huskArgs('image', 'pull', '--store', dir, '-q', ref)) },
    ]);
    console.log('unpack');
    console.log(row('tar -xzf (GNU tar + gzip)', t.tar));
    console.log(row('umoci unpack', t.umoci));
    console.log(row('husk (unpack into a layer directory)', t.husk));
    console.log(row('husk image pull oci:LAYOUT (the command, no network)', t.huskLayout));
    console.log(`  ratios: husk / tar -x = ${ratio(t.husk, t.tar).toFixed(2)}x, husk / umoci = ${ratio(t.husk, t.umoci).toFixed(2)}x`);
    lib.record({ figure: 'unpack one layer: husk / tar -xzf', path: 'unpackLayer vs GNU tar', husk: t.husk.median / 1000, runc: t.tar.median / 1000, unit: 's', rounds: ROUNDS, target: '<= 1.0x tar', met: ratio(t.husk, t.tar) <= 1.0 });
    console.log('pull from docker-registry on 127.0.0.1');
    console.log(row('skopeo copy (download + verify)', t.skopeo));
    console.log(row('skopeo copy + umoci unpack', t.skopeoUmoci));
    console.log(row('husk image pull (download + verify + unpack)', t.pull));
    console.log(`  ratios: husk pull / skopeo copy = ${ratio(t.pull, t.skopeo).toFixed(2)}x (skopeo does not unpack), husk pull / (skopeo copy + umoci unpack) = ${ratio(t.pull, t.skopeoUmoci).toFixed(2)}x, husk pull / husk pull oci:LAYOUT = ${ratio(t.pull, t.huskLayout).toFixed(2)}x, husk pull / husk unpack = ${ratio(t.pull, t.husk).toFixed(2)}x`);
    lib.record({ figure: 'pull: husk / the same command from a local layout', path: 'image pull REF vs oci:LAYOUT', husk: t.pull.median / 1000, runc: t.huskLayout.median / 1000, unit: 's', rounds: ROUNDS, target: '<= 1.1x', met: ratio(t.pull, t.huskLayout) <= 1.1 });
    lib.record({ figure: 'pull: husk / skopeo copy + umoci unpack', path: 'image pull vs skopeo+umoci', husk: t.pull.median / 1000, runc: t.skopeoUmoci.median / 1000, unit: 's', rounds: ROUNDS, target: '<= 0.5x', met: ratio(t.pull, t.skopeoUmoci) <= 0.5 });

    // Run with the image already stored: `husk image run --rm IMAGE true` (bundle, overlay
    // mount, container, removal) against `podman run --rm` of the same layer (`podman import`
    // into Podman's storage) and `husk run` of a bundle made beforehand.
    if (which('podman')) {
      const store = fresh('run-store')();
      await spawnAsync(HUSK, huskArgs('image', 'pull', '--store', store, '-q', ref));
      run('podman', ['import', '--quiet', blob, 'localhost/husk-bench-minbase:1']);
      const podman = podmanRunArgs('localhost/husk-bench-minbase:1');
      const bundle = path.join(store, 'bench-bundle');
      run(HUSK, huskArgs('image', 'bundle', '--store', store, ref, bundle, 'true'));
      try {
        const r = await timeRounds(ROUNDS, [
          { label: 'imageRun', run: () => spawnAsync(HUSK, huskArgs('image', 'run', '--rm', '--net', 'none', '--store', store, ref, 'true')) },
          ...(podman.args ? [{ label: 'podman', run: () => spawnAsync('podman', podman.args) }] : []),
          { label: 'bundleRun', run: (_ctx, i) => spawnAsync(HUSK, huskArgs('run', '-b', bundle, `husk-bench-${process.pid}-${i}`)) },
        ]);
        console.log('run an image already stored: `IMAGE true`, from the call to the exit');
        console.log(r.podman ? row(`podman run --rm${podman.note}`, r.podman) : `  podman run --rm: does not run here: ${podman.failure}`);
        console.log(row('husk run (a bundle made beforehand)', r.bundleRun));
        console.log(row('husk image run --rm', r.imageRun));
        console.log(`  ratios: ${r.podman ? `husk image run / podman run = ${ratio(r.imageRun, r.podman).toFixed(2)}x, ` : ''}husk image run / husk run = ${ratio(r.imageRun, r.bundleRun).toFixed(2)}x`);
        if (r.podman) lib.record({ figure: 'image run --rm true: husk / podman run --rm', path: `default (door)${podman.note}`, husk: r.imageRun.median, runc: r.podman.median, unit: 'ms', rounds: ROUNDS, target: '<= 1.0x podman', met: ratio(r.imageRun, r.podman) <= 1.0 });
      } finally {
        spawnSync(HUSK, huskArgs('image', 'unbundle', bundle));
        spawnSync('podman', ['rmi', '-f', 'localhost/husk-bench-minbase:1']);
      }
    }

    // Five layers of 12 MiB random data: one pull of the five-layer image against the five
    // one-layer images pulled one after another (each its own process and store).
    const five = fiveLayers();
    run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${five.layout}:five`, `docker://${registry.host}/bench/five:1`]);
    five.singles.forEach((single, i) => run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${single}:single-${i}`, `docker://${registry.host}/bench/single-${i}:1`]));
    const f = await timeRounds(ROUNDS, [
      { label: 'five', setup: fresh('store'), run: (dir) => spawnAsync(HUSK, huskArgs('image', 'pull', '--store', dir, '-q', `${registry.host}/bench/five:1`)) },
      {
        label: 'singles',
        setup: fresh('stores'),
        run: async (dir) => {
          for (let i = 0; i < 5; i++) await spawnAsync(HUSK, huskArgs('image', 'pull', '--store', path.join(dir, String(i)), '-q', `${registry.host}/bench/single-${i}:1`));
        },
      },
    ]);
    console.log('five layers of 12 MiB (random data), pulled by husk');
    console.log(row('one image of five layers', f.five));
    console.log(row('five one-layer images, one after another', f.singles));
    console.log(`  ratio: five layers / sum of the layers alone = ${ratio(f.five, f.singles).toFixed(2)}x`);
    lib.record({ figure: 'pull five layers at once / one after another', path: 'image pull', husk: f.five.median / 1000, runc: f.singles.median / 1000, unit: 's', rounds: ROUNDS, target: '-', met: undefined });

    // Memory: a 1 GiB layer (random data) must stream, not sit in buffers.
    if (process.env.BENCH_IMAGE_BIG !== '0') {
      const big = randomLayer('big', 1024);
      run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${big}:big`, `docker://${registry.host}/bench/big:1`]);
      const store = fresh('big-store')();
      const { ms, rssMB } = await pullPeak(`${registry.host}/bench/big:1`, store);
      console.log('memory: husk image pull of a 1 GiB layer (set BENCH_IMAGE_BIG=0 to skip)');
      console.log(`  ${'peak RSS (VmHWM)'.padEnd(46)} ${rssMB.toFixed(0).padStart(7)} MB   in ${(ms / 1000).toFixed(2)} s (goal: under 150 MB)`);
      lib.record({ figure: 'pull of a 1 GiB layer: peak RSS', path: 'image pull', husk: rssMB, unit: 'MB', rounds: 1, target: '< 150 MB', met: rssMB < 150 });
    }
  } finally {
    if (registry) await registry.stop();
    lib.stopServer(STATE_ROOT);
    remove(STATE_ROOT);
    scratch.release();
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
