// The container lifecycle: create, start, kill, delete, state, and run (create + start +
// wait + delete), as runc performs them. Each verb takes the container's lock, reads its
// record, derives the live status and checks the transition in one place (state.ts).
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import type { Spec } from '../spec/types';
import { OCI_VERSION } from '../spec/defaults';
import { loadConfig } from '../spec/validate';
import { buildPlan } from '../linux/plan';
import { hostView } from '../linux/hostInfo';
import { NAMESPACES } from '../linux/namespaces';
import { checkResources } from '../cgroups/support';
import { native } from '../native';
import { validateId } from './ids';
import { checkTransition, type Status } from './state';
import { Store, type ContainerRecord } from './store';
import { runHooks, type HookKind, type HookState } from './hooks';
import { launch } from './launch';
import { log } from './log';
import { trace, tracing } from './trace';

export interface CreateOptions {
  root: string;
  id: string;
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  preserveFds?: number;
  /** --systemd-cgroup: cgroupsPath is "slice:prefix:name", for systemd to manage. */
  systemdCgroup?: boolean;
  /** Give the process pipes for stdio and return husk's ends (run in the foreground relays
   * them, as runc does); otherwise it inherits husk's stdio. Not with a terminal. */
  relayStdio?: boolean;
  /** `run` in the foreground keeps the terminal to relay it; create needs a console socket. */
  detach: boolean;
}

export interface Created {
  record: ContainerRecord;
  /** The pty master when husk itself relays the terminal (run without --console-socket). */
  consoleFd?: number;
  /** husk's ends of the stdio pipes (stdin's write end, stdout's and stderr's read ends). */
  stdioPipes?: [number, number, number];
}

function hookState(record: ContainerRecord, status: Status, pid?: number): HookState {
  const state: HookState = { ociVersion: OCI_VERSION, id: record.id, status, bundle: record.bundle };
  if (pid) state.pid = pid;
  if (record.annotations && Object.keys(record.annotations).length) state.annotations = record.annotations;
  return state;
}

/** Namespace types the container's init has (new or joined); hooks that run inside join them. */
function namespaceTypes(spec: Spec): string[] {
  return (spec.linux?.namespaces ?? []).map((n) => n.type).filter((t) => t in NAMESPACES);
}

async function fatalHooks(kind: HookKind, spec: Spec, state: HookState, inContainer: boolean) {
  const hooks = spec.hooks?.[kind];
  if (!hooks?.length) return;
  const ns = inContainer && state.pid ? { pid: state.pid, types: namespaceTypes(spec) } : undefined;
  // Inside the container's pid namespace its init is pid 1, and that is what such a hook sees.
  if (ns && spec.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path)) state = { ...state, pid: 1 };
  const err = await runHooks(kind, hooks, state, ns);
  if (err) throw err;
}

async function warningHooks(kind: HookKind, spec: Spec, state: HookState) {
  const err = await runHooks(kind, spec.hooks?.[kind], state);
  if (err) log.warn(err.message);
}

function writeAtomically(file: string, text: string) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** LISTEN_FDS passed to husk for itself (socket activation) go on to the container, as runc does. */
function listenFds(): number {
  const n = Number(process.env.LISTEN_FDS);
  if (!Number.isInteger(n) || n <= 0) return 0;
  if (process.env.LISTEN_PID && Number(process.env.LISTEN_PID) !== process.pid) return 0;
  return n;
}

