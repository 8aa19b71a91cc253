// What the bench's engine parts (engines.js, daemon.js) share: daemons of their own in a
// temporary workspace (containerd with CRI off, dockerd on it), and the clean-up afterwards
// that leaves the machine as it was. Set up as the engine tests set them up (test/engines/).
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

// What the engines create outside their configured directories, whatever their configuration
// (as in test/engines/setup.ts): removed afterwards when they did not exist before, and only
// when empty (directories) or listed (files).
const SYSTEM_PATHS = [
  '/run/containerd/s', '/run/containerd', '/run/docker/plugins', '/run/docker', '/run/containers/networks', '/run/containers',
  '/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/var/lib/containers/cache', '/var/lib/containers', '/run/libpod',
  '/etc/docker/key.json', '/dev/shm/libpod_lock',
];

function logTail(ws, name) {
  try {
    return fs.readFileSync(path.join(ws, `${name}.log`), 'utf8').trim().split('\n').slice(-3).join(' / ');
  } catch {
    return '(no log)';
  }
}

/** A daemon of ours, its output in <ws>/<name>.log; stop() is SIGTERM, then SIGKILL after 30 s. */
function startDaemon(ws, name, argv, env) {
  const out = fs.openSync(path.join(ws, `${name}.log`), 'a');
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  fs.closeSync(out);
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => (exited = true));
  return {
    name,
    pid: child.pid,
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

/** A temporary workspace, and what was there before it (to put the machine back afterwards). */
function workspace(prefix) {
  const dir = fs.mkdtempSync(prefix);
  fs.chmodSync(dir, 0o755);
  return {
    dir,
    existed: new Map(SYSTEM_PATHS.map((p) => [p, fs.existsSync(p)])),
    cgroupsBefore: new Set(cgroupDirs()),
    daemons: [],
    cleanups: [],
    mk(d) {
      fs.mkdirSync(path.join(dir, d), { recursive: true });
      return path.join(dir, d);
    },
  };
}

/** The CRI plugin's part of containerd's configuration (see startContainerd's `cri`). */
function criConfig(cri) {
  const j = JSON.stringify;
  const section = (name) => `[plugins."io.containerd.grpc.v1.cri"${name ? `.${name}` : ''}]`;
  const lines = [
    section(''), `  sandbox_image = ${j(cri.sandboxImage)}`,
    // Loading containerd's AppArmor profile would change the host's policy; lowering an OOM score
    // needs CAP_SYS_RESOURCE, which root lacks on this machine.
    '  disable_apparmor = true', '  restrict_oom_score_adj = true',
    '  stream_server_address = "127.0.0.1"', '  stream_server_port = "10010"',
    section('containerd'), '  snapshotter = "overlayfs"', `  default_runtime_name = ${j(Object.keys(cri.runtimes)[0])}`,
  ];
  for (const [name, r] of Object.entries(cri.runtimes)) {
    lines.push(
      section(`containerd.runtimes.${name}`), '  runtime_type = "io.containerd.runc.v2"',
      section(`containerd.runtimes.${name}.options`), `  BinaryName = ${j(r.binary)}`, `  Root = ${j(r.root)}`,
      '  SystemdCgroup = false',
    );
  }
  lines.push(section('cni'), '  bin_dir = "/usr/lib/cni"', `  conf_dir = ${j(cri.cniConfDir)}`, '  max_conf_num = 1');
  return lines;
}

/**
 * containerd of our own (root, state and sockets in the workspace); its address. The CRI plugin
 * is off unless `opts.cri` configures it ({ sandboxImage, runtimes: { name: { binary, root } },
 * cniConfDir }); `opts.netns` (a /run/netns path) runs containerd in that network namespace,
 * where the CNI bridge and the streaming server then live.
 */
async function startContainerd(w, namespace, opts = {}) {
  const containerd = lib.need('containerd');
  lib.need('ctr');
  lib.need('containerd-shim-runc-v2');
  const address = path.join(w.dir, 'containerd.sock');
  const q = (d) => JSON.stringify(w.mk(d));
  const config = path.join(w.dir, 'containerd.toml');
  fs.writeFileSync(config, [
    'version = 2', `root = ${q('containerd-root')}`, `state = ${q('containerd-state')}`,
    ...(opts.cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
    '[grpc]', `  address = ${JSON.stringify(address)}`, '[ttrpc]', `  address = ${JSON.stringify(`${address}.ttrpc`)}`,
    '[debug]', `  address = ${JSON.stringify(path.join(w.dir, 'containerd-debug.sock'))}`, '[metrics]', '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]', `  path = ${q('containerd-opt')}`,
    ...(opts.cri ? criConfig(opts.cri) : []), '',
  ].join('\n'));
  const argv = [containerd, '--config', config];
  const d = startDaemon(w.dir, 'containerd', opts.netns ? [lib.need('nsenter'), `--net=${opts.netns}`, '--', ...argv] : argv);
  w.daemons.push(d);
  const ctrArgs = [lib.need('ctr'), '--address', address, '--namespace', namespace];
  await d.ready(() => fs.existsSync(address) && lib.sh([...ctrArgs, 'version'], { mayFail: true, timeoutMs: 10_000 }).status === 0);
  return { address, ctrArgs };
}

/** dockerd of our own on that containerd (no bridge, no iptables, cgroupfs); the client's env. */
async function startDockerd(w, address, docker, extraArgs = []) {
  const dockerd = lib.need('dockerd');
  const socket = path.join(w.dir, 'docker.sock');
  const daemonJson = path.join(w.dir, 'daemon.json');
  fs.writeFileSync(daemonJson, JSON.stringify({ 'deprecated-key-path': path.join(w.dir, 'docker-key.json') }));
  const d = startDaemon(w.dir, 'dockerd', [
    dockerd, '--config-file', daemonJson, '--data-root', w.mk('docker-data'), '--exec-root', w.mk('docker-exec'), '--pidfile', path.join(w.dir, 'docker.pid'),
    '--host', `unix://${socket}`, '--containerd', address, '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none',
    '--userland-proxy=false', '--exec-opt', 'native.cgroupdriver=cgroupfs', ...extraArgs,
  ]);
  w.daemons.push(d);
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: w.mk('docker-cli') };
  await d.ready(() => fs.existsSync(socket) && lib.sh([docker, 'version'], { env, mayFail: true, timeoutMs: 10_000 }).status === 0);
  return env;
}

/** Kills the processes tied to `dir` (root, cwd, exe or command line in it: shims, conmon,
 *  monitors, containers, husk servers), unmounts what is mounted under it, removes it; returns
 *  what had to be cleaned by force. */
function releaseDirectory(dir) {
  const problems = [];
  const inside = (p) => p === dir || p.startsWith(`${dir}/`);
  for (const pid of lib.pids()) {
    if (pid === process.pid) continue;
    const links = ['root', 'cwd', 'exe'].map((l) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/${l}`);
      } catch {
        return '';
      }
    });
    if (links.some(inside) || lib.cmdline(pid).some((a) => a.includes(dir))) {
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
  fs.rmSync(dir, { recursive: true, force: true });
  return problems;
}

/** Removes the system paths (path -> existed before) that did not exist before: files, and
 *  directories only when empty. */
function restorePaths(existed) {
  for (const [p, was] of existed) {
    if (was) continue;
    try {
      if (fs.lstatSync(p).isDirectory()) fs.rmdirSync(p);
      else fs.unlinkSync(p);
    } catch {
      // absent, or not empty: left alone
    }
  }
}

/**
 * Runs the clean-ups, stops the daemons, kills what is still tied to the workspace, unmounts and
 * removes it, the system paths the engines made and their new empty cgroups (those whose path
 * matches `cgroupPattern`); returns what had to be cleaned by force.
 */
async function teardown(w, cgroupPattern) {
  const problems = [];
  for (const c of w.cleanups.reverse()) {
    try {
      c();
    } catch (err) {
      problems.push(`engine cleanup: ${err.message}`);
    }
  }
  for (const d of w.daemons.reverse()) await d.stop();
  for (const pid of lib.serverPidsUnder(w.dir)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  lib.sleepMs(300);
  problems.push(...releaseDirectory(w.dir));
  restorePaths(w.existed);
  for (const dir of cgroupDirs().filter((d) => !w.cgroupsBefore.has(d)).sort((a, b) => b.length - a.length)) {
    if (!cgroupPattern.test(dir)) continue;
    try {
      fs.rmdirSync(dir);
    } catch {
      problems.push(`cgroup left: ${dir}`);
    }
  }
  return problems;
}

module.exports = { startDaemon, workspace, startContainerd, startDockerd, teardown, releaseDirectory, restorePaths };
