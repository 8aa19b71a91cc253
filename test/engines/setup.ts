/*
 * Shared helpers for the engine tests: Podman, containerd (through ctr) and Docker drive husk
 * exactly as they drive runc, and every scenario runs with both runtimes in the same file so an
 * engine problem can be told apart from a husk bug.
 *
 * How to run (as root; each file starts its own daemons and removes everything afterwards):
 *
 *   tini -s -- npx vitest run --project engines                      # all three engines
 *   tini -s -- npx vitest run --project engines test/engines/podman.test.ts
 *
 * What a file owns: one temporary directory /tmp/husk-engines-<engine>-XXXXXX holding the
 * image it builds (a docker-archive made from the static probe and busybox-static, no registry),
 * every daemon's data, state and sockets, the runtimes' --root directories, and a logging
 * wrapper per runtime (bin/husk, bin/runc) that records each call the engine makes: argv, a few
 * environment variables, stdin for `update`, and the exit status. When a scenario fails, the
 * failure message carries that call log and the runtime's JSON log lines, so the exact command
 * line an engine used is in the test output.
 *
 * A few things the engines create outside that directory whatever their configuration says
 * (containerd's shim sockets in /run/containerd/s, Podman's blob-info cache under
 * /var/lib/containers, netavark's /run/containers, Docker's plugin dir /run/docker) are removed
 * afterwards when they did not exist before the file started.
 *
 * Environment:
 *   HUSK_ENGINES_HUSK   the husk binary (default: <repo>/bin/husk)
 *   HUSK_ENGINES_RUNC   the reference runtime (default: runc on PATH)
 *   HUSK_ENGINES_KEEP_DIR  keep each file's directory after teardown (daemons stopped, mounts
 *                       removed) to read the call logs and the config.json of every container
 *                       created and of every exec'd process (calls-<runtime>.log.configs/
 *                       config-<wrapper pid>.json, process-<wrapper pid>.json)
 *   HUSK_ENGINES_TIMINGS   append the timing tables to this file
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'vitest';
import { waitFor } from '../lib/wait';
import { stopHuskServers } from '../lib/process';
import { REPO, which } from '../lib/which';

// The engine tests wait, find programs and read the probe's report as the integration tests do.
export { jsonLine } from '../lib/probe';
export { sleep, waitFor } from '../lib/wait';
export { REPO, which } from '../lib/which';

export type RuntimeName = 'husk' | 'runc';
/** The order scenarios run in: husk first, then runc on the same engine. */
export const RUNTIMES: RuntimeName[] = ['husk', 'runc'];

/**
 * How long a test waits for what an engine does (a container printing, stopping, being cleaned
 * up): an engine's command can take seconds on two busy cores.
 */
export const ENGINE_WAIT_MS = 30_000;

/** An executable that must exist (the Debian packages in scripts/test provide them). */
export function need(name: string, override?: string): string {
  const found = override || which(name);
  if (!found) throw new Error(`${name} is not installed: run scripts/test once, or apt-get install the packages it lists`);
  return found;
}

export function runtimeBinary(name: RuntimeName): string {
  if (name === 'husk') return path.resolve(process.env.HUSK_ENGINES_HUSK || path.join(REPO, 'bin', 'husk'));
  return need('runc', process.env.HUSK_ENGINES_RUNC);
}

// ------------------------------------------------------------------------------- commands

export interface Result {
  command: string;
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
  /** Open fds passed on as the command's fds 3, 4, ... */
  extraFds?: number[];
  /** An open fd for the command's stdin, instead of a pipe carrying `input`. */
  stdinFd?: number;
}

/**
 * Lets the test runner's own messages through. Commands run synchronously (spawnSync), which
 * blocks this worker's event loop; vitest's worker gives up ("Timeout calling onTaskUpdate")
 * when its messages wait 60 s. Tests yield between steps, and no command may run longer than
 * COMMAND_TIMEOUT_MS.
 */
export function yieldToRunner(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

/** The longest any one command may take (it is killed then): well under vitest's 60 s. */
export const COMMAND_TIMEOUT_MS = 45_000;

/** Runs a command to its end (killed after timeoutMs, at most COMMAND_TIMEOUT_MS) and returns what it did. */
export function run(argv: string[], opts: RunOptions = {}): Result {
  const started = Date.now();
  const res = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    input: opts.stdinFd === undefined ? opts.input ?? '' : undefined,
    timeout: Math.min(opts.timeoutMs ?? COMMAND_TIMEOUT_MS, COMMAND_TIMEOUT_MS),
    killSignal: 'SIGKILL',
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
    stdio: [opts.stdinFd ?? 'pipe', 'pipe', 'pipe', ...(opts.extraFds ?? [])],
  });
  return {
    command: argv.map(shellQuote).join(' '),
    status: res.status,
    signal: res.signal,
    stdout: res.stdout ?? '',
    stderr: (res.stderr ?? '') + (res.error ? `\n(spawn error: ${res.error.message})` : ''),
    ms: Date.now() - started,
  };
}

