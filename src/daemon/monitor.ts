// A container's monitor: one small husk process per container (`husk daemon-monitor CONFIG`, in
// its own session), the parent and subreaper of the container's init, as containerd-shim and
// conmon are. It creates and starts the container through husk's runtime, writes its output
// into Docker's json-file log and to the clients attached to it, resizes its terminal, and when
// the init exits deletes the container (poststop hooks: the network is detached) and writes the
// exit status. The container outlives the daemon; a new daemon finds it through the sockets.
//
// Why husk's own and not conmon: conmon writes the k8s-file log format, not Docker's json-file,
// and speaks its own attach protocol (a ctl fifo, a seqpacket socket with a one-byte stream
// prefix); the daemon would translate both for every `docker logs` and `docker attach`. The
// monitor speaks Docker's stream on its attach socket, so the daemon hands the socket over.
//
// runDir (execRoot/<id12>) holds: attach.sock, ctl.sock, monitor.pid ("PID STARTTIME"),
// config.json (this MonitorConfig) and monitor.log (the monitor's own stderr).
//
// attach.sock: the client sends one JSON line {"stdin":bool,"stdout":bool,"stderr":bool}, then
// gets the output (raw with a terminal, Docker's 8-byte-header frames without); what it sends
// after goes to the container's stdin; ending its writing side closes that stdin with stdinOnce.
// ctl.sock: one JSON line a request, one a reply: {"op":"resize","rows":R,"cols":C} -> {} or
// {"error":"..."}; {"op":"wait"} -> the ExitStatus once the exit file is written.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { HuskError, reason } from '../errors';
import { writeFileAtomic } from '../host/atomicWrite';
import { parseProcStat, readProcStat, runsAs } from '../host/procfs';
import { frame, JsonFileWriter, nowRFC3339Nano, type StreamName } from './logs';

// The contract lists readLogs with the monitor's functions: it lives with the log's writer
// (logs.ts) and is exported from here too.
export { readLogs, type ReadLogsOptions } from './logs';

export interface MonitorConfig {
  id: string;              // the container id
  runtimeRoot: string;     // husk --root for the runtime state
  bundle: string;          // OCI bundle: config.json + mounted rootfs
  runDir: string;          // execRoot/<id12>: the monitor's sockets and pid file
  exitFile: string;        // where the exit status is written (JSON, see ExitStatus)
  tty: boolean;            // config.json's process.terminal
  openStdin: boolean;      // -i: keep the container's stdin open for attach
  stdinOnce: boolean;      // close the container's stdin when the first attached client ends its stdin
  logPath: string;         // json-file log; '' for none
  logMaxSize?: number;     // bytes; rotate to logPath.1 ... when bigger
  logMaxFiles?: number;    // how many rotated files are kept (default 1: no rotation kept)
  /** Added to the contract: a client attached before start (`docker run` without -d, `docker
   *  start -a`) and will attach() once startMonitor resolves. The output from the start until
   *  that first attachment is kept (1 MiB, 10 s at most) and sent to it first, and the monitor
   *  waits for it (10 s at most) before it ends, so a quick `echo hi` is not lost to it. */
  holdForAttach?: boolean;
}
export interface ExitStatus { exitCode: number; signal?: number; oomKilled: boolean; finishedAt: string; error?: string }

/** The in-process husk, which runs the monitor (not the front door: the monitor must itself be
 * the init's parent, and a warm server's call would not outlive it). From src/ (tests) and from
 * dist/ alike. */
const HUSK_MAIN = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

const files = (runDir: string) => ({
  attach: path.join(runDir, 'attach.sock'),
  ctl: path.join(runDir, 'ctl.sock'),
  pid: path.join(runDir, 'monitor.pid'),
  config: path.join(runDir, 'config.json'),
  log: path.join(runDir, 'monitor.log'),
});

/** How much output, and for how long, the monitor keeps for a client that attached before
 * start (holdForAttach). */
const HOLD_BYTES = 1 << 20;
const HOLD_MS = 10_000;

/** The fd on which the monitor reports, once, {"pid":N} or {"error":"..."}. */
const READY_FD = 3;

// ====================================================================== the daemon's side

