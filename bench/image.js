#!/usr/bin/env node
// npm run bench (second part): husk's image side against the tools people compare it with,
// in one run, as ratios.
//  - unpack: one large layer (a Debian 12 minbase made with debootstrap, tarred and gzipped)
//    unpacked by husk (the overlay unpack of `husk image pull`, called directly), by
//    `umoci unpack` (the whole image -> bundle) and by plain `tar -xzf` (GNU tar with gzip).
//  - pull: the same image pulled from Debian's docker-registry on 127.0.0.1 by `husk image pull`
//    (download, verify and unpack) and copied by `skopeo copy` to an OCI layout (download and
//    verify only: skopeo does not unpack).
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

const REPO = path.join(__dirname, '..');
const HUSK = path.join(REPO, 'bin', 'husk');
const CACHE = process.env.HUSK_BENCH_CACHE || '/var/cache/husk-bench';
const ROUNDS = Number(process.env.BENCH_IMAGE_ROUNDS || 3);
const MIRROR = process.env.HUSK_BENCH_MIRROR || 'http://deb.debian.org/debian';

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
  const tarFile = path.join(CACHE, 'layer.tar');
  run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', rootfs, '-cf', tarFile, '.']);
  const diffID = fileDigest(tarFile);
  const gz = path.join(CACHE, 'layer.tar.gz');
  run('sh', ['-c', `gzip -6 -c ${JSON.stringify(tarFile)} > ${JSON.stringify(gz)}`]);
  fs.rmSync(tarFile);
  const tmpLayout = `${layout}.tmp`;
  fs.rmSync(tmpLayout, { recursive: true, force: true });
  fs.mkdirSync(path.join(tmpLayout, 'blobs', 'sha256'), { recursive: true });
  const layerDigest = fileDigest(gz);
  fs.renameSync(gz, path.join(tmpLayout, 'blobs', 'sha256', layerDigest.slice(7)));
  const layerSize = fs.statSync(path.join(tmpLayout, 'blobs', 'sha256', layerDigest.slice(7))).size;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [diffID] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerSize }],
  }));
  fs.writeFileSync(path.join(tmpLayout, 'blobs', 'sha256', sha256(config).slice(7)), config);
  fs.writeFileSync(path.join(tmpLayout, 'blobs', 'sha256', sha256(manifest).slice(7)), manifest);
  fs.writeFileSync(path.join(tmpLayout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(tmpLayout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'minbase' } }],
  }));
  fs.renameSync(tmpLayout, layout);
  return layout;
}

function layerBlob(layout) {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  return path.join(layout, 'blobs', 'sha256', manifest.layers[0].digest.slice(7));
}

async function timeIt(label, rounds, setup, fn, teardown) {
  const samples = [];
  for (let i = 0; i < rounds; i++) {
    const ctx = setup ? setup(i) : undefined;
    const t0 = process.hrtime.bigint();
    await fn(ctx, i);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (teardown) teardown(ctx);
  }
  samples.sort((a, b) => a - b);
  return { label, median: samples[Math.floor(samples.length / 2)], min: samples[0] };
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

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  for (const tool of ['umoci', 'skopeo', 'docker-registry', 'tar']) {
    if (!which(tool)) throw new Error(`bench: ${tool} is not installed (apt-get install ${tool === 'docker-registry' ? 'docker-registry' : tool})`);
  }
  const { unpackLayer } = require(path.join(REPO, 'dist', 'image', 'unpack.js'));
  const layout = prepare();
  const blob = layerBlob(layout);
  const work = fs.mkdtempSync(path.join(CACHE, 'run-'));
  const fresh = (name) => () => {
    const dir = path.join(work, `${name}-${crypto.randomBytes(4).toString('hex')}`);
    fs.mkdirSync(dir);
    return dir;
  };
  const remove = (dir) => fs.rmSync(dir, { recursive: true, force: true });
  let registry;
  try {
    const size = fs.statSync(blob).size;
    console.log(`image benchmark: Debian 12 minbase, one layer of ${(size / 1e6).toFixed(1)} MB gzip; ${ROUNDS} rounds, medians`);
    const tarX = await timeIt('tar -xzf', ROUNDS, fresh('tar'), (dir) => spawnAsync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xzf', blob, '-C', dir]), remove);
    const husk = await timeIt('husk unpack (overlay layer)', ROUNDS, fresh('husk'), (dir) => unpackLayer(blob, dir, { mode: 'overlay', what: 'bench layer' }), remove);
    const umoci = await timeIt('umoci unpack', ROUNDS, () => path.join(work, `umoci-${crypto.randomBytes(4).toString('hex')}`), (dir) => spawnAsync('umoci', ['unpack', '--image', `${layout}:minbase`, dir]), remove);
    console.log('unpack');
    console.log(row('tar -xzf (GNU tar + gzip)', tarX));
    console.log(row('umoci unpack', umoci));
    console.log(row('husk (unpack into a layer directory)', husk));
    console.log(`  ratios: husk / tar -x = ${(husk.median / tarX.median).toFixed(2)}x, husk / umoci = ${(husk.median / umoci.median).toFixed(2)}x`);

    registry = await startRegistry(work);
    run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:minbase`, `docker://${registry.host}/bench/minbase:1`]);
    const ref = `${registry.host}/bench/minbase:1`;
    const skopeo = await timeIt('skopeo copy', ROUNDS, fresh('skopeo'), (dir) => spawnAsync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:x`]), remove);
    const skopeoUmoci = await timeIt('skopeo copy + umoci unpack', ROUNDS, fresh('skopeo-umoci'), async (dir) => {
      await spawnAsync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/layout:x`]);
      await spawnAsync('umoci', ['unpack', '--image', `${dir}/layout:x`, `${dir}/bundle`]);
    }, remove);
    const pull = await timeIt('husk image pull', ROUNDS, fresh('store'), (dir) => spawnAsync(process.execPath, [HUSK, 'image', 'pull', '--store', dir, '-q', ref]), remove);
    console.log('pull from docker-registry on 127.0.0.1');
    console.log(row('skopeo copy (download + verify)', skopeo));
    console.log(row('skopeo copy + umoci unpack', skopeoUmoci));
    console.log(row('husk image pull (download + verify + unpack)', pull));
    console.log(`  ratios: husk pull / skopeo copy = ${(pull.median / skopeo.median).toFixed(2)}x (skopeo does not unpack), husk pull / (skopeo copy + umoci unpack) = ${(pull.median / skopeoUmoci.median).toFixed(2)}x`);
  } finally {
    if (registry) await registry.stop();
    remove(work);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exit(1);
});
