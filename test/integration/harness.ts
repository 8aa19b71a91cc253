/*
 * The integration tests' harness: bundles, the runtime under test, and a check after every test
 * that nothing was left behind.
 *
 * How to run (as root):
 *
 *   tini -s -- npx vitest run --project integration                                  # husk
 *   HUSK_TEST_RUNTIME=$(command -v runc) tini -s -- npx vitest run --project integration  # runc
 *
 * Why `tini -s`: a detached container's init is re-parented to the nearest subreaper when the
 * runtime that started it exits. On this machine PID 1 does not reap orphans, so without a
 * subreaper a container that exits stays a zombie for ever. `tini -s` makes tini that subreaper;
 * every test here is written to work under it (and the harness warns when it is missing).
 *
 * Environment:
 *   HUSK_TEST_RUNTIME    the runtime binary under test (default: <repo>/bin/husk)
 *   HUSK_PROBE           the static probe binary (default: <repo>/build/Release/probe)
 *   HUSK_RECVTTY         the console-socket receiver (default: <repo>/build/Release/recvtty)
 *   HUSK_TEST_REFERENCE  the reference runtime for differential.test.ts (default: runc on PATH)
 *
 * Every test gets its own container ids, bundle directories and `--root` state directory, so test
 * files can run in parallel. Use it like this:
 *
 *   afterEach(cleanup);
 *   it('...', () => {
 *     const bundle = makeBundle({ args: ['report'] });
 *     const id = newId();
 *     const res = rt(['run', '--bundle', bundle.dir, id]);
 *   });
 *
 * or, to run a bundle to its end and read what the probe saw:
 *
 *   const res = expectStatus(runProbe(['report'], { config: (c) => (c.hostname = 'x') }), 0);
 *   expect(res.report().hostname).toBe('x');
 *
 * Waiting (sleep, waitFor), finding programs (which) and reading the probe's output (jsonLine,
 * parseReport) come from test/lib, which the engine tests share, and are re-exported here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { parseReport, type ProbeReport } from '../lib/probe';
import { sleep, waitFor } from '../lib/wait';
import { REPO, which } from '../lib/which';
import { huskServers, stopHuskServers } from '../lib/process';

// What every test file needs from test/lib, from here as well, so an integration test imports
// one module.
export { jsonLine, mountAt, parseReport, type ProbeMount, type ProbeReport } from '../lib/probe';
export { sleep, waitFor } from '../lib/wait';
export { REPO, which } from '../lib/which';

export const RUNTIME: string = path.resolve(process.env.HUSK_TEST_RUNTIME || path.join(REPO, 'bin', 'husk'));
export const RUNTIME_NAME: 'husk' | 'runc' = path.basename(RUNTIME).startsWith('runc') ? 'runc' : 'husk';
export const isRunc = RUNTIME_NAME === 'runc';
export const isHusk = RUNTIME_NAME === 'husk';

/** The reference runtime for differential tests (runc), when there is one. */
export const REFERENCE: string | undefined = process.env.HUSK_TEST_REFERENCE || which('runc');

export const PROBE_SOURCE = path.join(REPO, 'test', 'probe', 'probe.c');
export const RECVTTY_SOURCE = path.join(REPO, 'test', 'tools', 'recvtty.c');

/**
 * Returns a static binary built from `source`: the one named by `envName` if set, otherwise
 * build/Release/<name> (node-gyp builds it), rebuilt with gcc when missing or older than its
 * source. The build writes a temporary file and renames it, so test files starting in parallel
 * never see half a binary.
 */
export function staticTool(envName: string, name: string, source: string): string {
  const fromEnv = process.env[envName];
  if (fromEnv) return path.resolve(fromEnv);
  const binary = path.join(REPO, 'build', 'Release', name);
  const binaryTime = mtime(binary);
  const sourceTime = mtime(source);
  if (sourceTime !== undefined && (binaryTime === undefined || binaryTime < sourceTime)) {
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    const temporary = `${binary}.tmp-${process.pid}`;
    const res = spawnSync('gcc', ['-O2', '-Wall', '-Wno-unused-result', '-static', '-o', temporary, source], {
      encoding: 'utf8',
    });
    if (res.status !== 0) {
      fs.rmSync(temporary, { force: true });
      throw new Error(`building ${name} from ${source} failed:\n${res.stderr}`);
    }
    fs.renameSync(temporary, binary);
  }
  if (!fs.existsSync(binary)) throw new Error(`${binary} does not exist and ${source} is missing: build it or set ${envName}`);
  return binary;
}