/** Spawns the monitor, which creates and starts the container through husk's runtime. Resolves
 *  once the container's process runs: {pid of the container's init, pid of the monitor}.
 *  Rejects with a HuskError carrying the runtime's message when create/start fails; then
 *  nothing is left (no runtime state, no monitor, no sockets). */
export function startMonitor(c: MonitorConfig): Promise<{ pid: number; monitorPid: number }> {
  const f = files(c.runDir);
  if (monitorAlive(c.runDir)) return Promise.reject(new HuskError(`${c.runDir}: a monitor runs there already`));
  fs.mkdirSync(c.runDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(f.config, JSON.stringify(c), 0o600);
  const execRoot = path.dirname(c.runDir);
  const taken = takeSpare(c.runtimeRoot, execRoot);
  let child: ChildProcess;
  let channel: net.Socket;
  if (taken) {
    // The spare's log becomes this container's monitor.log (same file system: a rename).
    fs.renameSync(taken.logFile, f.log);
    ({ child, channel } = taken);
    channel.write(`${f.config}\n`);
  } else {
    ({ child, channel } = spawnMonitor(c.runtimeRoot, f.log, [f.config]));
  }
  // The next container's monitor starts now, while this one creates its container.
  if (sparesWanted) setImmediate(() => prepareSpare(c.runtimeRoot, execRoot));
  return awaitReport(c, child, channel);
}

/** `node main.js --root ROOT daemon-monitor ARGS`, in its own session, its output in `logFile`,
 *  with a socket on its fd 3 (the report; for a spare, also the config's path). */
function spawnMonitor(runtimeRoot: string, logFile: string, args: string[]): { child: ChildProcess; channel: net.Socket } {
  const logFd = fs.openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [HUSK_MAIN, '--root', runtimeRoot, 'daemon-monitor', ...args], {
      detached: true, // setsid: the daemon's signals and its terminal's hangup do not reach it
      stdio: ['ignore', logFd, logFd, 'pipe'],
      cwd: '/',
      env: monitorEnvironment(),
    });
    return { child, channel: child.stdio[READY_FD] as net.Socket };
  } finally {
    fs.closeSync(logFd);
  }
}

/** Waits for the monitor's one report: the init's pid, or what failed (then removes what a
 *  monitor that crashed left). */
function awaitReport(c: MonitorConfig, child: ChildProcess, ready: net.Socket): Promise<{ pid: number; monitorPid: number }> {
  const f = files(c.runDir);
  return new Promise((resolve, reject) => {
    let text = '';
    let settled = false;
    const exited = child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve(child.exitCode)
      : new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    const fail = async (message: string) => {
      settled = true;
      ready.destroy();
      // The monitor cleans up before it reports; what a crashed one left is removed here.
      await Promise.race([exited, sleep(10_000)]);
      await removeLeftovers(c);
      reject(new HuskError(message));
    };
    ready.setEncoding('utf8');
    ready.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0 || settled) return;
      let msg: { pid?: number; error?: string };
      try {
        msg = JSON.parse(text.slice(0, nl));
      } catch {
        msg = { error: `the monitor's report is not JSON: ${JSON.stringify(text.slice(0, nl))}` };
      }
      if (typeof msg.pid === 'number') {
        settled = true;
        ready.destroy();
        child.unref();
        resolve({ pid: msg.pid, monitorPid: child.pid! });
      } else {
        void fail(msg.error ?? 'the monitor failed');
      }
    });
    ready.on('error', () => undefined);
    child.on('error', (err) => !settled && void fail(`cannot run the monitor ${HUSK_MAIN}: ${reason(err)}`));
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      const last = lastLine(f.log);
      void fail(`the container's monitor ended (${signal ?? `exit code ${code}`}) before the container ran${last ? `: ${last}` : ''}`);
    };
    if (child.exitCode !== null || child.signalCode !== null) ended(child.exitCode, child.signalCode);
    else child.on('exit', ended);
  });
}

// A spare monitor: started before it is needed, with Node up and husk's runtime loaded, it
// waits on its fd 3 for the path of a container's config. Starting a monitor costs a Node
// process's start (a few hundred milliseconds on a busy machine); with a spare, `docker run`
// pays only for the container's own create and start. One spare per daemon, replaced as soon
// as it is taken; it ends when the daemon closes its end of fd 3 (the daemon's exit, even a
// SIGKILL) or is told to stop (stopSpare).

