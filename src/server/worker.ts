// One worker thread of the warm husk server (main.ts): it waits for a front door on the
// shared listening socket, runs that door's call with the door's argv, environment, cwd,
// umask and stdio (cli/main.ts), answers it, and waits for the next. The modules a call needs
// are loaded once, before the first call: that is what makes a warm call fast.
//
// A worker runs one call at a time, so a call may block (a hook, the sync socket, a lock)
// without holding up any other: the other workers serve them.
import * as fs from 'fs';
import * as path from 'path';
import { parentPort, workerData } from 'worker_threads';
import { reason } from '../errors';
import { beginCall, call } from '../host/call';
import { sleepSync } from '../host/sleep';
import { native } from '../native';
import { CALL_HAS_TTY, DoorMsg, FRONT_DOOR_VERSION, parseCall, type DoorCall } from '../native/frontdoor';
import { main } from '../cli/main';
import { endCall } from '../runtime/door';
import { callNeedsOwnProcess, sameWorld, verbOf } from './policy';

const { listenFd, idle } = workerData as { listenFd: number; idle: Int32Array };

/** Idle workers beyond this many retire: a burst of calls leaves no crowd of threads behind. */
const KEEP_IDLE = 2;

// Node's warnings (such as closing an fd another thread opened, which every call does with
// the fds its door sent) go to the server's log, not to a caller's stderr.
// (Closing an fd this thread did not open, as each call does with the door's, is no news.)
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (!w.message.includes('closed but not opened in unmanaged mode')) parentPort!.postMessage({ log: `warning: ${w.message}` });
});

// This thread's cwd and umask are its own from now on: each call gets its caller's.
native.threadUnshareFs();
let cwd = '/';
process.cwd = () => cwd;

/** Everything, even on a non-blocking fd (a caller's pipe may be one). */
function writeAll(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length;) {
    try {
      off += fs.writeSync(fd, data, off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') sleepSync(1);
      else if (code !== 'EINTR') return; // the caller closed its end: nobody reads it
    }
  }
}

// process.stdout and process.stderr of a worker go to the main thread; a call's go to its caller.
for (const [stream, which] of [[process.stdout, 'stdout'], [process.stderr, 'stderr']] as const) {
  stream.write = ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error) => void), done?: (err?: Error) => void) => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : Buffer.from(chunk);
    writeAll(call[which], data);
    const callback = typeof encoding === 'function' ? encoding : done;
    callback?.();
    return true;
  }) as typeof stream.write;
}

/** KEY=VALUE words as an object. */
function environmentOf(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** The caller's environment, in place of the last call's. */
function setEnvironment(env: Record<string, string>) {
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, env);
}

function closeAll(fds: number[]) {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed already
    }
  }
}

/** Why this call goes back to the door, to run in a process of its own; or undefined. */
/** The husk installation this server runs from: a door of another one is not ours to serve. */
const HOME = fs.realpathSync(path.join(__dirname, '..', '..'));

function refusal(c: DoorCall, env: Record<string, string>, peerPid: number): string | undefined {
  if (c.version !== FRONT_DOOR_VERSION) return `front door version ${c.version}, server ${FRONT_DOOR_VERSION}`;
  if (c.home !== HOME) return `the door belongs to ${c.home}, the server to ${HOME}`;
  if (!sameWorld(c.pid, peerPid)) return 'the caller lives in other namespaces or another root';
  try {
    native.threadChdir(c.cwd);
    cwd = c.cwd;
  } catch (err) {
    return `cannot enter the caller's cwd: ${reason(err)}`;
  }
  // (In the caller's cwd: an image run's --store may be a relative path.)
  if (callNeedsOwnProcess(c.argv, env)) return 'the verb runs in a process of its own';
  return undefined;
}

async function serve(conn: { fd: number; uid: number; pid: number }): Promise<void> {
  const held = [conn.fd];
  try {
    // Only the server's own user may call it (the socket is 0600 too).
    if (conn.uid !== process.geteuid?.()) return;
    const msg = native.doorReceive(conn.fd, 5000);
    if (!msg) return;
    held.push(...msg.fds);
    parentPort!.postMessage({ holding: msg.fds });
    if (msg.type !== DoorMsg.Call || msg.fds.length !== 3) return;
    const c = parseCall(msg.body);
    const env = environmentOf(c.env);
    const why = refusal(c, env, conn.pid);
    if (why) {
      parentPort!.postMessage({ log: `call of pid ${c.pid} runs in a process of its own: ${why}` });
      native.doorSend(conn.fd, DoorMsg.Fallback, Buffer.alloc(0), []);
      return;
    }
    native.doorSend(conn.fd, DoorMsg.Accepted, Buffer.alloc(0), []);
    parentPort!.postMessage({ caller: c.pid });
    // (refusal() entered the caller's cwd.)
    native.threadUmask(c.umask);
    setEnvironment(env);
    const callerGone = new AbortController();
    beginCall({ stdin: msg.fds[0], stdout: msg.fds[1], stderr: msg.fds[2], pid: c.pid, hasTty: (c.flags & CALL_HAS_TTY) !== 0, door: conn.fd, gone: callerGone.signal });
    // `events` runs until its container stops: should its caller go away first, the call
    // ends with it, as it did when husk was one process (the worker exits; the server makes
    // another). An image pull is told (call.gone), and stops when it has let go of the store's
    // locks. Other verbs are short, and a create must finish to roll itself back.
    const verb = verbOf(c.argv);
    const watch = verb === 'events'
      ? setInterval(() => native.peerGone(conn.fd) && process.exit(1), 1000)
      : verb === 'image'
        ? setInterval(() => native.peerGone(conn.fd) && callerGone.abort(new Error('the caller has gone')), 500)
        : undefined;
    let code: number;
    try {
      code = await main(c.argv);
    } catch (err) {
      process.stderr.write(`husk: ${reason(err)}\n`);
      code = 1;
    } finally {
      clearInterval(watch);
    }
    endCall(code);
  } catch (err) {
    parentPort!.postMessage({ log: `call of pid ${conn.pid} failed: ${reason(err)}` });
  } finally {
    beginCall({ stdin: 0, stdout: 1, stderr: 2, pid: process.pid });
    // Back to "/": an idle worker must not hold the caller's directory (a file system that
    // could not be unmounted while the server lives).
    cwd = '/';
    native.threadChdir('/');
    closeAll(held);
  }
}

// The modules every call needs, loaded now rather than in the first call.
for (const m of ['../cli/create', '../cli/run', '../cli/start', '../cli/state', '../cli/delete', '../cli/kill', '../cli/exec', '../cli/list',
  '../runtime/create', '../runtime/container', '../runtime/exec', '../spec/validate', '../linux/plan', '../host/log']) require(m);
native.pipe().forEach((fd) => fs.closeSync(fd));

async function loop() {
  Atomics.add(idle, 0, 1);
  for (;;) {
    const conn = native.serverAccept(listenFd, 5000);
    if (conn === undefined) {
      // Five seconds without a call: one of too many idle workers retires.
      if (Atomics.sub(idle, 0, 1) > KEEP_IDLE) return;
      Atomics.add(idle, 0, 1);
      continue;
    }
    if (conn === null) return; // the server shut the socket down: it is exiting
    Atomics.sub(idle, 0, 1);
    parentPort!.postMessage({ busy: true, conn: conn.fd });
    await serve(conn);
    parentPort!.postMessage({ busy: false });
    Atomics.add(idle, 0, 1);
  }
}

loop().then(() => process.exit(0), (err) => {
  parentPort!.postMessage({ log: `worker failed: ${reason(err)}` });
  process.exit(1);
});
