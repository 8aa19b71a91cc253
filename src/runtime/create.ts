// create and run: config.json -> plan -> a container whose init waits on the exec fifo
// (create), then start and wait for it (run). Only these verbs load the spec validator,
// the planner and the addon's launch code.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { loadConfig } from '../spec/validate';
import { buildPlan } from '../linux/plan';
import { hostView } from '../linux/hostInfo';
import { idmappedMount, userNamespaceFd } from '../linux/idmap';
import { sharesHostMounts } from '../linux/namespaces';
import type { Spec } from '../spec/types';
import { checkResourcesApplicable, type CgroupManager } from '../cgroups';
import { prepareCgroup, removeCgroup } from './cgroup';
import { native } from '../native';
import { validateId } from './ids';
import { ociState, Store, type ContainerRecord } from './store';
import { launch } from './launch';
import { callerGone, cleanupIfLost, throughDoor, waitInDoor } from './door';
import { call } from '../host/call';
import { keepOrHandOver, sendSeccompListener } from './handover';
import { log } from '../host/log';
import { writeProcFile } from '../host/procfs';
import { trace, tracing } from '../host/trace';
import { remove, start } from './container';
import { checkTerminal, closePipeEnds, openStdioPipes, pipeEnds, waitInForeground, writePidFile } from './processIO';

// Hooks pull in child_process: loaded only for a container that has them.
const hooks = () => require('./hooks') as typeof import('./hooks');
const hostMounts = () => require('../linux/hostMounts') as typeof import('../linux/hostMounts');

/** open(2)'s O_PATH and O_CLOEXEC, which fs.constants does not name. */
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

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
  /** With a terminal: the caller keeps the pty master (Created.consoleFd) and relays it
   * itself, without a terminal of its own (the daemon's monitor); no --console-socket. */
  keepConsole?: boolean;
  /** The caller's global flags (--root, --log...), for the calls the front door makes later
   * on its behalf (default: just --root). */
  globalArgs?: string[];
}

export interface Created {
  record: ContainerRecord;
  /** The pty master when husk itself relays the terminal (run without --console-socket). */
  consoleFd?: number;
  /** husk's ends of the stdio pipes (stdin's write end, stdout's and stderr's read ends). */
  stdioPipes?: [number, number, number];
}

/** Detached, idmapped copies of the bind mounts that ask for it, made here because
 * mount_setattr needs privileges on the host; the init attaches them (MoveMount). */
function idmappedTrees(spec: Spec, bundle: string): Map<number, number> | undefined {
  let trees: Map<number, number> | undefined;
  for (const [index, m] of (spec.mounts ?? []).entries()) {
    const idmap = idmappedMount(m, spec.linux ?? {});
    if (!idmap) continue;
    const where = `config.json: mounts[${index}]`;
    if (!idmap.uid.length || !idmap.gid.length) throw new HuskError(`${where}: an idmapped mount needs uidMappings and gidMappings (its own or the container's)`);
    const source = path.resolve(bundle, m.source ?? '');
    const userns = userNamespaceFd(idmap.uid, idmap.gid);
    try {
      trees ??= new Map();
      trees.set(index, native.openTree(source, idmap.recursive, userns));
      trace('husk', `open_tree(${JSON.stringify(source)}, OPEN_TREE_CLONE); mount_setattr(MOUNT_ATTR_IDMAP) = ${trees.get(index)}`,
        { kind: 'idmappedMount', source });
    } catch (err) {
      for (const fd of trees?.values() ?? []) fs.closeSync(fd);
      throw new HuskError(`${where}: idmapped mount of ${JSON.stringify(source)}: ${reason(err)}`);
    } finally {
      fs.closeSync(userns);
    }
  }
  return trees;
}

/** LISTEN_FDS passed to husk for itself (socket activation) go on to the container, as runc does. */
function listenFds(): number {
  const n = Number(process.env.LISTEN_FDS);
  if (!Number.isInteger(n) || n <= 0) return 0;
  if (process.env.LISTEN_PID && Number(process.env.LISTEN_PID) !== call.pid) return 0;
  return n;
}

