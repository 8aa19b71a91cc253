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
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

const REPO = path.resolve(process.env.HUSK_BENCH_REPO || lib.REPO);
const HUSK = path.join(REPO, 'bin', 'husk');
const ROUNDS = Math.max(1, Number(process.env.BENCH_ENGINE_ROUNDS || Math.min(lib.ROUNDS, 10)));
const IMAGE = 'localhost/husk-bench-true:latest';
const NAMESPACE = 'husk-bench';
const TARGET = 1.1;

// What the engines create outside their configured directories, whatever their configuration
// (as in test/engines/setup.ts): removed afterwards when they did not exist before, and only
// when empty (directories) or listed (files).
const SYSTEM_PATHS = [
  '/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker', '/run/containers/networks', '/run/containers',
  '/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/var/lib/containers/cache', '/var/lib/containers', '/run/libpod',
  '/etc/docker/key.json', '/dev/shm/libpod_lock',
];



function timed(argv, env) {
  const t0 = lib.nowMs();
  lib.sh(argv, { env, timeoutMs: 60_000 });
  return lib.nowMs() - t0;
}


/** A daemon of ours, its output in <ws>/<name>.log; stop() is SIGTERM, then SIGKILL after 30 s. */
function startDaemon(ws, name, argv) {
  const out = fs.openSync(path.join(ws, `${name}.log`), 'a');
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));
  return {
    name,
    async ready(test) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (exited) throw new Error(`${name} exited at start: ${logTail(ws, name)}`);
        if (test()) return;
        if (Date.now() > deadline) throw new Error(`${name} was not ready after 60 s: ${logTail(ws, name)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      for (let i = 0; i < 300 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
      if (!exited) child.kill('SIGKILL');
      for (let i = 0; i < 50 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
    },
  };
}

function logTail(ws, name) {
  try {
    return fs.readFileSync(path.join(ws, `${name}.log`), 'utf8').trim().split('\n').slice(-3).join(' / ');
  } catch {
    return '(no log)';
  }
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

function cgroupDirs() {
  const found = [];
  const walk = (dir, depth) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      found.push(path.join(dir, e.name));
      if (depth > 0) walk(path.join(dir, e.name), depth - 1);
    }
  };
  walk('/sys/fs/cgroup', 3);
  return found;
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  const runc = lib.which('runc');
  if (!runc) throw new Error('runc is not installed (apt-get install runc)');
  const ws = fs.mkdtempSync('/tmp/husk-bench-engines-');
  fs.chmodSync(ws, 0o755);
  const existed = new Map(SYSTEM_PATHS.map((p) => [p, fs.existsSync(p)]));
  const cgroupsBefore = new Set(cgroupDirs());
  const daemons = [];
  const cleanups = [];
  console.log(`\nengines: \`run --rm IMAGE true\` with husk (bin/husk) and with runc as the runtime (${ROUNDS} rounds each, interleaved, median ms from the client's call to its exit; one untimed run first)`);
  try {
    fs.mkdirSync(path.join(ws, 'image'));
    const tarball = lib.busyboxImage(path.join(ws, 'image'), IMAGE, 'bench/engines.js');

    // containerd, for ctr and dockerd.
    let address;
    try {
      const containerd = lib.need('containerd');
      const ctr = lib.need('ctr');
      lib.need('containerd-shim-runc-v2');
      address = path.join(ws, 'containerd.sock');
      const mk = (d) => {
        fs.mkdirSync(path.join(ws, d), { recursive: true });
        return JSON.stringify(path.join(ws, d));
      };
      const config = path.join(ws, 'containerd.toml');
      fs.writeFileSync(config, [
        'version = 2', `root = ${mk('containerd-root')}`, `state = ${mk('containerd-state')}`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]', `  address = ${JSON.stringify(address)}`, '[ttrpc]', `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
        '[debug]', `  address = ${JSON.stringify(path.join(ws, 'containerd-debug.sock'))}`, '[metrics]', '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]', `  path = ${mk('containerd-opt')}`, '',
      ].join('\n'));
      const d = startDaemon(ws, 'containerd', [containerd, '--config', config]);
      daemons.push(d);
      const ctrArgs = [ctr, '--address', address, '--namespace', NAMESPACE];
      await d.ready(() => fs.existsSync(address) && lib.sh([...ctrArgs, 'version'], { mayFail: true, timeoutMs: 10_000 }).status === 0);
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
      const dockerd = lib.need('dockerd');
      // Debian's client matches Debian's daemon; another one on PATH negotiates the API down.
      const docker = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : lib.need('docker');
      const socket = path.join(ws, 'docker.sock');
      const daemonJson = path.join(ws, 'daemon.json');
      fs.writeFileSync(daemonJson, JSON.stringify({ 'deprecated-key-path': path.join(ws, 'docker-key.json') }));
      const mk = (d) => {
        fs.mkdirSync(path.join(ws, d), { recursive: true });
        return path.join(ws, d);
      };
      const d = startDaemon(ws, 'dockerd', [
        dockerd, '--config-file', daemonJson, '--data-root', mk('docker-data'), '--exec-root', mk('docker-exec'), '--pidfile', path.join(ws, 'docker.pid'),
        '--host', `unix://${socket}`, '--containerd', address, '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none',
        '--userland-proxy=false', '--exec-opt', 'native.cgroupdriver=cgroupfs', '--add-runtime', `husk=${HUSK}`,
      ]);
      daemons.push(d);
      const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: mk('docker-cli') };
      await d.ready(() => fs.existsSync(socket) && lib.sh([docker, 'version'], { env, mayFail: true, timeoutMs: 10_000 }).status === 0);
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
      const mk = (d) => {
        fs.mkdirSync(path.join(ws, d), { recursive: true });
        return path.join(ws, d);
      };
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
    const problems = [];
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch (err) {
        problems.push(`engine cleanup: ${err.message}`);
      }
    }
    for (const d of daemons.reverse()) await d.stop();
    for (const pid of lib.serverPidsUnder(ws)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    lib.sleepMs(300);
    // Processes whose root, cwd, exe or command line is ours (shims, conmon, containers, husk servers).
    const inside = (p) => p === ws || p.startsWith(`${ws}/`);
    for (const pid of lib.pids()) {
      if (pid === process.pid) continue;
      const links = ['root', 'cwd', 'exe'].map((l) => {
        try {
          return fs.readlinkSync(`/proc/${pid}/${l}`);
        } catch {
          return '';
        }
      });
      if (links.some(inside) || lib.cmdline(pid).some((a) => a.includes(ws))) {
        problems.push(`process left: ${pid} ${lib.cmdline(pid).join(' ')}`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => (l.split(' ')[4] || '').replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))).filter(inside);
    for (const m of mounts.sort((a, b) => b.length - a.length)) {
      if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['--lazy', m]);
    }
    fs.rmSync(ws, { recursive: true, force: true });
    for (const [p, was] of existed) {
      if (was) continue;
      try {
        if (fs.lstatSync(p).isDirectory()) fs.rmdirSync(p);
        else fs.unlinkSync(p);
      } catch {
        // absent, or not empty: left alone
      }
    }
    // New empty cgroups of the engines' (their parents: docker, libpod_parent, our namespace).
    for (const dir of cgroupDirs().filter((d) => !cgroupsBefore.has(d)).sort((a, b) => b.length - a.length)) {
      if (!/\/(docker|libpod_parent|husk-bench|true-(husk|runc)-)/.test(dir)) continue;
      try {
        fs.rmdirSync(dir);
      } catch {
        problems.push(`cgroup left: ${dir}`);
      }
    }
    if (problems.length) console.log(`  engines left things behind (removed): ${problems.join('; ')}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: engines: ${err.stack || err.message}\n`);
  process.exit(1);
});