function mtime(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

let probeBinary: string | undefined;
/** The static probe binary copied into every rootfs as /probe. */
export function probePath(): string {
  return (probeBinary ??= staticTool('HUSK_PROBE', 'probe', PROBE_SOURCE));
}

let recvttyBinary: string | undefined;
/** `recvtty [--input TEXT] SOCKET_PATH`: receives a console-socket pty and relays its output. */
export function recvttyPath(): string {
  return (recvttyBinary ??= staticTool('HUSK_RECVTTY', 'recvtty', RECVTTY_SOURCE));
}

let seccompAgentBinary: string | undefined;
/** `seccompagent SOCKET_PATH ERRNO`: a seccomp notify listener that answers with -ERRNO. */
export function seccompAgentPath(): string {
  return (seccompAgentBinary ??= staticTool('HUSK_SECCOMPAGENT', 'seccompagent', path.join(REPO, 'test', 'tools', 'seccompagent.c')));
}

// ------------------------------------------------------------------------------------ subreaper

/** True when one of this process's ancestors is tini (which the suite expects to run with -s). */
export function underTini(): boolean {
  let pid = process.ppid;
  for (let depth = 0; pid > 1 && depth < 64; depth++) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'tini') return true;
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}

if (!underTini()) {
  console.warn(
    'harness: not running under `tini -s`; exited detached containers may stay zombies. ' +
      'Run the suite as `tini -s -- npx vitest run --project integration`.',
  );
}

// ----------------------------------------------------------------------------- the OCI config

