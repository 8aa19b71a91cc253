#!/usr/bin/env node
// npm run bench (second part): the engines with husk and with runc as their runtime, on the
// same image: `docker run --rm IMAGE true`, `podman run --rm IMAGE true` and
// `ctr run --rm IMAGE ID true`, from the client's call to its exit, medians, as ratios.
//
// Set up as the engine tests set them up (test/engines/): one containerd of our own (root,
// state and sockets in a temporary directory, CRI off) for ctr and for a dockerd of our own
// (--add-runtime husk=bin/husk, no bridge, no iptables, cgroupfs), and Podman with its storage,
// run state and containers.conf in that directory ([engine.runtimes] husk and runc; each
// runtime's --root given by a wrapper script). The image is built from the static probe and
// busybox-static (nothing can be pulled here): /bin/true is busybox's. No logging wrappers:
// each engine calls the runtime binary itself (husk is bin/husk, the front door, with its
// default server idle time). An engine that cannot run here is named with its reason, and the
// others go on. Needs root; Debian's docker.io, containerd, podman, conmon, busybox-static.
'use strict';
const fs = require('fs');
const path = require('path');
const lib = require('./lib');
const { workspace, startContainerd, startDockerd, teardown } = require('./engineSetup');

const REPO = path.resolve(process.env.HUSK_BENCH_REPO || lib.REPO);
const HUSK = path.join(REPO, 'bin', 'husk');
const ROUNDS = Math.max(1, Number(process.env.BENCH_ENGINE_ROUNDS || Math.min(lib.ROUNDS, 10)));
const IMAGE = 'localhost/husk-bench-true:latest';
const NAMESPACE = 'husk-bench';
const TARGET = 1.1;

function timed(argv, env) {
  const t0 = lib.nowMs();
  lib.sh(argv, { env, timeoutMs: 60_000 });
  return lib.nowMs() - t0;
}

/** Times `argvOf(rt, i)` for husk and runc, ROUNDS rounds interleaved, after one untimed call
 * each (the engine's first run sets up its state; husk's starts its server). */
