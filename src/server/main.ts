// The warm husk server: `node dist/server/main.js --root DIR`. The front door (`husk`,
// native/frontdoor.cc) that finds no server starts one, detached, and runs its own call
// without it; the calls after that find it listening on DIR/~server.sock (0600, in the 0700
// state directory) and skip Node's start-up. Under systemd, contrib/systemd's socket unit
// hands it the socket instead (LISTEN_FDS).
//
// It keeps nothing that is not on disk: any call can be killed half-way, and so can the
// server (the door then undoes a half-made container and fails the call). It exits by itself
// after HUSK_SERVER_IDLE seconds (default 10) without a call.
//
// This thread only keeps the worker threads (worker.ts), which accept and run the calls: at
// least one of them waits for the next call while the others run theirs.
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { reason } from '../errors';
import { readLayout } from '../host/cgroupLayout';
import { native } from '../native';
import { SERVER_LOG, SERVER_SOCKET } from '../native/frontdoor';
import { writeFileAtomic } from '../host/atomicWrite';
import { parseProcStat, readProcStat } from '../host/procfs';

const MAX_WORKERS = 64;

function rootFromArguments(): string {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--root') return path.resolve(args[i + 1]);
    if (args[i].startsWith('--root=')) return path.resolve(args[i].slice('--root='.length));
  }
  throw new Error('usage: node dist/server/main.js --root DIR');
}

const root = rootFromArguments();
const logFile = path.join(root, SERVER_LOG);

function log(message: string) {
  try {
    fs.appendFileSync(logFile, `${new Date().toISOString()} husk server ${process.pid}: ${message}\n`);
  } catch {
    // nowhere to write: carry on
  }
}

/** How much of its log a server keeps: the log grows by a few lines a server, for as long as
 * the state directory lives (a /run that is never rebooted). */
const LOG_KEEP = 64 * 1024;

/** At start: a log larger than twice LOG_KEEP is cut to its last LOG_KEEP bytes (whole lines).
 * The server starting holds ~server.lock; only a server leaving may still add its last lines. */
function trimLog() {
  try {
    if (fs.statSync(logFile).size <= 2 * LOG_KEEP) return;
    const text = fs.readFileSync(logFile, 'utf8');
    const tail = text.slice(-LOG_KEEP);
    writeFileAtomic(logFile, tail.slice(tail.indexOf('\n') + 1), 0o644);
  } catch {
    // no log yet, or nowhere to write
  }
}

/** The server must not keep the cgroup of whoever started it alive (conmon's, a containerd
 * shim's, a container's scope): it moves itself to the root cgroup of every hierarchy. */
function leaveCallerCgroups() {
  const layout = readLayout();
  const hierarchies = [...layout.v1, ...(layout.unified ? [layout.unified] : [])];
  for (const h of hierarchies) {
    if (h.ownPath === '/') continue;
    try {
      fs.writeFileSync(path.join(h.mountPoint, 'cgroup.procs'), String(process.pid));
    } catch (err) {
      log(`cannot leave cgroup ${h.ownPath} of ${h.mountPoint}: ${reason(err)}`);
    }
  }
}

/** systemd's socket activation (sd_listen_fds): fd 3, when it was meant for us. */
function activatedSocket(): number | undefined {
  if (process.env.LISTEN_FDS !== '1' || Number(process.env.LISTEN_PID) !== process.pid) return undefined;
  delete process.env.LISTEN_FDS;
  delete process.env.LISTEN_PID;
  delete process.env.LISTEN_FDNAMES;
  return 3;
}

/** The socket's path; through /proc/self/fd when it is longer than a unix socket's address. */
function socketAddress(): string {
  const full = path.join(root, SERVER_SOCKET);
  if (full.length < 100) return full;
  const dir = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  return `/proc/self/fd/${dir}/${SERVER_SOCKET}`;
}