export async function create(o: CreateOptions): Promise<Created> {
  validateId(o.id);
  // husk is the subreaper of what it starts: processes orphaned on the way are re-parented to it.
  native.setSubreaper();
  const bundle = path.resolve(o.bundle ?? '.');
  const spec = loadConfig(bundle);
  const rootfs = path.resolve(bundle, spec.root!.path);
  if (!fs.statSync(rootfs, { throwIfNoEntry: false })?.isDirectory()) {
    throw new HuskError(`config.json: root.path ${JSON.stringify(spec.root!.path)}: rootfs ${rootfs} does not exist or is not a directory`);
  }
  checkResourcesApplicable(spec, log.warn, { systemd: o.systemdCgroup });
  const processSpec = spec.process!;
  if (!(o.keepConsole && processSpec.terminal && !o.consoleSocket)) checkTerminal('container', Boolean(processSpec.terminal), o.detach, o.consoleSocket);
  const listen = listenFds();
  if (listen) processSpec.env = [...(processSpec.env ?? []), `LISTEN_FDS=${listen}`, 'LISTEN_PID=1'];

  const pipes = o.relayStdio && !processSpec.terminal ? openStdioPipes() : undefined;
  const store = new Store(o.root);
  const record: ContainerRecord = store.newRecord({ id: o.id, bundle, rootfs, config: spec });
  store.create(record);
  // Should this call's process die half-way (the server killed), the door deletes what it made.
  if (throughDoor()) cleanupIfLost([...(o.globalArgs ?? ['--root', o.root]), 'delete', '--force', o.id]);
  const unlock = store.lock(o.id);
  let consoleFd: number | undefined;
  let fifoFd: number | undefined;
  /** Once a hook has run, a failure runs the poststop hooks too (what they set up, say a
   * network, is undone): the spec goes on to delete, which runs them, and runc does. */
  let hooksRan = false;
  let mountTrees: Map<number, number> | undefined;
  let cgroup: CgroupManager | undefined;
  let cgroupFd: number | undefined;
  try {
    const execFifo = store.execFifoPath(o.id);
    native.mkfifo(execFifo, 0o622);
    trace('husk', `mkfifo(${JSON.stringify(execFifo)}, 0622) = 0`, { kind: 'execFifo', path: execFifo });
    fifoFd = fs.openSync(execFifo, O_PATH | O_CLOEXEC);
    mountTrees = idmappedTrees(spec, bundle);
    // The cgroup exists, with its limits, before the init does: the init is cloned straight
    // into the cgroup v2 directory where the kernel can. A systemd unit is started with the
    // init's pid in it (join, below), as runc does.
    cgroup = prepareCgroup(record, spec, { systemd: o.systemdCgroup, warn: log.warn });
    if (cgroup) store.write(record);
    const unified = cgroup?.systemdUnit ? undefined : cgroup?.paths[''];
    if (unified) cgroupFd = fs.openSync(unified, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    if (sharesHostMounts(spec)) {
      record.mountsBefore = hostMounts().mountIdsBefore(rootfs);
      store.write(record);
    }
    const plan = buildPlan(spec, {
      rootfs, bundle, execFifo: { path: execFifo, fd: fifoFd }, mountTrees, cgroupFd, id: o.id, noNewKeyring: o.noNewKeyring, noPivot: o.noPivot, stdio: pipes && pipeEnds(pipes, 0), preserveFds: listen + (o.preserveFds ?? 0), trace: tracing(),
    }, hostView());
    for (const warning of plan.warnings) log.warn(warning);
    for (const line of plan.debug ?? []) log.debug(line);
    const launched = await launch(plan, {
      onInitPid(pid, inCgroup) {
        if (processSpec.oomScoreAdj !== undefined) {
          // Written from here: lowering it needs CAP_SYS_RESOURCE on the host, which an init
          // inside a user namespace does not have.
          const file = `/proc/${pid}/oom_score_adj`;
          trace('husk', `write(${JSON.stringify(file)}, "${processSpec.oomScoreAdj}")`,
            { kind: 'oomScoreAdj', value: processSpec.oomScoreAdj });
          try {
            writeProcFile(file, String(processSpec.oomScoreAdj));
          } catch (err) {
            const hint = (err as NodeJS.ErrnoException).code === 'EACCES' ? ' (lowering it needs CAP_SYS_RESOURCE on the host)' : '';
            throw new HuskError(`process.oomScoreAdj ${processSpec.oomScoreAdj}: write ${file}: ${reason(err)}${hint}`);
          }
        }
        record.pid = pid;
        record.initStartTime = store.startTimeOf(pid);
        // cgroups: joined while the init waits, before its first step (the cgroup v2 one
        // already, when clone3 put it there; joining it again changes nothing).
        if (inCgroup) trace('husk', `init ${pid} is in its cgroup v2 directory already (clone3)`, { kind: 'initInCgroup', pid });
        cgroup?.join(pid);
        store.write(record);
        trace('husk', `write ${store.statePath(o.id)} (status creating, pid ${pid})`,
          { kind: 'stateFile', path: store.statePath(o.id), status: 'creating', pid });
      },
      async onHooks(pid) {
        const { fatalHooks } = hooks();
        const state = ociState(record, 'creating', pid);
        hooksRan = Boolean(spec.hooks);
        await fatalHooks('prestart', spec, state, false);
        await fatalHooks('createRuntime', spec, state, false);
        await fatalHooks('createContainer', spec, state, true);
      },
      onSeccompListener(fd, pid) {
        sendSeccompListener(spec, record, fd, pid);
      },
      onConsole(fd) {
        consoleFd = keepOrHandOver(fd, o.consoleSocket);
      },
    });
    fs.closeSync(launched.sock);
    // Nobody is left to use a container whose caller died (killed while husk made it).
    if (callerGone()) throw new HuskError('the caller went away before the container was created');
    record.status = 'created';
    store.write(record);
    if (o.pidFile) writePidFile(o.pidFile, record.pid);
    closePipeEnds(pipes, 0);
    return { record, consoleFd, stdioPipes: pipes && pipeEnds(pipes, 1) };
  } catch (err) {
    if (consoleFd !== undefined) fs.closeSync(consoleFd);
    closePipeEnds(pipes, 0);
    closePipeEnds(pipes, 1);
    try {
      removeCgroup(record, log.warn);
    } catch (cgroupErr) {
      log.warn(`cannot remove the container's cgroup after the failed create: ${reason(cgroupErr)}`);
    }
    if (record.mountsBefore) {
      try {
        hostMounts().detachAddedMounts(rootfs, record.mountsBefore);
      } catch (mountErr) {
        log.warn(`cannot detach the container's mounts after the failed create: ${reason(mountErr)}`);
      }
    }
    if (hooksRan && spec.hooks?.poststop?.length) await hooks().warningHooks('poststop', spec, ociState(record, 'stopped'));
    store.remove(o.id);
    throw err;
  } finally {
    if (fifoFd !== undefined) fs.closeSync(fifoFd);
    if (cgroupFd !== undefined) fs.closeSync(cgroupFd);
    for (const fd of mountTrees?.values() ?? []) fs.closeSync(fd);
    unlock();
  }
}

export interface RunOptions extends Omit<CreateOptions, 'detach'> {
  detach: boolean;
  keep?: boolean;
}

/** runc run: create, start, and in the foreground wait for the process and delete it. Under
 * the front door, the door (the init's parent) holds the signals it gets until the process
 * runs, waits for it, relays its terminal or stdio, and tells us how it ended; in-process,
 * husk does all that itself. */
export async function run(o: RunOptions): Promise<number> {
  const { record, consoleFd, stdioPipes } = await create({ ...o, detach: o.detach, relayStdio: !o.detach });
  const io = { consoleFd, stdio: stdioPipes };
  // Signals that arrive while the container starts are held back and forwarded once its
  // process runs (before that, they would end the init half-way).
  const door = throughDoor();
  const forwarding = o.detach || door ? undefined : (await import('./foreground')).forwardSignals(record.pid, consoleFd);
  try {
    await start(o.root, o.id);
  } catch (err) {
    forwarding?.stop();
    if (door) [consoleFd, ...(stdioPipes ?? [])].forEach((fd) => fd !== undefined && fs.closeSync(fd));
    await remove(o.root, o.id, true).catch(() => undefined);
    throw err;
  }
  if (o.detach) return 0;
  const status = door ? waitInDoor(record.pid, io) : await waitInForeground(record.pid, forwarding!, io);
  if (!o.keep) await remove(o.root, o.id, true);
  return status;
}