function compare(engine, argvOf, env) {
  const samples = { husk: [], runc: [] };
  for (const rt of ['husk', 'runc']) lib.sh(argvOf(rt, 'warmup'), { env });
  for (let i = 0; i < ROUNDS; i++) for (const rt of ['husk', 'runc']) samples[rt].push(timed(argvOf(rt, i), env));
  const husk = lib.median(samples.husk);
  const runc = lib.median(samples.runc);
  const ratio = husk / runc;
  console.log(`  ${engine.padEnd(34)} husk ${husk.toFixed(0).padStart(5)} ms   runc ${runc.toFixed(0).padStart(5)} ms   ${ratio.toFixed(2)}x   (min husk ${Math.min(...samples.husk).toFixed(0)}, runc ${Math.min(...samples.runc).toFixed(0)})`);
  lib.record({ figure: engine, path: 'default (door, server)', husk, runc, unit: 'ms', rounds: ROUNDS, target: `<= ${TARGET}x runc`, met: ratio <= TARGET });
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  const runc = lib.which('runc');
  if (!runc) throw new Error('runc is not installed (apt-get install runc)');
  const w = workspace('/tmp/husk-bench-engines-');
  const ws = w.dir;
  const cleanups = w.cleanups;
  console.log(`\nengines: \`run --rm IMAGE true\` with husk (bin/husk) and with runc as the runtime (${ROUNDS} rounds each, interleaved, median ms from the client's call to its exit; one untimed run first)`);
  try {
    fs.mkdirSync(path.join(ws, 'image'));
    const tarball = lib.busyboxImage(path.join(ws, 'image'), IMAGE, 'bench/engines.js');

    // containerd, for ctr and dockerd.
    let address;
    try {
      const started = await startContainerd(w, NAMESPACE);
      address = started.address;
      const ctrArgs = started.ctrArgs;
      lib.sh([...ctrArgs, 'images', 'import', tarball]);
      fs.mkdirSync(path.join(ws, 'fifo'));
      const binary = { husk: HUSK, runc };
      cleanups.push(() => {
        for (const id of lib.sh([...ctrArgs, 'containers', 'ls', '--quiet'], { mayFail: true }).stdout.split('\n').filter(Boolean)) {
          lib.sh([...ctrArgs, 'task', 'delete', '--force', id], { mayFail: true });
          lib.sh([...ctrArgs, 'containers', 'delete', id], { mayFail: true });
        }
        lib.sh([...ctrArgs, 'images', 'rm', IMAGE], { mayFail: true });
      });
      compare('ctr run --rm true', (rt, i) => [...ctrArgs, 'run', '--rm', '--runc-binary', binary[rt], '--runc-root', path.join(ws, `ctr-state-${rt}`), '--fifo-dir', path.join(ws, 'fifo'), IMAGE, `true-${rt}-${i}`, 'true']);
    } catch (err) {
      console.log(`  ctr run --rm true: not measured: ${err.message}`);
      address = address && fs.existsSync(address) ? address : undefined;
    }

    // Docker, on that containerd.
    try {
      if (!address) throw new Error('containerd did not start');
      // Debian's client matches Debian's daemon; another one on PATH negotiates the API down.
      const docker = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : lib.need('docker');
      const env = await startDockerd(w, address, docker, ['--add-runtime', `husk=${HUSK}`]);
      lib.sh([docker, 'load', '--input', tarball], { env });
      cleanups.push(() => {
        const all = lib.sh([docker, 'ps', '--all', '--quiet'], { env, mayFail: true }).stdout.split('\n').filter(Boolean);
        if (all.length) lib.sh([docker, 'rm', '--force', ...all], { env, mayFail: true });
        lib.sh([docker, 'rmi', '--force', IMAGE], { env, mayFail: true });
      });
      compare('docker run --rm true', (rt) => [docker, 'run', '--rm', '--runtime', rt, '--network', 'none', IMAGE, 'true'], env);
    } catch (err) {
      console.log(`  docker run --rm true: not measured: ${err.message}`);
    }

    // Podman.
    try {
      const podman = lib.need('podman');
      lib.need('conmon');
      const mk = (d) => w.mk(d);
      // Each runtime's --root through a wrapper: Podman 4.3 passes --runtime-flag to create and
      // start but not to its `delete --force`, which then looked in the default root and left
      // every container's state and cgroups behind.
      const wrapper = (rt, binary) => {
        const file = path.join(mk('runtimes'), rt);
        fs.writeFileSync(file, `#!/bin/sh\nexec ${binary} --root ${mk(`podman-state-${rt}`)} "$@"\n`, { mode: 0o755 });
        return file;
      };
      const conf = path.join(ws, 'containers.conf');
      fs.writeFileSync(conf, [
        '[containers]',
        // Podman's default RLIMIT_NOFILE (1048576) is above this VM's hard limit.
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        '[engine]', 'runtime_supports_json = ["crun", "runc", "husk"]', 'lock_type = "file"',
        '[engine.runtimes]', `husk = [${JSON.stringify(wrapper('husk', HUSK))}]`, `runc = [${JSON.stringify(wrapper('runc', runc))}]`, '',
      ].join('\n'));
      const storage = path.join(ws, 'storage.conf');
      fs.writeFileSync(storage, `[storage]\ndriver = "overlay"\nrunroot = ${JSON.stringify(mk('podman-runroot'))}\ngraphroot = ${JSON.stringify(mk('podman-root'))}\n`);
      const env = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
      const base = [podman, '--root', mk('podman-root'), '--runroot', mk('podman-runroot'), '--tmpdir', mk('podman-tmp'), '--network-config-dir', mk('podman-networks'),
        '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'overlay'];
      const withRuntime = (rt) => [...base, '--runtime', rt];
      cleanups.push(() => {
        for (const rt of ['husk', 'runc']) lib.sh([...withRuntime(rt), 'rm', '--all', '--force', '--time', '0'], { env, mayFail: true });
        lib.sh([...base, 'rmi', '--all', '--force'], { env, mayFail: true });
        lib.sh([...base, 'system', 'reset', '--force'], { env, mayFail: true });
      });
      lib.sh([...base, 'load', '--input', tarball], { env });
      compare('podman run --rm true', (rt) => [...withRuntime(rt), 'run', '--rm', '--network', 'none', IMAGE, 'true'], env);
    } catch (err) {
      console.log(`  podman run --rm true: not measured: ${err.message}`);
    }
  } finally {
    // New empty cgroups of the engines' (their parents: docker, libpod_parent, our namespace).
    const problems = await teardown(w, /\/(docker|libpod_parent|husk-bench|true-(husk|runc)-)/);
    if (problems.length) console.log(`  engines left things behind (removed): ${problems.join('; ')}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: engines: ${err.stack || err.message}\n`);
  process.exit(1);
});