interface Spare {
  child: ChildProcess;
  channel: net.Socket;
  runtimeRoot: string;
  execRoot: string;
  logFile: string;
}

let spare: Spare | undefined;
/** Set by the daemon's first prepareSpare: from then on a taken spare is replaced at once. */
let sparesWanted = false;

export function prepareSpare(runtimeRoot: string, execRoot: string): void {
  sparesWanted = true;
  if (spare && spare.child.exitCode === null && spare.child.signalCode === null) return;
  const logFile = path.join(execRoot, `spare-monitor-${process.pid}.log`);
  try {
    const { child, channel } = spawnMonitor(runtimeRoot, logFile, ['-']);
    channel.on('error', () => undefined);
    child.on('error', () => undefined);
    const mine: Spare = { child, channel, runtimeRoot, execRoot, logFile };
    child.once('exit', () => {
      if (spare === mine) {
        spare = undefined;
        fs.rmSync(logFile, { force: true });
      }
    });
    // The daemon does not wait for its spare to end.
    child.unref();
    (channel as net.Socket & { unref(): void }).unref();
    spare = mine;
  } catch {
    spare = undefined;
  }
}

function takeSpare(runtimeRoot: string, execRoot: string): Spare | undefined {
  const s = spare;
  if (!s || s.runtimeRoot !== runtimeRoot || s.execRoot !== execRoot || s.child.exitCode !== null || s.child.signalCode !== null || !fs.existsSync(s.logFile)) return undefined;
  spare = undefined;
  s.child.removeAllListeners('exit');
  (s.channel as net.Socket & { ref(): void }).ref();
  return s;
}

/** Ends the spare (the daemon stops). */
export function stopSpare(): void {
  sparesWanted = false;
  const s = spare;
  spare = undefined;
  if (!s) return;
  s.channel.destroy();
  try {
    s.child.kill('SIGKILL');
  } catch {
    // gone already
  }
  fs.rmSync(s.logFile, { force: true });
}

/** The daemon's environment, less what was meant for the daemon alone: sockets passed by
 * systemd (LISTEN_*, which create would hand on to the container) and a front door's socket. */
function monitorEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'HUSK_FRONT_DOOR_FD']) delete env[name];
  return env;
}

/** Connects to the monitor's attach socket. What the socket yields is already Docker's stream:
 *  raw bytes with a terminal, the multiplexed frames (8-byte header: stream 1/2, 0,0,0, size
 *  big-endian u32) without. Bytes written to it go to the container's stdin; ending the socket's
 *  writable side closes stdin when stdinOnce. The socket closes when the container's output ends. */
export function attach(runDir: string, o: { stdin: boolean; stdout: boolean; stderr: boolean }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // Not half-open: when the monitor ends the output, the socket closes on this side too.
    const sock = net.connect({ path: files(runDir).attach });
    sock.once('error', (err) => reject(new HuskError(`attach ${files(runDir).attach}: ${reason(err)}`)));
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      sock.write(JSON.stringify({ stdin: o.stdin, stdout: o.stdout, stderr: o.stderr }) + '\n');
      resolve(sock);
    });
  });
}

export async function resize(runDir: string, rows: number, cols: number): Promise<void> {
  const reply = await ctlRequest(runDir, { op: 'resize', rows, cols });
  if (reply.error) throw new HuskError(`resize: ${reply.error}`);
}

/** Resolves when the container's process has ended and the exit file is written (also when the
 *  monitor was already gone: then from the exit file, or {exitCode: 255, error} when there is none). */
export async function waitExit(runDir: string, exitFile: string): Promise<ExitStatus> {
  try {
    const status = await ctlRequest(runDir, { op: 'wait' }, 0);
    if (typeof status.exitCode === 'number') return status as ExitStatus;
  } catch {
    // no monitor to ask (gone, or closing its sockets): the exit file says
  }
  for (;;) {
    const status = readExitFile(exitFile);
    if (status) return status;
    if (!monitorAlive(runDir)) {
      return readExitFile(exitFile) ?? { exitCode: 255, oomKilled: false, finishedAt: nowRFC3339Nano(), error: 'the container\'s monitor is gone and left no exit status' };
    }
    await sleep(100);
  }
}

