#!/usr/bin/env node
// npm run bench (daemon part): the docker client against `husk daemon` and against dockerd
// (containerd, containerd-shim-runc-v2, runc), on the same machine, in one run, same image:
//  - `docker run --rm IMAGE true`, from the client's call to its exit (median of the rounds,
//    interleaved), as a ratio to dockerd's (target <= 0.5x: husk has no containerd and no shim
//    between the API and the runtime);
//  - 20 `docker run -d IMAGE true` at once, until the last client returns (median of the rounds).
// Both daemons have their data, state and sockets in a temporary directory; dockerd runs with
// no bridge and no iptables, and both containers get --network none. Needs root; Debian's
// docker.io, containerd, runc, busybox-static.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');
const lib = require('./lib');
const { workspace, startContainerd, startDockerd, startDaemon, teardown } = require('./engineSetup');

const REPO = path.resolve(process.env.HUSK_BENCH_REPO || lib.REPO);
const HUSK = path.join(REPO, 'bin', 'husk');
const ROUNDS = Math.max(1, Number(process.env.BENCH_ENGINE_ROUNDS || Math.min(lib.ROUNDS, 10)));
const PARALLEL = 20;
const PARALLEL_ROUNDS = Math.max(1, Number(process.env.BENCH_PARALLEL_ROUNDS || 3));
const IMAGE = 'localhost/husk-bench-true:latest';
const TARGET = 0.5;

function timed(argv, env) {
  const t0 = lib.nowMs();
  lib.sh(argv, { env, timeoutMs: 60_000 });
  return lib.nowMs() - t0;
}

/** Starts `count` clients at once; resolves with the time until the last has exited 0. */
function together(argvOf, count, env) {
  const t0 = lib.nowMs();
  return Promise.all(Array.from({ length: count }, (_, i) => new Promise((resolve, reject) => {
    const argv = argvOf(i);
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: exit ${code}: ${err.trim()}`))));
  }))).then(() => lib.nowMs() - t0);
}

function connects(socket) {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

function removeAll(docker, env) {
  const all = lib.sh([docker, 'ps', '--all', '--quiet'], { env, mayFail: true }).stdout.split('\n').filter(Boolean);
  if (all.length) lib.sh([docker, 'rm', '--force', ...all], { env, mayFail: true, timeoutMs: 120_000 });
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  lib.need('runc');
  const docker = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : lib.need('docker');
  const w = workspace('/tmp/husk-bench-daemon-');
  console.log(`\ndaemon: the docker client (${docker}) against husk daemon and against dockerd + containerd + runc (${ROUNDS} rounds each, interleaved, median ms)`);
  try {
    fs.mkdirSync(path.join(w.dir, 'image'));
    const tarball = lib.busyboxImage(path.join(w.dir, 'image'), IMAGE, 'bench/daemon.js');
    const { address } = await startContainerd(w, 'husk-bench-daemon');
    const envs = { dockerd: await startDockerd(w, address, docker) };
    const socket = path.join(w.dir, 'husk.sock');
    const husk = startDaemon(w.dir, 'husk-daemon', [HUSK, 'daemon', '-H', `unix://${socket}`, '--data-root', w.mk('husk-data'), '--exec-root', w.mk('husk-run'), '--store', w.mk('husk-store')]);
    w.daemons.push(husk);
    let up = false;
    await husk.ready(() => {
      void connects(socket).then((ok) => (up = ok));
      return up;
    });
    envs.husk = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: w.mk('husk-cli') };
    const names = ['husk', 'dockerd'];
    for (const n of names) {
      lib.sh([docker, 'load', '--input', tarball], { env: envs[n] });
      w.cleanups.push(() => removeAll(docker, envs[n]));
    }
    const run = (n) => [docker, 'run', '--rm', '--network', 'none', IMAGE, 'true'];
    const samples = { husk: [], dockerd: [] };
    for (const n of names) lib.sh(run(n), { env: envs[n] });
    for (let i = 0; i < ROUNDS; i++) for (const n of names) samples[n].push(timed(run(n), envs[n]));
    const one = { husk: lib.median(samples.husk), dockerd: lib.median(samples.dockerd) };
    const ratio = one.husk / one.dockerd;
    console.log(`  docker run --rm IMAGE true          husk daemon ${one.husk.toFixed(0).padStart(5)} ms   dockerd ${one.dockerd.toFixed(0).padStart(5)} ms   ${ratio.toFixed(2)}x (target <= ${TARGET}x)`);
    lib.record({ figure: 'docker run --rm true (daemon)', path: 'husk daemon vs dockerd+runc', husk: one.husk, runc: one.dockerd, unit: 'ms', rounds: ROUNDS, target: `<= ${TARGET}x dockerd`, met: ratio <= TARGET });

    const many = { husk: [], dockerd: [] };
    for (let r = 0; r < PARALLEL_ROUNDS; r++) {
      for (const n of names) {
        many[n].push(await together(() => [docker, 'run', '-d', '--network', 'none', IMAGE, 'true'], PARALLEL, envs[n]));
        removeAll(docker, envs[n]);
      }
    }
    const all = { husk: lib.median(many.husk), dockerd: lib.median(many.dockerd) };
    const manyRatio = all.husk / all.dockerd;
    console.log(`  ${PARALLEL} x docker run -d at once          husk daemon ${all.husk.toFixed(0).padStart(5)} ms   dockerd ${all.dockerd.toFixed(0).padStart(5)} ms   ${manyRatio.toFixed(2)}x (${PARALLEL_ROUNDS} rounds)`);
    lib.record({ figure: `${PARALLEL} x docker run -d (daemon)`, path: 'husk daemon vs dockerd+runc', husk: all.husk, runc: all.dockerd, unit: 'ms', rounds: PARALLEL_ROUNDS, target: `<= ${TARGET}x dockerd`, met: manyRatio <= TARGET });
  } finally {
    const problems = await teardown(w, /\/(docker|husk-bench)/);
    if (problems.length) console.log(`  daemon part left things behind (removed): ${problems.join('; ')}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: daemon: ${err.stack || err.message}\n`);
  process.exit(1);
});