export async function create(o: CreateOptions): Promise<Created> {
  validateId(o.id);
  const bundle = path.resolve(o.bundle ?? '.');
  const spec = loadConfig(bundle);
  const rootfs = path.resolve(bundle, spec.root!.path);
  if (!fs.statSync(rootfs, { throwIfNoEntry: false })?.isDirectory()) {
    throw new HuskError(`config.json: root.path ${JSON.stringify(spec.root!.path)}: rootfs ${rootfs} does not exist or is not a directory`);
  }
  checkResources(spec, log.warn);
  if (o.systemdCgroup && spec.linux?.cgroupsPath) {
    throw new HuskError(`--systemd-cgroup: cgroupsPath ${JSON.stringify(spec.linux.cgroupsPath)} needs systemd to manage the cgroup, which husk does not support yet`);
  }
  const processSpec = spec.process!;
  if (processSpec.terminal && o.detach && !o.consoleSocket) {
    throw new HuskError('cannot allocate a terminal for a detached container without --console-socket');
  }
  if (processSpec.terminal && !o.detach && !o.consoleSocket) {
    // husk relays the container's pty to its own terminal, which it must have.
    try {
      fs.closeSync(fs.openSync('/dev/tty', 'r+'));
    } catch (err) {
      throw new HuskError(`process.terminal is true but husk has no terminal to relay it to: open /dev/tty: ${reason(err)}`);
    }
  }
  if (!processSpec.terminal && o.consoleSocket) {
    throw new HuskError('--console-socket given, but config.json does not ask for a terminal (process.terminal)');
  }
  const listen = listenFds();
  if (listen) processSpec.env = [...(processSpec.env ?? []), `LISTEN_FDS=${listen}`, 'LISTEN_PID=1'];

  // [child end, husk's end] for stdin, stdout, stderr.
  let pipes: [number, number][] | undefined;
  if (o.relayStdio && !processSpec.terminal) {
    pipes = [0, 1, 2].map((fd) => {
      const [r, w] = native.pipe();
      return fd === 0 ? [r, w] : [w, r];
    });
  }
  const closePipes = (side: 0 | 1) => pipes?.forEach((p) => fs.closeSync(p[side]));
  const store = new Store(o.root);
  const record: ContainerRecord = store.newRecord({ id: o.id, bundle, rootfs, config: spec });
  store.create(record);
  const unlock = store.lock(o.id);
  let consoleFd: number | undefined;
  try {
    const execFifo = store.execFifoPath(o.id);
    native.mkfifo(execFifo, 0o622);
    trace('husk', `mkfifo(${JSON.stringify(execFifo)}, 0622) = 0`);
    const plan = buildPlan(spec, {
      rootfs, bundle, execFifo, id: o.id, noNewKeyring: o.noNewKeyring, noPivot: o.noPivot, stdio: pipes && [pipes[0][0], pipes[1][0], pipes[2][0]], preserveFds: listen + (o.preserveFds ?? 0), trace: tracing(),
    }, hostView());
    const launched = await launch(plan, {
      onInitPid(pid) {
        record.pid = pid;
        record.initStartTime = store.startTimeOf(pid);
        store.write(record);
        trace('husk', `write ${store.statePath(o.id)} (status creating, pid ${pid})`);
      },
      async onHooks(pid) {
        const state = hookState(record, 'creating', pid);
        await fatalHooks('prestart', spec, state, false);
        await fatalHooks('createRuntime', spec, state, false);
        await fatalHooks('createContainer', spec, state, true);
      },
      onConsole(fd) {
        if (o.consoleSocket) {
          try {
            native.sendFd(o.consoleSocket, fd, '/dev/ptmx');
            trace('husk', `sendmsg(${JSON.stringify(o.consoleSocket)}, SCM_RIGHTS [pty master]) = 0`);
          } finally {
            fs.closeSync(fd);
          }
        } else {
          consoleFd = fd;
        }
      },
    });
    fs.closeSync(launched.sock);
    record.status = 'created';
    store.write(record);
    if (o.pidFile) writeAtomically(path.resolve(o.pidFile), String(record.pid));
    closePipes(0);
    return { record, consoleFd, stdioPipes: pipes && [pipes[0][1], pipes[1][1], pipes[2][1]] };
  } catch (err) {
    if (consoleFd !== undefined) fs.closeSync(consoleFd);
    closePipes(0);
    closePipes(1);
    store.remove(o.id);
    throw err;
  } finally {
    unlock();
  }
}

/** Opens the exec fifo and reads the init's byte: the init execs the container's process. */
function releaseInit(store: Store, record: ContainerRecord) {
  const fifo = store.execFifoPath(record.id);
  // Non-blocking open: an init that died must not leave `start` hanging on the fifo.
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(fd, buf, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n === 1) break;
      if (store.refresh(record) === 'stopped') throw new HuskError('cannot start a container that has stopped');
      Atomics.wait(sleeper, 0, 0, 2);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.unlinkSync(fifo);
  trace('husk', `open(${JSON.stringify(fifo)}, O_RDONLY) and read 1 byte: the init execs`);
}