export function monitorAlive(runDir: string): boolean {
  try {
    const [pid, startTime] = fs.readFileSync(files(runDir).pid, 'utf8').trim().split(' ').map(Number);
    return runsAs(pid, startTime);
  } catch {
    return false;
  }
}

function readExitFile(exitFile: string): ExitStatus | undefined {
  try {
    return JSON.parse(fs.readFileSync(exitFile, 'utf8'));
  } catch {
    return undefined;
  }
}

/** One request on ctl.sock and its one-line reply (timeoutMs 0: wait as long as it takes). */
function ctlRequest(runDir: string, req: object, timeoutMs = 10_000): Promise<any> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(files(runDir).ctl);
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs) timer = setTimeout(() => sock.destroy(new Error(`no reply in ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        try {
          finish(undefined, JSON.parse(text.slice(0, nl)));
        } catch (err) {
          finish(err as Error);
        }
      }
    });
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(new Error('the monitor closed the connection')));
  });
}

/** After a failed start: whatever a monitor that died half-way left (the monitor itself removes
 * all this before it reports a failure). */
async function removeLeftovers(c: MonitorConfig): Promise<void> {
  try {
    const container = require('../runtime/container') as typeof import('../runtime/container');
    if (container.exists(c.runtimeRoot, c.id)) await container.remove(c.runtimeRoot, c.id, true);
  } catch {
    // best effort: the daemon's delete --force tries again
  }
  fs.rmSync(c.runDir, { recursive: true, force: true });
}

function lastLine(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').pop() ?? '';
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A spare monitor's fd 3, once it has its config: the report goes there. */
let spareChannel: net.Socket | undefined;

/** A spare monitor (`daemon-monitor -`): loads what the monitor will need, then waits for the
 *  config's path on fd 3; exits when the daemon closes fd 3 first. */
async function waitAsSpare(): Promise<string> {
  require('../runtime/create');
  require('../runtime/container');
  require('../native');
  const channel = new net.Socket({ fd: READY_FD, readable: true, writable: true });
  return new Promise((resolve) => {
    let text = '';
    channel.setEncoding('utf8');
    channel.on('data', (chunk: string) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      channel.removeAllListeners();
      channel.pause();
      channel.on('error', () => undefined);
      // The report goes back on this socket (report() in runMonitor).
      spareChannel = channel;
      resolve(text.slice(0, nl));
    });
    // The daemon went away before it needed this spare.
    channel.on('end', () => process.exit(0));
    channel.on('error', () => process.exit(0));
  });
}

// ====================================================================== the monitor itself

interface Client {
  socket: net.Socket;
  stdout: boolean;
  stderr: boolean;
}

/** `husk daemon-monitor CONFIG`: runs the container to its end; returns the monitor's exit code. */
export async function runMonitor(configFile: string): Promise<number> {
  if (configFile === '-') configFile = await waitAsSpare();
  let c: MonitorConfig;
  try {
    c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  } catch (err) {
    throw new HuskError(`read the monitor's config ${configFile}: ${reason(err)}`);
  }
  const f = files(c.runDir);
  // In ps, which container this monitor holds (a spare's command line does not say).
  // The state root stays in it: a test's clean-up finds the monitors of its directories by it.
  process.title = `husk --root ${c.runtimeRoot} daemon-monitor ${c.id}`;
  // The daemon ends containers through the runtime's kill; a hangup or a stray signal to the
  // monitor must not leave its container without a parent.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => undefined);
  process.on('uncaughtException', (err) => process.stderr.write(`husk daemon-monitor ${c.id}: ${reason(err)}\n`));
  let reported = false;
  const report = (msg: { pid: number } | { error: string }) => {
    if (reported) return;
    reported = true;
    try {
      if (spareChannel) {
        spareChannel.end(JSON.stringify(msg) + '\n');
      } else {
        fs.writeSync(READY_FD, JSON.stringify(msg) + '\n');
        fs.closeSync(READY_FD);
      }
    } catch {
      // the daemon is gone: nobody waits for the report
    }
  };
  const { create } = require('../runtime/create') as typeof import('../runtime/create');
  const { start, remove } = require('../runtime/container') as typeof import('../runtime/container');
  const { native } = require('../native') as typeof import('../native');

  let created: Awaited<ReturnType<typeof create>>;
  try {
    created = await create({ root: c.runtimeRoot, id: c.id, bundle: c.bundle, relayStdio: !c.tty, detach: false, keepConsole: c.tty });
  } catch (err) {
    fs.rmSync(c.runDir, { recursive: true, force: true });
    report({ error: reason(err) });
    return 1;
  }
  const initPid = created.record.pid;
  let io: ContainerIO | undefined;
  const ctl = ctlServer(() => io, native);
  let servers: net.Server[] = [];
  try {
    io = containerIO(c, created, native);
    servers = [await listen(attachServer(c, io!), f.attach), await listen(ctl.server, f.ctl)];
    const self = parseProcStat(readProcStat(process.pid)!);
    writeFileAtomic(f.pid, `${process.pid} ${self.startTime}`, 0o600);
    await start(c.runtimeRoot, c.id);
  } catch (err) {
    io?.destroy();
    for (const s of servers) s.close();
    await remove(c.runtimeRoot, c.id, true).catch(() => undefined);
    fs.rmSync(c.runDir, { recursive: true, force: true });
    report({ error: reason(err) });
    return 1;
  }
  report({ pid: initPid });

  let wait: { code: number | null; signal: number | null };
  let waitError: string | undefined;
  try {
    wait = await native.waitpidAsync(initPid);
  } catch (err) {
    // Not our child after all (it cannot be, as its subreaper; but should it happen, the
    // container is still seen to its end, without its status).
    waitError = `waitpid ${initPid}: ${reason(err)}`;
    while (runsAs(initPid, created.record.initStartTime)) await sleep(100);
    wait = { code: 255, signal: null };
  }
  await io!.drained(1000, 10_000);
  await io!.firstAttach;
  io!.end();
  const oomKilled = oomKills(created.record.cgroupPaths) > 0;
  let error = waitError;
  try {
    await remove(c.runtimeRoot, c.id, true);
  } catch (err) {
    error = `delete: ${reason(err)}`;
    process.stderr.write(`husk daemon-monitor ${c.id}: ${error}\n`);
  }
  const status: ExitStatus = {
    exitCode: wait.code ?? 128 + (wait.signal ?? 0),
    ...(wait.signal ? { signal: wait.signal } : {}),
    oomKilled,
    finishedAt: nowRFC3339Nano(),
    ...(error ? { error } : {}),
  };
  fs.mkdirSync(path.dirname(c.exitFile), { recursive: true });
  writeFileAtomic(c.exitFile, JSON.stringify(status), 0o600);
  ctl.exited(status);
  await Promise.all(servers.map(closeServer));
  fs.rmSync(c.runDir, { recursive: true, force: true });
  return 0;
}

/** How many times the kernel's OOM killer killed in the container's cgroup: memory.events'
 * oom_kill (cgroup v2), memory.oom_control's oom_kill (v1), read before delete removes them. */
function oomKills(cgroupPaths: Record<string, string> | undefined): number {
  const candidates = [cgroupPaths?.[''] && path.join(cgroupPaths[''], 'memory.events'), cgroupPaths?.memory && path.join(cgroupPaths.memory, 'memory.oom_control')];
  for (const file of candidates) {
    if (!file) continue;
    try {
      const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(file, 'utf8'));
      if (m) return Number(m[1]);
    } catch {
      // no memory controller there
    }
  }
  return 0;
}