/** The size of the terminal runOnTerminal gives a client; the container's should match it. */
export const TERMINAL_SIZE = { rows: 37, cols: 101 };

/**
 * Runs a command on a new pseudo-terminal (util-linux `script`) of TERMINAL_SIZE, for clients
 * that want a terminal (they pass its size on to the container's).
 */
export function runOnTerminal(argv: string[], opts: RunOptions = {}): Result {
  const command = `stty rows ${TERMINAL_SIZE.rows} cols ${TERMINAL_SIZE.cols}; exec ${argv.map(shellQuote).join(' ')}`;
  // script's stdin must never reach EOF: at EOF script types its terminal's EOF character,
  // which a client relaying its raw terminal passes on to the container's. A fifo opened for
  // reading and writing by this process has a writer as long as it is open.
  const fifo = path.join(fs.mkdtempSync('/tmp/husk-terminal-'), 'stdin');
  spawnSync('mkfifo', ['-m', '0600', fifo]);
  const stdinFd = fs.openSync(fifo, fs.constants.O_RDWR);
  try {
    const res = run(['script', '--quiet', '--return', '--command', command, '/dev/null'], { ...opts, stdinFd });
    return { ...res, command: `(on a terminal) ${argv.map(shellQuote).join(' ')}` };
  } finally {
    fs.closeSync(stdinFd);
    fs.rmSync(path.dirname(fifo), { recursive: true, force: true });
  }
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A readable account of a command's result, for assertion messages. */
export function explain(res: Result): string {
  const how = res.signal ? `killed by ${res.signal}` : `exit ${res.status}`;
  return `$ ${res.command}\n  -> ${how} after ${res.ms} ms\n  stdout: ${clip(res.stdout)}\n  stderr: ${clip(res.stderr)}`;
}

function clip(text: string, max = 4000): string {
  const t = text.trimEnd();
  return t.length > max ? `${t.slice(0, max)}... (${t.length} chars)` : t;
}

// ------------------------------------------------------------------------------ workspace

/** Everything one test file creates, under one temporary directory, and how to remove it. */
export class Workspace {
  readonly dir: string;
  private readonly systemPaths = new Map<string, boolean>();
  private readonly cgroupsBefore: Set<string>;
  private readonly daemons: Daemon[] = [];
  readonly wrappers = new Map<RuntimeName, Wrapper>();

  constructor(readonly engine: string) {
    this.dir = fs.mkdtempSync(`/tmp/husk-engines-${engine}-`);
    fs.chmodSync(this.dir, 0o755);
    for (const p of SYSTEM_PATHS) this.systemPaths.set(p, fs.existsSync(p));
    this.cgroupsBefore = new Set(cgroupDirs());
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  mkdir(...parts: string[]): string {
    const dir = this.path(...parts);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    return dir;
  }

  /**
   * A logging wrapper named after the runtime (bin/<name>): records each call in
   * calls-<name>.log and runs the real binary, adding `--root <root>` first when given (Podman
   * passes no --root, and the test keeps the runtime's state in its own directory).
   */
  wrapper(name: RuntimeName, opts: { root?: string } = {}): Wrapper {
    const existing = this.wrappers.get(name);
    if (existing) return existing;
    const w = makeWrapper(this.mkdir('bin'), this.path(`calls-${name}.log`), name, runtimeBinary(name), opts.root);
    this.wrappers.set(name, w);
    return w;
  }

  /** What teardown does once the daemons have stopped and the workspace's processes are gone
   *  (a network namespace a daemon ran in). */
  private readonly afterDaemons: (() => void)[] = [];

  atTeardown(fn: () => void): void {
    this.afterDaemons.push(fn);
  }

  /** Starts a daemon whose output goes to <dir>/<name>.log; stopped by teardown (or earlier). */
  startDaemon(name: string, argv: string[], env: Record<string, string> = {}): Daemon {
    const logFile = this.path(`${name}.log`);
    const out = fs.openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(argv[0], argv.slice(1), {
        // A session of its own: no signal meant for the test runner's group reaches it.
        detached: true,
        stdio: ['ignore', out, out],
        env: { ...process.env, ...env },
      });
    } finally {
      fs.closeSync(out);
    }
    const daemon = new Daemon(name, child, logFile);
    this.daemons.push(daemon);
    return daemon;
  }

  /**
   * Words that mark a cgroup as this file's (the engines' parents such as `libpod_parent`,
   * `docker` or a containerd namespace): new empty cgroups whose path has one, or a container
   * id, are removed by teardown. Others may belong to tests running beside this file.
   */
  readonly cgroupMarkers: string[] = [];

  /**
   * Stops the daemons (newest first), kills any process still tied to the workspace, unmounts
   * what is still mounted under it, removes it and the system paths the engines created, and
   * returns what had to be cleaned up by force: an empty list means nothing was left behind.
   */
  async teardown(before?: () => Promise<void> | void): Promise<string[]> {
    const problems: string[] = [];
    if (before) {
      try {
        await before();
      } catch (err) {
        problems.push(`engine cleanup failed: ${(err as Error).message}`);
      }
    }
    for (const daemon of [...this.daemons].reverse()) await daemon.stop();
    // husk's warm servers for our state roots are husk's, not leftovers (each exits by itself
    // when idle): ended here, before the search.
    await stopHuskServers((root) => root.startsWith(this.dir + '/'));
    // Processes: shims, conmon, container processes whose root, cwd or command line is ours.
    let pids = processesUnder(this.dir);
    if (pids.length) {
      problems.push(...pids.map((pid) => `process left: ${describeProcess(pid)}`));
      for (const pid of pids) tryKill(pid, 'SIGKILL');
      await waitFor('leftover processes to die', () => processesUnder(this.dir).length === 0, 10_000).catch(() => undefined);
      pids = processesUnder(this.dir);
    }
    // Mounts: deepest first; lazily when busy.
    const mounts = mountsUnder(this.dir);
    if (mounts.length) {
      problems.push(...mounts.map((m) => `mount left: ${m}`));
      for (const m of mounts.sort((a, b) => b.length - a.length)) {
        if (run(['umount', m]).status !== 0) run(['umount', '--lazy', m]);
      }
    }
    // What the daemons' tests registered (a network namespace to prune and remove), now that
    // no process of the workspace is left.
    for (const fn of this.afterDaemons.reverse()) {
      try {
        fn();
      } catch (err) {
        problems.push(`cleanup after the daemons failed: ${(err as Error).message}`);
      }
    }
    // Cgroups: new empty ones are removed (engines leave their parents, such as
    // libpod_parent, docker or a containerd namespace); one naming a container is the runtime's.
    const ids = this.containerIds();
    const ours = (dir: string) => [...ids, ...this.cgroupMarkers].some((word) => dir.split('/').some((part) => part.includes(word)));
    const newCgroups = cgroupDirs()
      .filter((d) => !this.cgroupsBefore.has(d) && ours(d))
      .sort((a, b) => b.length - a.length);
    for (const dir of newCgroups) {
      if (ids.some((id) => path.basename(dir).includes(id))) problems.push(`cgroup left: ${dir}`);
      try {
        fs.rmdirSync(dir);
      } catch {
        // busy or not empty: reported below if it names a container
      }
    }
    if (process.env.HUSK_ENGINES_KEEP_DIR) {
      console.log(`HUSK_ENGINES_KEEP_DIR: ${this.dir} kept (daemons stopped, mounts removed)`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
      if (fs.existsSync(this.dir)) problems.push(`could not remove ${this.dir}`);
    }
    for (const [p, existed] of this.systemPaths) {
      if (existed) continue;
      try {
        if (fs.lstatSync(p).isDirectory()) fs.rmdirSync(p);
        else fs.unlinkSync(p);
      } catch {
        // absent, or a directory that holds something else: left alone
      }
    }
    if (pids.length) problems.push(`processes that would not die: ${pids.join(', ')}`);
    return problems;
  }

  /** Container ids that any runtime wrapper saw created. */
  containerIds(): string[] {
    const ids: string[] = [];
    for (const w of this.wrappers.values()) {
      const all = [...parseCallLog(`${w.callLog}.all`), ...w.calls()];
      ids.push(...all.filter((c) => c.verb === 'create').map((c) => c.id));
    }
    return ids.filter(Boolean);
  }
}

/**
 * What the engines create outside the workspace whatever their configuration: the files they
 * leave, then their directories, deepest first. Teardown removes, of those that did not exist
 * before the file started, the listed files and the directories left empty, and nothing else
 * (another user of the machine may keep real data there).
 */
const SYSTEM_PATHS = [
  '/run/containerd/s', // containerd-shim-runc-v2's sockets (removed by the shims themselves)
  '/run/containerd',
  '/run/docker/plugins', // dockerd's plugin discovery directory
  '/run/docker',
  '/run/containers/networks', // netavark's run directory
  '/run/containers',
  '/var/lib/containers/cache/blob-info-cache-v1.boltdb', // containers/image's cache, despite --root
  '/var/lib/containers/cache',
  '/var/lib/containers',
  '/run/libpod',
  '/etc/docker/key.json', // dockerd's trust key, unless deprecated-key-path says otherwise
  '/dev/shm/libpod_lock', // Podman's shm locks, unless lock_type = "file"
];

export class Daemon {
  private exited = false;
  private exitInfo = '';
  constructor(readonly name: string, readonly child: ChildProcess, readonly logFile: string) {
    child.on('exit', (code, signal) => {
      this.exited = true;
      this.exitInfo = signal ? `killed by ${signal}` : `exit ${code}`;
    });
    child.on('error', (err) => {
      this.exited = true;
      this.exitInfo = `could not start: ${err.message}`;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Waits until `ready()` holds; fails at once, with the daemon's log, if it exits first. */
  async waitReady(ready: () => boolean, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${this.name} to be ready`, () => {
      if (this.exited) throw new Error(`${this.name} exited (${this.exitInfo}) before it was ready:\n${this.logTail()}`);
      return ready();
    }, timeoutMs).catch((err) => {
      throw new Error(`${(err as Error).message}\n${this.logTail()}`);
    });
  }

  logTail(lines = 40): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM, up to 30 s to exit, then SIGKILL. */
  async stop(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    this.child.kill('SIGTERM');
    try {
      await waitFor(`${this.name} to exit`, () => this.exited, 30_000);
    } catch {
      this.child.kill('SIGKILL');
      await waitFor(`${this.name} to die`, () => this.exited, 10_000).catch(() => undefined);
    }
  }
}

// ------------------------------------------------------------------------ runtime wrapper

export interface Call {
  /** The arguments the engine passed, as received. */
  argv: string[];
  /** The verb (first non-option word), e.g. create, exec, delete. */
  verb: string;
  /** The container id (last word) for the verbs that take one. */
  id: string;
  /** The exit status, or null when the call has not finished (or the log lost it). */
  status: number | null;
  /** What was read on stdin (recorded for `update` only). */
  stdin?: string;
  env: string;
  /** The value after --log, when given. */
  logFile?: string;
  /** How long the call took (from the wrapper's clock), or null while it runs. */
  ms: number | null;
}

export interface Wrapper {
  name: RuntimeName;
  /** The wrapper script the engine is told to use. */
  path: string;
  /** The real binary it runs. */
  binary: string;
  /** The --root the wrapper adds, if any. */
  root?: string;
  callLog: string;
  calls(): Call[];
  /** The call log and the runtime's JSON log lines, for assertion messages. */
  report(): string;
}

/** Flags of runc's that take a value (so the verb can be found after them). */
const VALUE_FLAGS = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);

function makeWrapper(binDir: string, callLog: string, name: RuntimeName, binary: string, root?: string): Wrapper {
  const script = path.join(binDir, name);
  const extra = root ? `--root ${shellQuote(root)} ` : '';
  // Bash, not exec: the exit status is recorded after the runtime returns. Each record is one
  // line: "<time> <pid> argv: <args %q-quoted>", "<time> <pid> env: ...", "<time> <pid> stdin: ...",
  // "<time> <pid> exit <status>".
  const text = `#!/bin/bash
# Logging wrapper written by test/engines/setup.ts: records the engine's call, then runs ${name}.
log=${shellQuote(callLog)}
{ printf '%s %s argv:' "$(date +%s.%N)" "$$"; printf ' %q' "$@"; echo; } >> "$log"
printf '%s %s env: NOTIFY_SOCKET=%q LISTEN_FDS=%q LISTEN_PID=%q XDG_RUNTIME_DIR=%q\\n' "$(date +%s.%N)" "$$" "$NOTIFY_SOCKET" "$LISTEN_FDS" "$LISTEN_PID" "$XDG_RUNTIME_DIR" >> "$log"
# Keep a copy of the config of each container the engine creates.
prev=
for arg in "$@"; do
  if [ "$prev" = --bundle ] || [ "$prev" = -b ]; then
    mkdir -p ${shellQuote(callLog + '.configs')} && cp "$arg/config.json" ${shellQuote(callLog + '.configs')}/"config-$$.json" 2>/dev/null
  fi
  if [ "$prev" = --process ] || [ "$prev" = -p ]; then
    mkdir -p ${shellQuote(callLog + '.configs')} && cp "$arg" ${shellQuote(callLog + '.configs')}/"process-$$.json" 2>/dev/null
  fi
  prev=$arg
done
case " $* " in
  *" update "*)
    input=$(mktemp ${shellQuote(binDir)}/stdin.XXXXXX)
    cat > "$input"
    printf '%s %s stdin: %q\\n' "$(date +%s.%N)" "$$" "$(cat "$input")" >> "$log"
    ${shellQuote(binary)} ${extra}"$@" < "$input"; rc=$?
    rm -f "$input";;
  *)
    ${shellQuote(binary)} ${extra}"$@"; rc=$?;;
esac
printf '%s %s exit %s\\n' "$(date +%s.%N)" "$$" "$rc" >> "$log"
exit $rc
`;
  fs.writeFileSync(script, text, { mode: 0o755 });
  fs.writeFileSync(callLog, '');
  const calls = (): Call[] => parseCallLog(callLog);
  return {
    name,
    path: script,
    binary,
    root,
    callLog,
    calls,
    report(): string {
      const lines = [`calls to ${name} (${callLog}):`];
      const logs = new Set<string>();
      for (const c of calls()) {
        lines.push(`  ${c.status === null ? '(running)' : `exit ${c.status}`}: ${name} ${c.argv.map(shellQuote).join(' ')}`);
        if (c.stdin !== undefined) lines.push(`    stdin: ${c.stdin}`);
        if (c.logFile) logs.add(c.logFile);
      }
      for (const file of logs) {
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8').trim();
        } catch {
          continue; // the engine removed it with the container
        }
        if (text) lines.push(`log ${file}:`, ...text.split('\n').slice(-20).map((l) => `  ${l}`));
      }
      return lines.join('\n');
    },
  };
}

/** Reads a wrapper's call log (see makeWrapper for its format). */
export function parseCallLog(file: string): Call[] {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const byPid = new Map<string, Call>();
  const started = new Map<Call, number>();
  const calls: Call[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\d+) (argv:|env:|stdin:|exit) ?(.*)$/.exec(line);
    if (!m) continue;
    const [, time, pid, kind, rest] = m;
    if (kind === 'argv:') {
      const argv = unquoteBash(rest);
      let i = 0;
      let logFile: string | undefined;
      while (i < argv.length && argv[i].startsWith('-')) {
        const flag = argv[i].split('=')[0];
        if (flag === '--log' && !argv[i].includes('=')) logFile = argv[i + 1];
        if (flag === '--log' && argv[i].includes('=')) logFile = argv[i].slice(6);
        i += VALUE_FLAGS.has(flag) && !argv[i].includes('=') ? 2 : 1;
      }
      const verb = argv[i] ?? '';
      const takesId = !['list', 'features', 'spec', 'help', ''].includes(verb);
      const call: Call = { argv, verb, id: takesId ? lastId(argv.slice(i + 1), verb) : '', status: null, env: '', logFile, ms: null };
      started.set(call, Number(time));
      byPid.set(pid, call);
      calls.push(call);
    } else {
      const call = byPid.get(pid);
      if (!call) continue;
      if (kind === 'exit') {
        call.status = Number(rest);
        call.ms = Math.round((Number(time) - started.get(call)!) * 1000);
      }
      else if (kind === 'env:') call.env = rest;
      else call.stdin = unquoteBash(rest)[0] ?? '';
    }
  }
  return calls;
}

/** The container id among a verb's arguments: the first word that is not an option or its value. */
function lastId(args: string[], verb: string): string {
  const valueFlags = new Set([
    '--bundle', '-b', '--pid-file', '--console-socket', '--preserve-fds', '--process', '-p', '--format', '-f',
    '--cwd', '--env', '-e', '--user', '-u', '--cap', '-c', '--additional-gids', '-g', '--apparmor', '--process-label',
    '--resources', '-r', '--interval', '--cgroup',
  ]);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('-')) {
      if (valueFlags.has(a) && !(verb === 'kill' && a === '--all')) i++;
      continue;
    }
    return a;
  }
  return '';
}

/** Undoes bash's printf %q for the forms it produces: plain words, backslash escapes, $'...'. */
export function unquoteBash(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ') i++;
    if (i >= text.length) break;
    let word = '';
    while (i < text.length && text[i] !== ' ') {
      if (text.startsWith("$'", i)) {
        i += 2;
        while (i < text.length && text[i] !== "'") {
          if (text[i] === '\\') {
            const next = text[i + 1];
            const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', "'": "'", '\\': '\\', e: '\x1b', E: '\x1b', a: '\x07', b: '\b', f: '\f', v: '\v' };
            if (next in simple) {
              word += simple[next];
              i += 2;
            } else if (/[0-7]/.test(next)) {
              const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1))![0];
              word += String.fromCharCode(parseInt(oct, 8));
              i += 1 + oct.length;
            } else {
              word += next;
              i += 2;
            }
          } else word += text[i++];
        }
        i++;
      } else if (text.startsWith("''", i)) {
        i += 2; // %q's empty word
      } else if (text[i] === '\\') {
        word += text[i + 1] ?? '';
        i += 2;
      } else word += text[i++];
    }
    words.push(word);
  }
  return words;
}

/**
 * Appended to a probe command whose output a test reads through containerd (ctr, Docker): the
 * process stays half a second after printing. containerd's I/O copy can drop the output of a
 * process that exits right after writing it (containerd/containerd#5741, seen here with runc
 * too: about 1 exec in 50 under load); the runtime plays no part in that.
 */
export const LINGER = ['then', 'sleep', '0.5'];

// ---------------------------------------------------------------------------------- image

export const IMAGE = 'localhost/husk-probe:latest';

/**
 * Builds the test image as a docker-archive tarball (what `docker save` writes; Podman,
 * containerd and Docker all load it): one layer with /probe (the static probe), /bin/busybox
 * (busybox-static) and a few of its applets, /etc/passwd and /etc/group. Cmd is
 * `/probe sleep inf`. Returns the tarball's path. `tag` and `cmd` make another image of the same
 * files (the CRI tests' sandbox image: `/probe signals 0`, which waits like a pause container and
 * ends on SIGTERM or SIGINT).
 */
export function buildImage(ws: Workspace, opts: { tag?: string; cmd?: string[] } = {}): string {
  const tag = opts.tag ?? IMAGE;
  const probe = probePath();
  const busybox = need('busybox');
  if (fs.readFileSync(busybox).subarray(0, 4096).includes('ld-linux')) {
    throw new Error(`${busybox} is dynamically linked; install busybox-static`);
  }
  const work = ws.mkdir(tag === IMAGE ? 'image' : `image-${crypto.createHash('sha256').update(tag).digest('hex').slice(0, 8)}`);
  const rootfs = path.join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var/tmp']) fs.mkdirSync(path.join(rootfs, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(probe, path.join(rootfs, 'probe'));
  fs.chmodSync(path.join(rootfs, 'probe'), 0o755);
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'echo', 'ls', 'sleep', 'true', 'false', 'id', 'ps', 'env']) {
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  // Not executable: `run IMAGE /etc/passwd` is a permission error.
  fs.writeFileSync(path.join(rootfs, 'etc', 'hostname'), 'husk-probe\n');

  const layerTar = path.join(work, 'layer.tar');
  tar(['-C', rootfs, '-cf', layerTar, '.']);
  const layer = fs.readFileSync(layerTar);
  const diffId = crypto.createHash('sha256').update(layer).digest('hex');

  const archive = path.join(work, 'archive');
  fs.mkdirSync(path.join(archive, diffId), { recursive: true });
  fs.renameSync(layerTar, path.join(archive, diffId, 'layer.tar'));
  const created = '2024-01-01T00:00:00Z';
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: opts.cmd ?? ['/probe', 'sleep', 'inf'],
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created, created_by: 'test/engines/setup.ts' }],
  });
  const configId = crypto.createHash('sha256').update(config).digest('hex');
  fs.writeFileSync(path.join(archive, `${configId}.json`), config);
  fs.writeFileSync(
    path.join(archive, 'manifest.json'),
    JSON.stringify([{ Config: `${configId}.json`, RepoTags: [tag], Layers: [`${diffId}/layer.tar`] }]),
  );
  const tarball = path.join(work, 'husk-probe.tar');
  tar(['-C', archive, '-cf', tarball, '.']);
  fs.rmSync(archive, { recursive: true, force: true });
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tarball;
}

function tar(args: string[]): void {
  const res = run(['tar', '--numeric-owner', '--owner=0', '--group=0', '--sort=name', ...args]);
  if (res.status !== 0) throw new Error(`tar failed:\n${explain(res)}`);
}

/** The static probe (test/probe/probe.c), built by the addon's build; rebuilt with gcc if older. */
export function probePath(): string {
  const fromEnv = process.env.HUSK_PROBE;
  if (fromEnv) return path.resolve(fromEnv);
  const binary = path.join(REPO, 'build', 'Release', 'probe');
  const source = path.join(REPO, 'test', 'probe', 'probe.c');
  const age = (f: string) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : undefined);
  const b = age(binary);
  const s = age(source);
  if (s !== undefined && (b === undefined || b < s)) {
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    const temporary = `${binary}.tmp-${process.pid}`;
    const res = run(['gcc', '-O2', '-Wall', '-Wno-unused-result', '-static', '-o', temporary, source]);
    if (res.status !== 0) {
      fs.rmSync(temporary, { force: true });
      throw new Error(`building the probe failed:\n${explain(res)}`);
    }
    fs.renameSync(temporary, binary);
  }
  if (!fs.existsSync(binary)) throw new Error(`${binary} does not exist: build it (npm run build) or set HUSK_PROBE`);
  return binary;
}

// ------------------------------------------------------------------------ what is left

function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    if (processTouches(pid, dir)) found.push(pid);
  }
  return found;
}

function processTouches(pid: number, dir: string): boolean {
  const inside = (p: string) => p === dir || p.startsWith(dir + '/');
  for (const link of ['root', 'cwd', 'exe']) {
    try {
      if (inside(fs.readlinkSync(`/proc/${pid}/${link}`))) return true;
    } catch {
      // gone, a kernel thread, or not ours to read
    }
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes(dir)) {
      // A zombie has an empty cmdline; a live process that names our directory is ours.
      return true;
    }
  } catch {
    // gone
  }
  return false;
}

function describeProcess(pid: number): string {
  try {
    return `${pid} (${fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()})`;
  } catch {
    return `${pid}`;
  }
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone
  }
}

/** Mount points under dir, from /proc/self/mountinfo (octal escapes decoded). */
export function mountsUnder(dir: string): string[] {
  const found: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mountPoint = fields[4].replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (mountPoint === dir || mountPoint.startsWith(dir + '/')) found.push(mountPoint);
  }
  return found;
}

/** Every cgroup directory down to depth 4 under /sys/fs/cgroup (v1 controllers and v2). */
function cgroupDirs(): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const sub = path.join(dir, e.name);
      found.push(sub);
      if (depth > 0) walk(sub, depth - 1);
    }
  };
  walk('/sys/fs/cgroup', 4);
  return found;
}

/**
 * Whether the process is frozen by its cgroup's freezer, as a user would check it: cgroup v2
 * `cgroup.events` says `frozen 1`, or v1 `freezer.state` says FROZEN.
 */
export function frozen(pid: number): boolean {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  for (const line of lines) {
    const [, controllers, cgroupPath] = line.split(':');
    if (controllers.split(',').includes('freezer')) {
      const state = fs.readFileSync(path.join('/sys/fs/cgroup/freezer', cgroupPath, 'freezer.state'), 'utf8').trim();
      return state === 'FROZEN';
    }
  }
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified) {
    const base = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
    const events = fs.readFileSync(path.join(base, unified.slice(3), 'cgroup.events'), 'utf8');
    return /^frozen 1$/m.test(events);
  }
  throw new Error(`no freezer cgroup for pid ${pid}`);
}

/**
 * A cgroup file of the process's, as a user would read it on the host: the v1 controller's
 * hierarchy when it is mounted (this machine is hybrid), else the unified one.
 */
export function cgroupFile(pid: number, controller: string, v1File: string, v2File: string): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  for (const line of lines) {
    const [, controllers, cgroupPath] = line.split(':');
    if (controllers.split(',').includes(controller)) {
      return fs.readFileSync(path.join('/sys/fs/cgroup', controller, cgroupPath, v1File), 'utf8').trim();
    }
  }
  const unified = lines.find((l) => l.startsWith('0::'));
  if (!unified) throw new Error(`no ${controller} cgroup for pid ${pid}`);
  const base = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  return fs.readFileSync(path.join(base, unified.slice(3), v2File), 'utf8').trim();
}

/** The memory limit in bytes (v1 memory.limit_in_bytes or v2 memory.max). */
export function memoryLimit(pid: number): string {
  return cgroupFile(pid, 'memory', 'memory.limit_in_bytes', 'memory.max');
}

/** The pids limit (pids.max in both versions). */
export function pidsLimit(pid: number): string {
  return cgroupFile(pid, 'pids', 'pids.max', 'pids.max');
}

export { processState } from '../lib/process';

// ------------------------------------------------------------------------------- timings

const timings: { engine: string; scenario: string; runtime: RuntimeName; ms: number }[] = [];
const verbTimes: { engine: string; runtime: RuntimeName; verb: string; ms: number }[] = [];

/** Records how long a scenario took (printed by printTimings; never asserted). */
export function recordTiming(engine: string, scenario: string, runtime: RuntimeName, ms: number): void {
  timings.push({ engine, scenario, runtime, ms });
}

/** The median of some numbers (the middle one, or the lower middle). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Records how long each runtime call of a scenario took, from its wrapper's log. */
export function recordCallTimes(engine: string, w: Wrapper): void {
  for (const c of w.calls()) if (c.ms !== null) verbTimes.push({ engine, runtime: w.name, verb: c.verb, ms: c.ms });
}

/** One line per scenario: husk's time and runc's, for the issue's notes. */
export function printTimings(engine: string): string {
  const rows = new Map<string, Partial<Record<RuntimeName, number>>>();
  for (const t of timings.filter((t) => t.engine === engine)) {
    const row = rows.get(t.scenario) ?? {};
    row[t.runtime] = t.ms;
    rows.set(t.scenario, row);
  }
  const lines = [`${engine}: scenario time with husk vs runc (ms)`];
  for (const [scenario, row] of rows) lines.push(`  ${scenario}: husk ${row.husk ?? '-'}  runc ${row.runc ?? '-'}`);
  const verbs = [...new Set(verbTimes.filter((t) => t.engine === engine).map((t) => t.verb))];
  if (verbs.length) lines.push(`${engine}: median time of one runtime call, husk vs runc (ms, number of calls)`);
  for (const verb of verbs) {
    const cell = (rt: RuntimeName) => {
      const ms = verbTimes.filter((t) => t.engine === engine && t.runtime === rt && t.verb === verb).map((t) => t.ms).sort((a, b) => a - b);
      return ms.length ? `${ms[Math.floor(ms.length / 2)]} (${ms.length})` : '-';
    };
    lines.push(`  ${verb}: husk ${cell('husk')}  runc ${cell('runc')}`);
  }
  const text = lines.join('\n');
  console.log(text);
  const file = process.env.HUSK_ENGINES_TIMINGS;
  if (file) fs.appendFileSync(file, `${text}\n`);
  return text;
}

/** Checks that the process is root; the engines need it. */
export function requireRoot(): void {
  if (process.geteuid?.() !== 0) throw new Error('the engine tests need root (and run under `tini -s`)');
}

// ------------------------------------------------------------------- per-scenario checks

/** The --root a call used (its own flag, else the wrapper's, else the runtime's default). */
function rootOfCall(w: Wrapper, call: Call): string {
  for (let i = 0; i < call.argv.length; i++) {
    const a = call.argv[i];
    if (a === '--root') return call.argv[i + 1];
    if (a.startsWith('--root=')) return a.slice('--root='.length);
    if (!a.startsWith('-')) break;
  }
  return w.root ?? (w.name === 'husk' ? '/run/husk' : '/run/runc');
}

/**
 * What the runtime still holds of the containers the engine created through it: a state
 * directory under its --root, or a cgroup named after the container. Empty when all is gone.
 */
export function leftoversOf(w: Wrapper): string[] {
  const problems: string[] = [];
  const creates = w.calls().filter((c) => c.verb === 'create' && c.id);
  if (creates.length === 0) return problems;
  const cgroups = cgroupDirs();
  for (const c of creates) {
    const state = path.join(rootOfCall(w, c), c.id);
    if (fs.existsSync(state)) problems.push(`${w.name}'s state directory ${state} is still there`);
    for (const dir of cgroups) if (path.basename(dir).includes(c.id)) problems.push(`cgroup ${dir} is still there`);
  }
  return problems;
}

/** Polls (up to 30 s) until leftoversOf(w) is empty; throws with the list and the call log. */
export async function expectNoLeftovers(w: Wrapper): Promise<void> {
  let problems: string[] = [];
  try {
    await waitFor(`${w.name}'s containers to be cleaned up`, () => (problems = leftoversOf(w)).length === 0, 30_000);
  } catch {
    throw new Error(`after the scenario, ${w.name} left:\n  ${problems.join('\n  ')}\n${w.report()}`);
  }
}

/**
 * Starts a new call log for the next scenario (each reports only its own calls); the old calls
 * move to <callLog>.all, which teardown still reads for container ids.
 */
export function resetCalls(w: Wrapper): void {
  fs.appendFileSync(`${w.callLog}.all`, fs.readFileSync(w.callLog));
  fs.writeFileSync(w.callLog, '');
}

/**
 * Returns `scenario(name, body, cleanup?)`, which defines one test per runtime (husk first, then
 * runc): the body runs with that runtime's wrapper, is timed (recordTiming), has the call log
 * and the runtime's JSON log appended to any failure, and is followed by `cleanup` (always) and
 * a check that the runtime kept nothing of the containers it created.
 */
export function scenarios(engine: string, workspace: () => Workspace) {
  return function scenario(
    name: string,
    body: (rt: RuntimeName, w: Wrapper) => Promise<void> | void,
    cleanup?: (rt: RuntimeName) => Promise<void> | void,
  ): void {
    for (const rt of RUNTIMES) {
      it(`${name} (${rt})`, async () => {
        const w = workspace().wrappers.get(rt)!;
        resetCalls(w);
        await yieldToRunner();
        const started = Date.now();
        try {
          await body(rt, w);
          recordTiming(engine, name, rt, Date.now() - started);
          recordCallTimes(engine, w);
        } catch (err) {
          if (err instanceof Error) err.message += `\n${w.report()}`;
          throw err;
        } finally {
          await yieldToRunner();
          await cleanup?.(rt);
        }
        await yieldToRunner();
        await expectNoLeftovers(w);
      });
    }
  };
}

// ------------------------------------------------------------------------- differential

/** The parts of the probe's `report` that must be the same whichever runtime made the container. */
export function comparableReport(report: Record<string, any>): Record<string, unknown> {
  // The rootfs overlay names the container's own layer directories.
  const options = (text: string) => text.replace(/\b(lowerdir|upperdir|workdir)=[^,]*/g, '$1=...');
  const mounts = (report.mounts ?? []).map((m: Record<string, any>) => `${m.mountPoint} ${m.fsType} ${options(m.options)}`).sort();
  return {
    user: `uid=${report.uid} gid=${report.gid} euid=${report.euid} egid=${report.egid} groups=${(report.groups ?? []).join(',')}`,
    // An engine's default hostname is the start of the container id.
    hostname: /^[0-9a-f]{12}$/.test(report.hostname) ? '(container id)' : report.hostname,
    umask: report.umask,
    cwd: report.cwd,
    caps: report.caps,
    noNewPrivs: report.noNewPrivs,
    seccomp: report.seccomp,
    rlimits: report.rlimits,
    oomScoreAdj: report.oomScoreAdj,
    env: [...(report.env ?? [])].filter((e: string) => !e.startsWith('HOSTNAME=')).sort(),
    interfaces: (report.interfaces ?? []).map((i: Record<string, any>) => `${i.name} up=${i.up}`),
    mounts,
    fds: (report.fds ?? []).map((f: Record<string, any>) => f.fd),
    tty: report.tty,
  };
}

/** Field-by-field differences between two comparable reports, as readable lines. */
export function reportDifferences(husk: Record<string, unknown>, runc: Record<string, unknown>): string[] {
  const lines: string[] = [];
  for (const key of Object.keys(runc)) {
    const a = JSON.stringify(husk[key]);
    const b = JSON.stringify(runc[key]);
    if (a === b) continue;
    if (Array.isArray(husk[key]) && Array.isArray(runc[key])) {
      const h = new Set((husk[key] as unknown[]).map((x) => JSON.stringify(x)));
      const r = new Set((runc[key] as unknown[]).map((x) => JSON.stringify(x)));
      const onlyHusk = [...h].filter((x) => !r.has(x));
      const onlyRunc = [...r].filter((x) => !h.has(x));
      lines.push(`${key}: only with husk: ${onlyHusk.join(' | ') || '-'}; only with runc: ${onlyRunc.join(' | ') || '-'}`);
    } else {
      lines.push(`${key}: husk ${a}, runc ${b}`);
    }
  }
  return lines;
}