export async function start(root: string, id: string): Promise<void> {
  validateId(id);
  const store = new Store(root);
  const unlock = store.lock(id);
  try {
    const record = store.read(id);
    checkTransition('start', store.refresh(record), id);
    const spec = record.config;
    try {
      await fatalHooks('startContainer', spec, hookState(record, 'created', record.pid), true);
    } catch (err) {
      killAll(record, 9);
      throw err;
    }
    releaseInit(store, record);
    record.status = 'running';
    store.write(record);
    await warningHooks('poststart', spec, hookState(record, 'running', record.pid));
  } finally {
    unlock();
  }
}

/** The pids of every process in the container: those in its init's mount namespace (every
 * container has its own; a pid namespace it may share with the host). Until husk manages
 * cgroups, this is what `ps` and `kill --all` use. */
export function containerPids(record: ContainerRecord): number[] {
  let ns: string;
  try {
    ns = fs.readlinkSync(`/proc/${record.pid}/ns/mnt`);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/mnt`) === ns) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

function killAll(record: ContainerRecord, signal: number) {
  for (const pid of containerPids(record)) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
}

export function kill(root: string, id: string, signal: number, all: boolean) {
  validateId(id);
  const store = new Store(root);
  const record = store.read(id);
  const status = store.refresh(record);
  checkTransition(all ? 'kill-all' : 'kill', status, id);
  trace('husk', `kill(${record.pid}, ${signal})${all ? ' for every process in the container' : ''}`);
  if (all) killAll(record, signal);
  else process.kill(record.pid, signal);
}

function waitGone(store: Store, record: ContainerRecord, ms: number): boolean {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      native.waitpid(record.pid, true);
    } catch {
      // not our child
    }
    if (store.refresh(record) === 'stopped') return true;
    Atomics.wait(sleeper, 0, 0, 5);
  }
  return false;
}

export async function remove(root: string, id: string, force: boolean): Promise<void> {
  validateId(id);
  const store = new Store(root);
  const unlock = store.lock(id);
  try {
    const record = store.read(id);
    const status = store.refresh(record);
    checkTransition(force ? 'delete-force' : 'delete', status, id);
    if (status !== 'stopped') {
      killAll(record, 9);
      if (!waitGone(store, record, 10000)) throw new HuskError(`container init ${record.pid} did not exit after SIGKILL`);
    }
    if (record.status !== 'creating') await warningHooks('poststop', record.config, hookState(record, 'stopped'));
    store.remove(id);
  } finally {
    unlock();
  }
}

export function exists(root: string, id: string): boolean {
  validateId(id);
  return new Store(root).exists(id);
}

export function state(root: string, id: string) {
  validateId(id);
  const store = new Store(root);
  const record = store.read(id);
  return store.toRuncState(record, store.refresh(record));
}

export function list(root: string) {
  const store = new Store(root);
  const out = [];
  for (const id of store.list()) {
    try {
      const record = store.read(id);
      out.push(store.toRuncState(record, store.refresh(record), { list: true }));
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

export function ps(root: string, id: string): number[] {
  validateId(id);
  const store = new Store(root);
  const record = store.read(id);
  const status = store.refresh(record);
  if (status === 'stopped') return [];
  return containerPids(record);
}

export interface RunOptions extends Omit<CreateOptions, 'detach'> {
  detach: boolean;
  keep?: boolean;
}

/** runc run: create, start, and in the foreground wait for the process and delete it. */
export async function run(o: RunOptions): Promise<number> {
  native.setSubreaper();
  const { record, consoleFd, stdioPipes } = await create({ ...o, detach: o.detach, relayStdio: !o.detach });
  // Signals that arrive while the container starts are held back and forwarded once its
  // process runs (before that, they would end the init half-way).
  const { forwardSignals, relayTerminal, relayStdio } = await import('./foreground');
  const forwarding = o.detach ? undefined : forwardSignals(record.pid, consoleFd);
  try {
    await start(o.root, o.id);
  } catch (err) {
    forwarding?.stop();
    await remove(o.root, o.id, true).catch(() => undefined);
    throw err;
  }
  if (!forwarding) return 0;
  forwarding.release();
  const relayed = consoleFd !== undefined ? relayTerminal(consoleFd) : stdioPipes ? relayStdio(stdioPipes) : undefined;
  const status = await native.waitpidAsync(record.pid);
  await relayed?.drained(2000);
  forwarding.stop();
  if (!o.keep) await remove(o.root, o.id, true);
  return status.code ?? 128 + (status.signal ?? 0);
}