/** Stops listening; connections still open after a moment (a client that never ended its
 * side, or never sent its request) are cut. */
async function closeServer(server: net.Server): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  await Promise.race([closed, sleep(1000)]);
  for (const socket of connections.get(server) ?? []) socket.destroy();
  await closed;
}

const connections = new WeakMap<net.Server, Set<net.Socket>>();

function listen(server: net.Server, file: string): Promise<net.Server> {
  const open = new Set<net.Socket>();
  connections.set(server, open);
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  return new Promise((resolve, reject) => {
    fs.rmSync(file, { force: true });
    server.once('error', reject);
    server.listen(file, () => {
      server.removeListener('error', reject);
      fs.chmodSync(file, 0o600);
      resolve(server);
    });
  });
}

// ---------------------------------------------------------------- the container's I/O

interface ContainerIO {
  /** With holdForAttach: settles at the first attachment (or after HOLD_MS). */
  firstAttach?: Promise<void>;
  /** A client wants the output from now on (and what was held for it, if it is the first). */
  addClient(client: Client): void;
  clients: Set<Client>;
  /** Whether the output has ended (every attached client is then ended too). */
  ended: boolean;
  writeStdin(data: Buffer): void;
  closeStdin(): void;
  /** The pty master, with a terminal. */
  master?: number;
  /** After the init's exit: the output's end, or no output for quietMs, or capMs at most. */
  drained(quietMs: number, capMs: number): Promise<void>;
  end(): void;
  destroy(): void;
}