function start() {
  trimLog();
  // The door that started us passed the lock it holds (~server.lock); holding it for our whole
  // life makes a second door that races ours start no second server.
  const lockFd = Number(process.env.HUSK_SERVER_LOCK_FD);
  delete process.env.HUSK_SERVER_LOCK_FD;
  if (Number.isInteger(lockFd) && lockFd > 2) native.setCloexec(lockFd);
  const activated = activatedSocket();
  // Under systemd the server is in its service's cgroup already, where it belongs.
  if (activated === undefined) leaveCallerCgroups();
  const address = socketAddress();
  const listenFd = activated ?? native.serverListen(address);
  const idleMs = Math.max(0, Number(process.env.HUSK_SERVER_IDLE ?? 10) * 1000) || 10_000;
  log(`listening on ${activated !== undefined ? 'the socket systemd passed' : address} (idle exit after ${idleMs} ms)`);

  const workers = new Map<Worker, { busy: boolean; held: number[] }>();
  // How many workers wait in accept(), kept by the workers themselves (worker.ts).
  const idle = new Int32Array(new SharedArrayBuffer(4));
  let idleTimer: NodeJS.Timeout | undefined;
  let exiting = false;

  const busyCount = () => [...workers.values()].filter((w) => w.busy).length;

  const shutDown = (why: string) => {
    if (exiting) return;
    exiting = true;
    log(`${why}: exiting`);
    // No new call finds us; a call a worker took just now has reported itself within the
    // grace period, and is finished before we exit.
    if (activated === undefined) fs.rmSync(address, { force: true });
    native.shutdownSocket(listenFd);
    // The next call may start the next server at once, while this one finishes its calls.
    if (Number.isInteger(lockFd) && lockFd > 2) fs.closeSync(lockFd);
    setTimeout(function exitWhenQuiet() {
      if (busyCount() > 0) setTimeout(exitWhenQuiet, 50);
      else native.exitNow(0);
    }, 200);
  };

  const checkIdle = () => {
    if (exiting) return;
    if (busyCount() > 0) {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = undefined;
    } else if (!idleTimer) {
      idleTimer = setTimeout(() => shutDown('idle'), idleMs);
    }
  };

  const spawnWorker = () => {
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: { listenFd, idle } });
    const state = { busy: false, held: [] as number[] };
    workers.set(worker, state);
    worker.on('message', (m: { busy?: boolean; conn?: number; holding?: number[]; log?: string; caller?: number }) => {
      if (m.log) log(m.log);
      if (m.caller !== undefined && activated === undefined) leaveForOutsider(m.caller);
      if (m.holding) state.held.push(...m.holding);
      if (m.busy === undefined) return;
      state.busy = m.busy;
      state.held = m.busy && m.conn !== undefined ? [m.conn] : [];
      // One worker always waits for the next call.
      if (m.busy && !exiting && busyCount() === workers.size && workers.size < MAX_WORKERS) spawnWorker();
      checkIdle();
    });
    worker.on('error', (err) => log(`worker failed: ${reason(err)}`));
    worker.on('exit', (code) => {
      workers.delete(worker);
      // Its call's door sees the end of the connection (and undoes what the call made).
      for (const fd of state.held) {
        try {
          fs.closeSync(fd);
        } catch {
          // closed by the worker
        }
      }
      if (!exiting) {
        if (code !== 0 || state.busy) log(`worker exited (${code})${state.busy ? ' during a call' : ''}`);
        if (busyCount() === workers.size) spawnWorker();
      }
      checkIdle();
    });
  };

  // Stopped (the test harness, an administrator): no stale socket is left for the next call.
  // exitNow, not process.exit(), which would wait for workers blocked in accept() or in a call.
  process.on('SIGTERM', () => {
    if (activated === undefined) fs.rmSync(address, { force: true });
    native.exitNow(0);
  });

  // The door double-forks the server so that init adopts it. Under a child subreaper (conmon,
  // a containerd shim, tini -s) that process adopts it instead, and a subreaper such as conmon
  // blocks in wait() until every child is gone: it would outlive its container for as long as
  // the server lives. Two rules keep that short without losing the warm server:
  //  - a call from outside the adopter's tree (Podman's own calls, or the next container's
  //    conmon) makes this server leave: that caller's next call starts one outside the tree,
  //    which later calls find warm;
  //  - a server that is the last child of an adopter asleep in wait() leaves once it has had
  //    no call for a second (the next container's create, a moment later, still finds it).
  const leaveForOutsider = (caller: number) => {
    const parent = process.ppid;
    if (parent > 1 && !descendsFrom(caller, parent)) {
      shutDown(`adopted by process ${parent}; pid ${caller} called from outside its tree, and its next call starts a server outside it`);
    }
  };
  if (activated === undefined) {
    let waitedOnSince: number | undefined;
    setInterval(() => {
      const parent = process.ppid;
      if (parent <= 1 || busyCount() > 0 || !waitsOnlyForUs(parent)) {
        waitedOnSince = undefined;
        return;
      }
      waitedOnSince ??= Date.now();
      if (Date.now() - waitedOnSince >= 1000) shutDown(`adopted by process ${parent}, which waits for its children, and we are the last`);
    }, 250).unref();
  }

  spawnWorker();
  spawnWorker();
  checkIdle();
}

/** Whether `ancestor` is `pid` or one of its ancestors. */
function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p = pid, steps = 0; p > 1 && steps < 256; steps++) {
    if (p === ancestor) return true;
    try {
      const stat = readProcStat(p);
      if (stat === undefined) return true; // gone: no reason to leave
      p = parseProcStat(stat).ppid;
    } catch {
      return true;
    }
  }
  return false;
}

/** True while process `pid` sleeps in wait() (its kernel wait channel is do_wait) and this
 * server is its only child: then it can only be waiting for us. */
function waitsOnlyForUs(pid: number): boolean {
  try {
    if (fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() !== 'do_wait') return false;
    const children = new Set<string>();
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ')) if (child.trim()) children.add(child.trim());
    }
    return children.size === 1 && children.has(String(process.pid));
  } catch {
    return false;
  }
}

try {
  start();
} catch (err) {
  log(`cannot start: ${reason(err)}`);
  process.exit(1);
}
