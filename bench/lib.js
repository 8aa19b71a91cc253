// What the bench's parts share: finding programs, timing a command, medians, a process's RSS,
// the warm husk server of a --root (finding it, stopping it), crun's view of the cgroups, and
// the results file that bench/main.js turns into the summary table.
//
// Timing: each timed call is one spawnSync from this node process, wall clock (hrtime) from
// before the fork to after the child is reaped. The fork/exec/wait of spawnSync costs the same
// for every runtime, so it is in every figure, husk's and runc's alike.
'use strict';
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const REPO = path.join(__dirname, '..');
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS || 15));

function which(name) {
  for (const dir of (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The middle sample (the lower middle of an even count). */
function median(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// A call's stderr goes to a file, never to a pipe: a created container's init inherits the
// caller's stdio (runc's as husk's), and spawnSync would wait for a pipe's last writer.
const ERR_FILE = `/tmp/husk-bench-stderr-${process.pid}`;

function withStderrFile(fn) {
  const fd = fs.openSync(ERR_FILE, 'w+');
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(ERR_FILE, { force: true });
  }
}

function failure(argv, res) {
  let text = '';
  try {
    text = fs.readFileSync(ERR_FILE, 'utf8');
  } catch {
    // nothing written
  }
  const why = res.error ? res.error.message : `exit ${res.status ?? res.signal}: ${text.trim().split('\n').slice(-3).join(' / ')}`;
  return new Error(`${argv.join(' ')}: ${why}`);
}

/** Runs argv to its end, its stdout read (into a file, see above); throws unless it exits 0. */
function mustRun(argv, opts = {}) {
  return withStderrFile((errFd) => {
    const outFile = `${ERR_FILE}.out`;
    const outFd = fs.openSync(outFile, 'w+');
    try {
      const res = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', outFd, errFd], ...opts });
      if (res.status !== 0) throw failure(argv, res);
      return { ...res, stdout: fs.readFileSync(outFile, 'utf8') };
    } finally {
      fs.closeSync(outFd);
      fs.rmSync(outFile, { force: true });
    }
  });
}

/** Runs argv, timed (ms, wall clock); throws unless it exits 0. */
function timedRun(argv, env) {
  return withStderrFile((errFd) => {
    const t0 = nowMs();
    const res = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', errFd], env: env || process.env });
    const ms = nowMs() - t0;
    if (res.status !== 0) throw failure(argv, res);
    return ms;
  });
}

/** VmRSS of a process in KiB, or undefined when it is gone. */
function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0; // a zombie has no VmRSS line
  } catch {
    return undefined;
  }
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function pids() {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
}

/** The warm husk servers of `root`: processes running dist/server/main.js with that --root. */
function serverPids(root) {
  const want = path.resolve(root);
  return pids().filter((pid) => {
    const argv = cmdline(pid);
    if (!argv.some((a) => a.endsWith('dist/server/main.js'))) return false;
    for (let i = 0; i < argv.length; i++) {
      if (argv[i] === '--root' && argv[i + 1] && path.resolve(argv[i + 1]) === want) return true;
      if (argv[i].startsWith('--root=') && path.resolve(argv[i].slice(7)) === want) return true;
    }
    return false;
  });
}

/** Warm husk servers whose --root lies under `dir` (an engine's workspace). */
function serverPidsUnder(dir) {
  return pids().filter((pid) => {
    const argv = cmdline(pid);
    return argv.some((a) => a.endsWith('dist/server/main.js')) && argv.some((a) => a.startsWith(dir + '/') || a.startsWith(`--root=${dir}/`));
  });
}

/** Whether nobody holds the server's lock (<root>/~server.lock): no server, and no door starting one. */
function lockFree(root) {
  const lock = path.join(root, '~server.lock');
  if (!fs.existsSync(lock)) return true;
  return spawnSync('flock', ['--nonblock', lock, 'true'], { stdio: 'ignore' }).status === 0;
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * No server for `root`: SIGTERM to each (SIGKILL after 5 s), then wait until none is left and
 * the lock is free, and remove the socket a killed server leaves (an idle exit removes it
 * itself, so this is the state a call finds after the server went idle).
 */
function stopServer(root) {
  const started = Date.now();
  for (;;) {
    const found = serverPids(root);
    if (found.length === 0 && lockFree(root)) break;
    if (Date.now() - started > 10_000) throw new Error(`the husk server of ${root} would not go away (pids ${found.join(', ') || 'none; its lock is held'})`);
    const signal = Date.now() - started > 5000 ? 'SIGKILL' : 'SIGTERM';
    for (const pid of found) {
      try {
        process.kill(pid, signal);
      } catch {
        // gone
      }
    }
    sleepMs(5);
  }
  fs.rmSync(path.join(root, '~server.sock'), { force: true });
}

/**
 * How crun must be started here. crun 1.8 refuses a hybrid cgroup layout whose cgroup v2
 * hierarchy has controllers ("cgroups in hybrid mode not supported, drop all controllers from
 * cgroupv2"; this VM leaves hugetlb on v2). In a mount namespace of its own without
 * /sys/fs/cgroup/unified, crun sees a legacy (v1) layout and works: `nsenter --mount` into a
 * holder process's namespace, whose cost (one more exec) is measured and reported.
 * Returns { prefix, stop, note }.
 */
function crunLauncher() {
  const unified = '/sys/fs/cgroup/unified/cgroup.controllers';
  let controllers = '';
  try {
    controllers = fs.readFileSync(unified, 'utf8').trim();
  } catch {
    return { prefix: [], stop: () => {}, note: '' };
  }
  if (!controllers) return { prefix: [], stop: () => {}, note: '' };
  const { spawn } = require('child_process');
  const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified && exec sleep infinity'], { stdio: 'ignore', detached: true });
  const deadline = Date.now() + 5000;
  for (;;) {
    if (cmdline(holder.pid)[0] === 'sleep') break;
    if (Date.now() > deadline || holder.exitCode !== null) throw new Error('crun: could not make a mount namespace without /sys/fs/cgroup/unified (unshare, umount)');
    sleepMs(5);
  }
  holder.unref();
  return {
    prefix: ['nsenter', `--mount=/proc/${holder.pid}/ns/mnt`, '--'],
    stop: () => {
      try {
        process.kill(holder.pid, 'SIGKILL');
      } catch {
        // gone
      }
    },
    note: `crun runs through nsenter into a mount namespace without /sys/fs/cgroup/unified (this host's cgroup v2 has controllers: ${controllers}; crun refuses that hybrid layout)`,
  };
}

/** One figure for bench/main.js's summary table (a JSON line in $BENCH_RESULTS, when set). */
function record(row) {
  const file = process.env.BENCH_RESULTS;
  if (file) fs.appendFileSync(file, `${JSON.stringify(row)}\n`);
}

function need(name) {
  const found = which(name);
  if (!found) throw new Error(`${name} is not installed`);
  return found;
}

/** Runs a command (stdout/stderr into strings, no pipe left to a daemon: the engines' clients
 * do not leave processes behind); throws unless it exits 0. */
function sh(argv, opts = {}) {
  const res = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26, timeout: opts.timeoutMs || 120_000, killSignal: 'SIGKILL', env: { ...process.env, ...opts.env } });
  if (res.status !== 0 && !opts.mayFail) {
    throw new Error(`${argv.join(' ')}: ${res.error ? res.error.message : `exit ${res.status ?? res.signal}`}: ${(res.stderr || '').trim().split('\n').slice(-3).join(' / ')}`);
  }
  return res;
}

/** A docker-archive (what `docker save` writes, and all the engines load) of one layer:
 * /bin/busybox (static) with its `true` and `sh`, named `tag`; `createdBy` goes into its history;
 * `cmd` is its default command. */
function busyboxImage(dir, tag, createdBy, cmd = ['true']) {
  const busybox = need('busybox');
  if (fs.readFileSync(busybox).subarray(0, 4096).includes('ld-linux')) throw new Error(`${busybox} is dynamically linked (apt-get install busybox-static)`);
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['true', 'sh']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\n');
  const tar = (args) => sh(['tar', '--numeric-owner', '--owner=0', '--group=0', '--sort=name', ...args]);
  const archive = path.join(dir, 'archive');
  const layerTar = path.join(dir, 'layer.tar');
  tar(['-C', rootfs, '-cf', layerTar, '.']);
  const diffId = crypto.createHash('sha256').update(fs.readFileSync(layerTar)).digest('hex');
  fs.mkdirSync(path.join(archive, diffId), { recursive: true });
  fs.renameSync(layerTar, path.join(archive, diffId, 'layer.tar'));
  const created = '2024-01-01T00:00:00Z';
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd, WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created, created_by: createdBy }],
  });
  const configId = crypto.createHash('sha256').update(config).digest('hex');
  fs.writeFileSync(path.join(archive, `${configId}.json`), config);
  fs.writeFileSync(path.join(archive, 'manifest.json'), JSON.stringify([{ Config: `${configId}.json`, RepoTags: [tag], Layers: [`${diffId}/layer.tar`] }]));
  const tarball = path.join(dir, 'image.tar');
  tar(['-C', archive, '-cf', tarball, '.']);
  fs.rmSync(archive, { recursive: true, force: true });
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tarball;
}

module.exports = { need, sh, busyboxImage, REPO, ROUNDS, which, median, nowMs, mustRun, timedRun, rssKiB, cmdline, pids, serverPids, serverPidsUnder, stopServer, lockFree, sleepMs, crunLauncher, record };