function containerIO(c: MonitorConfig, created: { consoleFd?: number; stdioPipes?: [number, number, number] }, native: typeof import('../native').native): ContainerIO {
  const log = c.logPath ? new JsonFileWriter(c.logPath, { maxSize: c.logMaxSize, maxFiles: c.logMaxFiles }) : undefined;
  const clients = new Set<Client>();
  // Output held for the client that attached before start (holdForAttach), until it comes.
  let held: { stream: StreamName; chunk: Buffer }[] | undefined = c.holdForAttach ? [] : undefined;
  let heldBytes = 0;
  let attached = () => undefined as void;
  const firstAttach = held && new Promise<void>((resolve) => {
    attached = resolve;
    setTimeout(() => {
      held = undefined;
      resolve();
    }, HOLD_MS);
  });
  let quiet: NodeJS.Timeout | undefined;
  const emit = (stream: StreamName, chunk: Buffer) => {
    quiet?.refresh();
    try {
      log?.write(stream, chunk);
    } catch (err) {
      process.stderr.write(`husk daemon-monitor ${c.id}: log ${c.logPath}: ${reason(err)}\n`);
    }
    if (held && heldBytes + chunk.length <= HOLD_BYTES) {
      held.push({ stream, chunk });
      heldBytes += chunk.length;
    }
    const bytes = c.tty ? chunk : frame(stream, chunk);
    for (const client of clients) if (client[stream] && !client.socket.destroyed) client.socket.write(bytes);
  };
  const readers: { destroy(): void }[] = [];
  const ends: Promise<void>[] = [];
  const read = (stream: net.Socket, name: StreamName) => {
    readers.push(stream);
    ends.push(new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => emit(name, chunk));
      // EIO from a pty master: the last holder of the slave (the container) closed it.
      stream.on('error', () => resolve());
      stream.on('end', () => resolve());
      stream.on('close', () => resolve());
    }).then(() => log?.flush(name)));
  };
  let writeStdin: (data: Buffer) => void;
  let closeStdin: () => void;
  if (c.tty) {
    const master = created.consoleFd!;
    const tty = require('tty') as typeof import('tty');
    read(new tty.ReadStream(master) as unknown as net.Socket, 'stdout');
    writeStdin = (data) => {
      // The master is non-blocking: a full input queue is retried a while, then the rest is
      // dropped (as a terminal drops what nobody reads) rather than spin for ever.
      let off = 0;
      for (let tries = 0; off < data.length && tries < 1000; tries++) {
        try {
          off += fs.writeSync(master, data, off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        }
      }
    };
    // A terminal has no end of input of its own: the line discipline's EOF (^D) is what a
    // shell reads as one. Only while the container runs: after, nobody reads it.
    closeStdin = () => !io.ended && writeStdin(Buffer.from([4]));
  } else {
    const [stdinW, stdoutR, stderrR] = created.stdioPipes!;
    read(new net.Socket({ fd: stdoutR, readable: true, writable: false }), 'stdout');
    read(new net.Socket({ fd: stderrR, readable: true, writable: false }), 'stderr');
    let stdin: net.Socket | undefined;
    if (c.openStdin) {
      stdin = new net.Socket({ fd: stdinW, readable: false, writable: true });
      stdin.on('error', () => undefined);
    } else {
      fs.closeSync(stdinW); // without -i the container reads end-of-file at once
    }
    writeStdin = (data) => stdin?.write(data);
    closeStdin = () => {
      stdin?.end();
      stdin = undefined;
    };
  }
  const io: ContainerIO = {
    clients,
    ended: false,
    firstAttach,
    addClient(client) {
      const early = held;
      held = undefined;
      attached();
      for (const { stream, chunk } of early ?? []) {
        if (client[stream]) client.socket.write(c.tty ? chunk : frame(stream, chunk));
      }
      if (io.ended) client.socket.end(() => client.socket.destroy());
      else clients.add(client);
    },
    writeStdin,
    closeStdin,
    master: created.consoleFd,
    drained(quietMs, capMs) {
      let cap: NodeJS.Timeout | undefined;
      return new Promise<void>((resolve) => {
        quiet = setTimeout(resolve, quietMs);
        cap = setTimeout(resolve, capMs);
        void Promise.all(ends).then(() => resolve());
      }).then(() => {
        clearTimeout(quiet);
        clearTimeout(cap);
      });
    },
    end() {
      io.ended = true;
      for (const r of readers) r.destroy();
      try {
        log?.close();
      } catch {
        // the log's directory is gone
      }
      closeStdin();
      // The socket closes when the output ends (its peer need not end its side first).
      for (const client of clients) client.socket.end(() => client.socket.destroy());
      clients.clear();
    },
    destroy() {
      io.end();
    },
  };
  return io;
}

