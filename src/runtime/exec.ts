// husk exec: a new process in a running container, as `runc exec` makes it: from a full
// OCI process (--process FILE) or from the container's own process with command-line
// changes. It joins the container's namespaces (buildExecPlan), and, unless detached, husk
// waits for it, relays its stdio or terminal, and returns its exit status.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { call } from '../host/call';
import { buildExecPlan } from '../linux/plan';
import { hostView } from '../linux/hostInfo';
import { native } from '../native';
import type { Process } from '../spec/types';
import { validateProcess } from '../spec/validate';
import { validateId } from './ids';
import { checkTransition } from './state';
import { hasCgroup, Store } from './store';
import { launch } from './launch';
import { throughDoor, waitInDoor } from './door';
import { keepOrHandOver, sendSeccompListener } from './handover';
import { log } from '../host/log';
import { tracing } from '../host/trace';
import { checkTerminal, closePipeEnds, openStdioPipes, pipeEnds, waitInForeground, writePidFile } from './processIO';

export interface ExecOptions {
  root: string;
  id: string;
  /** --process FILE: the whole process, as in config.json ("-" for stdin). */
  processFile?: string;
  /** The command line form: the command and its arguments... */
  args: string[];
  tty?: boolean;
  cwd?: string;
  env?: string[];
  /** "uid" or "uid:gid". */
  user?: string;
  additionalGids?: number[];
  caps?: string[];
  noNewPrivs?: boolean;
  apparmor?: string;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  ignorePaused?: boolean;
  /** The whole process as an object (the daemon's exec), instead of --process or the flags. */
  process?: Process;
  /** The caller relays the terminal itself (the daemon): the pty master is returned, and
   * husk's own terminal is not asked for. */
  keepTerminal?: boolean;
}

/** An exec'd process that runs, with husk's ends of its terminal or stdio pipes. */
export interface StartedExec {
  pid: number;
  /** The pty master, when the process has a terminal and no console socket took it. */
  consoleFd?: number;
  /** husk's ends of the stdio pipes: stdin's write end, stdout's and stderr's read ends. */
  stdio?: [number, number, number];
}

function readProcess(file: string): Process {
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? call.stdin : file, 'utf8');
  } catch (err) {
    throw new HuskError(`--process ${file}: ${reason(err)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HuskError(`--process ${file}: invalid JSON: ${(err as Error).message}`);
  }
  return validateProcess(value, path.basename(file === '-' ? 'stdin' : file));
}

/** The container's process changed by exec's flags, as runc does. */
function fromFlags(base: Process, o: ExecOptions): Process {
  if (!o.args.length) throw new HuskError('exec needs a command (or --process)');
  const p: Process = JSON.parse(JSON.stringify(base));
  p.args = o.args;
  p.terminal = Boolean(o.tty);
  delete p.consoleSize;
  if (o.cwd) p.cwd = o.cwd;
  if (o.env?.length) {
    for (const kv of o.env) {
      if (kv.indexOf('=') <= 0) throw new HuskError(`--env ${JSON.stringify(kv)} must have the form KEY=value`);
    }
    p.env = [...(p.env ?? []), ...o.env];
  }
  if (o.user) {
    const m = /^(\d+)(?::(\d+))?$/.exec(o.user);
    if (!m) throw new HuskError(`--user ${JSON.stringify(o.user)} must be uid or uid:gid (numbers)`);
    p.user = { ...p.user, uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : p.user?.gid ?? 0 };
  }
  if (o.additionalGids?.length) p.user = { ...(p.user ?? { uid: 0, gid: 0 }), additionalGids: o.additionalGids };
  if (o.caps?.length) {
    const caps = p.capabilities ?? {};
    for (const set of ['bounding', 'effective', 'permitted', 'ambient', 'inheritable'] as const) {
      if (set === 'inheritable' || set === 'ambient') continue;
      caps[set] = [...new Set([...(caps[set] ?? []), ...o.caps])];
    }
    p.capabilities = caps;
  }
  if (o.noNewPrivs) p.noNewPrivileges = true;
  if (o.apparmor) p.apparmorProfile = o.apparmor;
  return p;
}

export async function exec(o: ExecOptions): Promise<number> {
  const started = await startExec(o);
  if (o.detach) return 0;
  const io = { consoleFd: started.consoleFd, stdio: started.stdio };
  if (throughDoor()) {
    // The door, the process's parent, waits for it and exits with its status.
    return waitInDoor(started.pid, io);
  }
  const { forwardSignals } = await import('./foreground');
  return waitInForeground(started.pid, forwardSignals(started.pid, started.consoleFd), io);
}

/** Starts the process in the container and returns it, without waiting for it. */
export async function startExec(o: ExecOptions): Promise<StartedExec> {
  validateId(o.id);
  const store = new Store(o.root);
  const record = store.read(o.id);
  const status = store.refresh(record);
  checkTransition(o.ignorePaused ? 'exec-ignore-paused' : 'exec', status, o.id);
  const spec = record.config;
  const process = o.process ?? (o.processFile ? readProcess(o.processFile) : fromFlags(spec.process!, o));
  if (!o.keepTerminal) checkTerminal('process', Boolean(process.terminal), o.detach, o.consoleSocket);

  native.setSubreaper();
  const pipes = (!o.detach || o.keepTerminal) && !process.terminal ? openStdioPipes() : undefined;
  const nsOf = (pid: number | 'self', type: string) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/ns/${type}`);
    } catch {
      return undefined;
    }
  };
  let setgroupsDenied = false;
  try {
    setgroupsDenied = fs.readFileSync(`/proc/${record.pid}/setgroups`, 'utf8').trim() === 'deny';
  } catch {
    // no such file: setgroups is allowed
  }
  const plan = buildExecPlan(spec, process, {
    initPid: record.pid, rootfs: record.rootfs, stdio: pipes && pipeEnds(pipes, 0),
    preserveFds: o.preserveFds, trace: tracing(), ownUserNamespace: nsOf('self', 'user'), containerUserNamespace: nsOf(record.pid, 'user'), setgroupsDenied,
  }, hostView());
  for (const warning of plan.warnings) log.warn(warning);
  for (const line of plan.debug ?? []) log.debug(line);
  let consoleFd: number | undefined;
  let launched;
  try {
    launched = await launch(plan, {
      onInitPid(pid) {
        // Into the container's cgroups before it runs anything: its limits cover the process.
        if (hasCgroup(record)) require('./cgroup').joinCgroup(record, pid);
      },
      onSeccompListener(fd, pid) {
        sendSeccompListener(spec, record, fd, pid, status);
      },
      onConsole(fd) {
        consoleFd = keepOrHandOver(fd, o.consoleSocket);
      },
    });
  } catch (err) {
    closePipeEnds(pipes, 1);
    if (consoleFd !== undefined) fs.closeSync(consoleFd);
    throw err;
  } finally {
    closePipeEnds(pipes, 0);
  }
  fs.closeSync(launched.sock);
  if (o.pidFile) writePidFile(o.pidFile, launched.pid);
  return { pid: launched.pid, consoleFd, stdio: pipes && pipeEnds(pipes, 1) };
}