/** The parts of an OCI runtime config the tests touch; everything else passes through. */
export interface Spec {
  ociVersion: string;
  process?: {
    terminal?: boolean;
    consoleSize?: { height: number; width: number };
    user?: { uid: number; gid: number; umask?: number; additionalGids?: number[] };
    args?: string[];
    env?: string[];
    cwd?: string;
    capabilities?: Record<string, string[]>;
    rlimits?: { type: string; hard: number; soft: number }[];
    noNewPrivileges?: boolean;
    oomScoreAdj?: number;
    [key: string]: unknown;
  };
  root?: { path: string; readonly?: boolean };
  hostname?: string;
  domainname?: string;
  mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
  hooks?: Record<string, { path: string; args?: string[]; env?: string[]; timeout?: number }[]>;
  annotations?: Record<string, string>;
  linux?: {
    namespaces?: { type: string; path?: string }[];
    resources?: Record<string, unknown>;
    devices?: { path: string; type: string; major: number; minor: number; fileMode?: number; uid?: number; gid?: number }[];
    sysctl?: Record<string, string>;
    maskedPaths?: string[];
    readonlyPaths?: string[];
    rootfsPropagation?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

const DEFAULT_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/**
 * The default config, modelled on `runc spec` (runc 1.1) with terminal off, the probe as the
 * process, and a cgroup namespace as newer `runc spec` versions add.
 */
export function defaultConfig(args: string[]): Spec {
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/probe', ...args],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
        ambient: [...DEFAULT_CAPABILITIES],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'husk-test',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

// ------------------------------------------------------------------------ per-test bookkeeping

interface Context {
  /** Temporary directories (bundles, state roots, scratch), removed by cleanup. */
  dirs: string[];
  /** runtime binary -> its --root state directory for this test. */
  roots: Map<string, string>;
  /** Container ids handed out by newId (deleted in every root by cleanup). */
  ids: Set<string>;
  /** Files whose inode marks a process as this test's: each rootfs and each probe copy. */
  marks: { path: string; dev: number; ino: number }[];
  /** Runtimes started with rtSpawn that may still run. */
  children: Running[];
  /** A scratch directory for the runtime's captured output. */
  io?: string;
  calls: number;
}

let current: Context | undefined;
let idCounter = 0;

function ctx(): Context {
  return (current ??= { dirs: [], roots: new Map(), ids: new Set(), marks: [], children: [], calls: 0 });
}

/** A new temporary directory /tmp/husk-it-<tag>XXXXXX, removed after the test. */
export function tempDir(tag = ''): string {
  const dir = fs.mkdtempSync(`/tmp/husk-it-${tag}`);
  fs.chmodSync(dir, 0o755);
  ctx().dirs.push(dir);
  return dir;
}

/** The test's `--root` state directory for a runtime (created on first use). */
export function stateRoot(runtime: string = RUNTIME): string {
  const c = ctx();
  let root = c.roots.get(runtime);
  if (!root) {
    root = tempDir('root-');
    c.roots.set(runtime, root);
  }
  return root;
}

/** A container id unique to this test process, recorded so cleanup deletes it. */
export function newId(prefix = 'c'): string {
  const id = `${prefix}-${process.pid}-${++idCounter}-${Math.random().toString(36).slice(2, 6)}`;
  ctx().ids.add(id);
  return id;
}

function mark(file: string): void {
  const st = fs.statSync(file);
  ctx().marks.push({ path: file, dev: st.dev, ino: st.ino });
}

// ------------------------------------------------------------------------------------ bundles

export interface Bundle {
  /** The bundle directory (pass it as --bundle). */
  dir: string;
  /** Absolute path of the rootfs. */
  rootfs: string;
  configPath: string;
  /** The config as last written. */
  config: Spec;
  /** Changes the config and rewrites config.json. */
  patch(fn: (config: Spec) => void): void;
  /** A path inside the rootfs, as seen from the host. */
  path(inside: string): string;
}

export interface BundleOptions {
  /** The probe's arguments: process.args becomes ['/probe', ...args]. Default: sleep inf. */
  args?: string[];
  /** Changes the default config before it is written. */
  config?: (config: Spec) => void;
  /** Also put a static busybox into the rootfs as /bin/busybox (for hook scripts inside). */
  busybox?: boolean;
}

/**
 * A new bundle: /tmp/husk-it-XXXXXX/ with config.json and rootfs/ holding /probe and the empty
 * directories the default mounts need. The rootfs is read-only by default, like `runc spec`.
 */
export function makeBundle(opts: BundleOptions = {}): Bundle {
  const dir = tempDir();
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs, { mode: 0o755 });
  fs.chmodSync(rootfs, 0o755);
  for (const sub of ['proc', 'sys', 'dev', 'tmp', 'etc']) fs.mkdirSync(path.join(rootfs, sub), { mode: 0o755 });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(probePath(), path.join(rootfs, 'probe'));
  fs.chmodSync(path.join(rootfs, 'probe'), 0o755);
  mark(rootfs);
  mark(path.join(rootfs, 'probe'));
  if (opts.busybox) {
    const busybox = which('busybox');
    if (!busybox) throw new Error('busybox is not installed (apt-get install busybox-static)');
    // It goes alone into the rootfs, so it must not need a dynamic loader.
    if (fs.readFileSync(busybox).subarray(0, 4096).includes('ld-linux')) {
      throw new Error(`${busybox} is dynamically linked; install busybox-static`);
    }
    fs.mkdirSync(path.join(rootfs, 'bin'), { mode: 0o755 });
    fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
    fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
    mark(path.join(rootfs, 'bin', 'busybox'));
  }
  const config = defaultConfig(opts.args ?? ['sleep', 'inf']);
  opts.config?.(config);
  const configPath = path.join(dir, 'config.json');
  const bundle: Bundle = {
    dir,
    rootfs,
    configPath,
    config,
    patch(fn) {
      fn(bundle.config);
      fs.writeFileSync(configPath, JSON.stringify(bundle.config, null, 2));
    },
    path: (inside) => path.join(rootfs, inside),
  };
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  return bundle;
}

// ------------------------------------------------------------------------ running the runtime

export interface RtOptions {
  /** The runtime binary (default RUNTIME). Its --root is this test's root for that binary. */
  runtime?: string;
  /** Text fed on stdin (default: /dev/null). */
  input?: string;
  /** Extra environment (added to this process's). */
  env?: Record<string, string>;
  /** Open fds handed to the runtime as its fds 3, 4, ... */
  extraFds?: number[];
  /** Add `--log FILE` (returned as logFile). */
  log?: boolean;
  /** Kill the runtime after this long (default 30 s); the result then has signal SIGKILL. */
  timeoutMs?: number;
  cwd?: string;
  /** Run through `sh -c 'LISTEN_PID=$$ exec ...'` so LISTEN_PID is the runtime's own pid. */
  listenPid?: boolean;
}

export interface RtResult {
  /** The command line, for failure messages. */
  command: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  /** The runtime's stdout and stderr when it exited. */
  stdout: string;
  stderr: string;
  /**
   * Files that held the runtime's stdout and stderr. A detached container inherits them, so
   * output it writes later (after `start`) shows up by reading them again.
   */
  stdoutFile: string;
  stderrFile: string;
  logFile?: string;
  readStdout(): string;
  readStderr(): string;
}

/**
 * The environment the runtime runs with: this process's, less what vitest and npm add, so the
 * runtime (husk is a Node program) sees what it would see when a user runs it.
 */
function runtimeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(VITEST|npm_)/.test(key) || key === 'NODE_ENV' || key === 'NODE_OPTIONS') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function ioDir(): string {
  const c = ctx();
  return (c.io ??= tempDir('io-'));
}

function runtimeArgv(args: string[], opts: RtOptions, logFile?: string): { file: string; argv: string[] } {
  const runtime = opts.runtime ?? RUNTIME;
  const argv = ['--root', stateRoot(runtime), ...(logFile ? ['--log', logFile] : []), ...args];
  if (opts.listenPid) {
    return { file: '/bin/sh', argv: ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', 'sh', runtime, ...argv] };
  }
  return { file: runtime, argv };
}

/**
 * Runs the runtime once with `--root <this test's state dir>` prepended and waits for it to exit.
 * stdout and stderr go to files, not pipes: a container started by `create` or `run -d` inherits
 * them and would otherwise keep the call waiting for EOF until the container exits.
 */
export function rt(args: string[], opts: RtOptions = {}): RtResult {
  const c = ctx();
  const n = ++c.calls;
  const dir = ioDir();
  const stdoutFile = path.join(dir, `${n}.stdout`);
  const stderrFile = path.join(dir, `${n}.stderr`);
  const logFile = opts.log ? path.join(dir, `${n}.log`) : undefined;
  const fds: number[] = [];
  let res: ReturnType<typeof spawnSync>;
  try {
    let stdin: 'ignore' | number = 'ignore';
    if (opts.input !== undefined) {
      const inputFile = path.join(dir, `${n}.stdin`);
      fs.writeFileSync(inputFile, opts.input);
      stdin = fs.openSync(inputFile, 'r');
      fds.push(stdin);
    }
    const out = fs.openSync(stdoutFile, 'w');
    fds.push(out);
    const err = fs.openSync(stderrFile, 'w');
    fds.push(err);
    const { file, argv } = runtimeArgv(args, opts, logFile);
    res = spawnSync(file, argv, {
      stdio: [stdin, out, err, ...(opts.extraFds ?? [])],
      env: runtimeEnv(opts.env),
      cwd: opts.cwd,
      timeout: opts.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
    });
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  if (res.error && (res.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw res.error;
  const read = (file: string) => fs.readFileSync(file, 'utf8');
  return {
    command: [path.basename(opts.runtime ?? RUNTIME), ...args].join(' '),
    status: res.status,
    signal: res.signal,
    stdout: read(stdoutFile),
    stderr: read(stderrFile),
    stdoutFile,
    stderrFile,
    logFile,
    readStdout: () => read(stdoutFile),
    readStderr: () => read(stderrFile),
  };
}

/** A runtime started in the background (foreground `run` with signals, terminals). */
export interface Running {
  child: ChildProcess;
  pid: number;
  /** Everything it has printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when `pattern` appears on stdout (rejects after timeoutMs or if it exits first). */
  waitForStdout(pattern: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit status once the process has exited and its pipes closed. */
  exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
  /** Feeds text to its stdin (when started with stdin: 'pipe'). */
  write(text: string): void;
}

export interface SpawnOptions extends Omit<RtOptions, 'input' | 'extraFds' | 'timeoutMs' | 'listenPid'> {
  /** A new session without a controlling terminal (setsid). */
  detached?: boolean;
  /** 'pipe' to write to its stdin later; default /dev/null. */
  stdin?: 'pipe' | 'ignore';
}

/** Starts the runtime (or any program, with `file`) in the background with piped output. */
export function rtSpawn(args: string[], opts: SpawnOptions = {}): Running {
  const { file, argv } = runtimeArgv(args, opts, opts.log ? path.join(ioDir(), `${++ctx().calls}.log`) : undefined);
  return spawnTracked(file, argv, opts);
}

/** Starts a helper program (recvtty, ...) in the background, killed by cleanup if still running. */
export function spawnTool(file: string, argv: string[], opts: Omit<SpawnOptions, 'runtime' | 'log'> = {}): Running {
  return spawnTracked(file, argv, opts);
}

function spawnTracked(file: string, argv: string[], opts: SpawnOptions): Running {
  const child = spawn(file, argv, {
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
    env: runtimeEnv(opts.env),
    cwd: opts.cwd,
    detached: opts.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const listener of listeners) listener();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let done = false;
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      done = true;
      for (const listener of listeners) listener();
      resolve({ status, signal });
    });
  });
  exited.catch(() => {});
  const running: Running = {
    child,
    pid: child.pid ?? -1,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitForStdout(pattern, timeoutMs = 10_000) {
      const matches = () => (typeof pattern === 'string' ? stdout.includes(pattern) : pattern.test(stdout));
      return new Promise<void>((resolve, reject) => {
        const finish = (error?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve();
        };
        const check = () => {
          if (matches()) finish();
          else if (done) finish(new Error(`${file} exited before printing ${pattern}; stdout: ${stdout} stderr: ${stderr}`));
        };
        const timer = setTimeout(
          () => finish(new Error(`timed out waiting for ${pattern}; stdout: ${stdout} stderr: ${stderr}`)),
          timeoutMs,
        );
        listeners.add(check);
        check();
      });
    },
    exited,
    write(text) {
      child.stdin!.write(text);
    },
  };
  ctx().children.push(running);
  return running;
}

/**
 * Asserts the runtime's exit status; on failure the message shows the command and its stderr
 * (which is what a developer needs to see when the runtime under test misbehaves).
 */
export function expectStatus(res: RtResult, status: number | null): RtResult {
  expect(res.status, `\`${res.command}\` exited ${res.status}${res.signal ? ` (${res.signal})` : ''}; stderr: ${res.stderr}`).toBe(status);
  return res;
}

// --------------------------------------------------------------------------- running a bundle

export interface RunOptions extends RtOptions {
  /** Options of `run` that go before --bundle, e.g. ['--no-pivot']. */
  flags?: string[];
}

/** `run [flags] --bundle DIR ID` with a new id: runs the bundle's process to its end. */
export function runBundle(bundle: Bundle, opts: RunOptions = {}): RtResult {
  const { flags = [], ...rtOpts } = opts;
  return rt(['run', ...flags, '--bundle', bundle.dir, newId()], rtOpts);
}

export interface ProbeRun extends RtResult {
  /** The bundle it ran. */
  bundle: Bundle;
  /** The probe's report: the first JSON line of its stdout. */
  report(): ProbeReport;
}

/** Makes a bundle whose process is `/probe ...args` and runs it to its end (runBundle). */
export function runProbe(args: string[], bundle: Omit<BundleOptions, 'args'> = {}, opts: RunOptions = {}): ProbeRun {
  const made = makeBundle({ ...bundle, args });
  const res = runBundle(made, opts);
  return { ...res, bundle: made, report: () => parseReport(res.stdout) };
}

// ------------------------------------------------------------------------------------- waiting

/** The runtime's state for a container, parsed, or undefined when `state` fails. */
export function state(id: string, opts: RtOptions = {}): ContainerState | undefined {
  const res = rt(['state', id], opts);
  if (res.status !== 0) return undefined;
  return JSON.parse(res.stdout) as ContainerState;
}

/** A detached container running `probe sleep inf` (or `opts.args`): its bundle, id and init pid. */
export function runningContainer(opts: BundleOptions = {}): { bundle: Bundle; id: string; pid: number } {
  const bundle = makeBundle({ args: ['sleep', 'inf'], ...opts });
  const id = newId();
  expectStatus(rt(['run', '-d', '--bundle', bundle.dir, id]), 0);
  return { bundle, id, pid: state(id)!.pid };
}

export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'stopped' | 'paused';
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** Polls `state` until the container has `status` (up to 10 s); returns that state. */
export function waitForStatus(id: string, status: ContainerState['status'], opts: RtOptions = {}): Promise<ContainerState> {
  let last: ContainerState | undefined;
  return waitFor(`container ${id} to be ${status}`, () => {
    last = state(id, opts);
    return last?.status === status ? last : undefined;
  }).catch((err: Error) => {
    // The last state seen, as it was when the wait gave up.
    throw new Error(`${err.message} (last state: ${JSON.stringify(last)})`);
  });
}

export { alive, processState } from '../lib/process';

// ------------------------------------------------------------------------------ probe output

/** The host's namespace link for a type, like "net:[4026531840]". */
export function hostNamespace(type: string): string {
  return fs.readlinkSync(`/proc/self/ns/${type}`);
}

// ------------------------------------------------------------------------------------ cleanup

/**
 * afterEach(cleanup): stops what the test started, `delete --force`s every container in the
 * test's state roots, then asserts nothing was left behind (polling up to 10 s while things
 * die): no entry in any state root, no mount under a temporary directory of the test, no process
 * whose root, executable, cwd or command line belongs to the test, no cgroup named after one of
 * its containers. Whatever is left is then
 * killed or unmounted so later tests start clean, and the test fails naming it.
 */
export async function cleanup(): Promise<void> {
  const c = current;
  current = undefined;
  if (!c) return;

  for (const running of c.children) {
    if (running.child.exitCode === null && running.child.signalCode === null) {
      try {
        running.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await Promise.all(c.children.map((running) => Promise.race([running.exited.catch(() => {}), sleep(5_000)])));

  for (const [runtime, root] of c.roots) {
    const ids = new Set(c.ids);
    for (const entry of stateEntries(root)) ids.add(entry);
    for (const id of ids) {
      spawnSync(runtime, ['--root', root, 'delete', '--force', id], { stdio: 'ignore', timeout: 30_000, killSignal: 'SIGKILL' });
    }
  }

  await stopHuskServers((root) => isTestRoot(c, root));

  let found: Leftovers = findLeftovers(c);
  const deadline = Date.now() + 10_000;
  while (!found.empty && Date.now() < deadline) {
    await sleep(100);
    found = findLeftovers(c);
  }

  // Scrub, so one failing test does not poison the next.
  for (const pid of found.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const mountPoint of [...found.mounts].sort((a, b) => b.length - a.length)) {
    spawnSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
  }
  const stillMounted = mountPointsUnder(c.dirs);
  for (const dir of c.dirs) {
    // Never recurse into a directory that still has something mounted under it.
    if (stillMounted.some((m) => m === dir || m.startsWith(dir + '/'))) continue;
    fs.rmSync(dir, { recursive: true, force: true });
  }

  if (!found.empty) {
    throw new Error(`the test left things behind:\n  ${found.problems.join('\n  ')}`);
  }
}

/**
 * Asserts now, before cleanup's `delete --force` could tidy anything, that the runtime left
 * nothing of this test behind: no state entry, no mount, no process (polls up to 10 s while
 * processes die). For failed operations, which must clean up after themselves.
 */
export async function expectNothingLeft(): Promise<void> {
  const c = ctx();
  let found = findLeftovers(c);
  const deadline = Date.now() + 10_000;
  while (!found.empty && Date.now() < deadline) {
    await sleep(100);
    found = findLeftovers(c);
  }
  if (!found.empty) throw new Error(`the runtime left things behind:\n  ${found.problems.join('\n  ')}`);
}

interface Leftovers {
  empty: boolean;
  problems: string[];
  pids: number[];
  mounts: string[];
}

/** The warm husk server's own files in a state root (src/server/): "~" is never in an id. */
const SERVER_FILE = /^~server\./;

/** Entries of a state root that are containers (or their leftovers), not the server's files. */
export function stateEntries(root: string): string[] {
  return safeReaddir(root).filter((e) => !SERVER_FILE.test(e));
}

/** The test's roots, and a root in one of its directories (a rootless test's default root). */
function isTestRoot(c: Context, root: string): boolean {
  return [...c.roots.values()].includes(root) || c.dirs.some((d) => root.startsWith(d + '/'));
}

/** The pid of every warm husk server of the test's roots. */
function serversOf(c: Context): number[] {
  return huskServers().filter((s) => isTestRoot(c, s.root)).map((s) => s.pid);
}

function findLeftovers(c: Context): Leftovers {
  const problems: string[] = [];
  for (const [runtime, root] of c.roots) {
    const entries = stateEntries(root);
    if (entries.length) problems.push(`state root ${root} of ${path.basename(runtime)} still holds ${entries.join(', ')}`);
  }
  const mounts = mountPointsUnder(c.dirs);
  for (const m of mounts) problems.push(`mount left at ${m}`);
  const pids = processesOf(c);
  for (const pid of pids) problems.push(`process left: ${describeProcess(pid)}`);
  for (const dir of cgroupsOf(c)) problems.push(`cgroup left: ${dir}`);
  return { empty: problems.length === 0, problems, pids, mounts };
}

/** Cgroup directories whose name contains one of the test's container ids. */
function cgroupsOf(c: Context): string[] {
  const ids = [...c.ids];
  for (const root of c.roots.values()) ids.push(...stateEntries(root));
  if (ids.length === 0) return [];
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const sub = path.join(dir, entry.name);
      if (ids.some((id) => entry.name.includes(id))) found.push(sub);
      else if (depth > 0) walk(sub, depth - 1);
    }
  };
  walk('/sys/fs/cgroup', 5);
  return found;
}

function mountPointsUnder(dirs: string[]): string[] {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mountPoint = unescapeMountinfo(fields[4]);
    if (dirs.some((d) => mountPoint === d || mountPoint.startsWith(d + '/'))) found.push(mountPoint);
  }
  return found;
}

function unescapeMountinfo(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Processes that belong to the test: by root dir or executable inode, cwd, or command line. */
function processesOf(c: Context): number[] {
  const found: number[] = [];
  const servers = serversOf(c);
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || servers.includes(pid)) continue;
    if (belongsToTest(pid, c)) found.push(pid);
  }
  return found;
}

function belongsToTest(pid: number, c: Context): boolean {
  for (const link of ['root', 'exe']) {
    try {
      const st = fs.statSync(`/proc/${pid}/${link}`);
      if (c.marks.some((m) => m.dev === st.dev && m.ino === st.ino)) return true;
    } catch {
      // gone, a kernel thread, or a zombie
    }
  }
  try {
    const cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    if (c.dirs.some((d) => cwd === d || cwd.startsWith(d + '/'))) return true;
  } catch {
    // gone
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (c.dirs.some((d) => cmdline.includes(d))) return true;
  } catch {
    // gone
  }
  return false;
}

function describeProcess(pid: number): string {
  let cmdline = '?';
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    // gone
  }
  return `${pid} (${cmdline})`;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