/** attach.sock: one JSON line says what the client wants, then Docker's stream both ways. */
function attachServer(c: MonitorConfig, io: ContainerIO): net.Server {
  return net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let client: Client | undefined;
    let stdin = false;
    socket.on('data', (chunk: Buffer) => {
      if (client) {
        if (stdin) io.writeStdin(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      let want: { stdin?: boolean; stdout?: boolean; stderr?: boolean };
      try {
        want = JSON.parse(head.subarray(0, nl).toString('utf8'));
      } catch {
        socket.destroy();
        return;
      }
      client = { socket, stdout: Boolean(want.stdout), stderr: Boolean(want.stderr) };
      stdin = Boolean(want.stdin) && c.openStdin;
      io.addClient(client);
      if (io.ended) return;
      const rest = head.subarray(nl + 1);
      if (stdin && rest.length) io.writeStdin(rest);
    });
    socket.on('end', () => {
      if (stdin && c.stdinOnce) io.closeStdin();
      // Without output wanted, the client's end is the attachment's end.
      if (client && !client.stdout && !client.stderr) socket.end();
    });
    socket.on('close', () => client && io.clients.delete(client));
  });
}

/** ctl.sock: resize the terminal; wait for the exit status. */
function ctlServer(io: () => ContainerIO | undefined, native: typeof import('../native').native) {
  let status: ExitStatus | undefined;
  const waiters = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('close', () => waiters.delete(socket));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        let req: { op?: string; rows?: number; cols?: number };
        try {
          req = JSON.parse(line);
        } catch {
          socket.end(JSON.stringify({ error: `not JSON: ${JSON.stringify(line.slice(0, 80))}` }) + '\n');
          return;
        }
        if (req.op === 'wait') {
          if (status) socket.end(JSON.stringify(status) + '\n');
          else waiters.add(socket);
        } else if (req.op === 'resize') {
          socket.write(JSON.stringify(resizeMaster(io(), native, req.rows, req.cols)) + '\n');
        } else {
          socket.write(JSON.stringify({ error: `unknown op ${JSON.stringify(req.op)}` }) + '\n');
        }
      }
    });
  });
  return {
    server,
    exited(s: ExitStatus) {
      status = s;
      for (const socket of waiters) socket.end(JSON.stringify(s) + '\n');
      waiters.clear();
    },
  };
}

function resizeMaster(io: ContainerIO | undefined, native: typeof import('../native').native, rows: unknown, cols: unknown): { error?: string } {
  if (io?.master === undefined) return { error: 'the container has no terminal' };
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || (rows as number) < 0 || (cols as number) < 0) {
    return { error: `bad size ${JSON.stringify(rows)}x${JSON.stringify(cols)}` };
  }
  try {
    native.setWindowSize(io.master, rows as number, cols as number);
    return {};
  } catch (err) {
    return { error: `TIOCSWINSZ: ${reason(err)}` };
  }
}
