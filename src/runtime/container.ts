// The container lifecycle after create (create.ts): start, kill, delete, state, list, ps,
// as runc performs them. Each verb takes the container's lock, reads its
// record, derives the live status and checks the transition in one place (state.ts).
import * as fs from 'fs';
import { HuskError } from '../errors';
import { native } from '../native';
import { validateId } from './ids';
import { checkTransition } from './state';
import { hasCgroup, ociState, parseProcStat, readProcStat, Store, type ContainerRecord } from './store';
import { explainAhead, flushExplain, trace } from '../host/trace';
import { processesWhere } from '../host/procfs';
import { sleepSync } from '../host/sleep';

// Hooks pull in child_process and the launcher: loaded only for a container that has them.
const hooks = () => require('./hooks') as typeof import('./hooks');
// The cgroup managers: loaded only for a container that has a cgroup.
const cgroups = () => require('./cgroup') as typeof import('./cgroup');
const hostMounts = () => require('../linux/hostMounts') as typeof import('../linux/hostMounts');

/** Opens the exec fifo and reads the init's byte: the init execs the container's process. */
export function releaseInit(store: Pick<Store, 'execFifoPath' | 'refresh'>, record: ContainerRecord) {
  const fifo = store.execFifoPath(record.id);
  // --explain: the setup is told before the container's program runs and prints.
  explainAhead('husk', { kind: 'start', path: fifo });
  flushExplain();
  // Non-blocking open: an init that died must not leave `start` hanging on the fifo.
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    for (;;) {
      // Whether the init is gone is asked before reading: an init that wrote its byte, exec'd
      // and exited at once between a read and the check is not taken for one that never ran.
      const stopped = store.refresh(record) === 'stopped';
      let n = 0;
      try {
        n = fs.readSync(fd, buf, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n === 1) break;
      if (stopped) throw new HuskError('cannot start a container that has stopped');
      sleepSync(2);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.unlinkSync(fifo);
  trace('husk', `open(${JSON.stringify(fifo)}, O_RDONLY) and read 1 byte: the init execs`, null);
}

export async function start(root: string, id: string): Promise<void> {
  validateId(id);
  // husk is the subreaper of what it starts (hooks), as create and run make it.
  native.setSubreaper();
  const store = new Store(root);
  const unlock = store.lock(id);
  try {
    const record = store.read(id);
    checkTransition('start', store.refresh(record), id);
    const spec = record.config;
    try {
      if (spec.hooks?.startContainer?.length) await hooks().fatalHooks('startContainer', spec, ociState(record, 'created', record.pid), true);
    } catch (err) {
      killAll(record, 9);
      throw err;
    }
    releaseInit(store, record);
    record.status = 'running';
    store.write(record);
    if (spec.hooks?.poststart?.length) await hooks().warningHooks('poststart', spec, ociState(record, 'running', record.pid));
  } finally {
    unlock();
  }
}

/** The pids of every process in the container: those in its cgroup; for a container without
 * one, those in its init's mount namespace (every container has its own; a pid namespace it
 * may share with the host). This is what `ps` and `kill --all` use. */
export function containerPids(record: ContainerRecord): number[] {
  if (hasCgroup(record)) {
    const inCgroup = cgroups().cgroupPids(record);
    if (inCgroup) return inCgroup;
  }
  // Only while the init is the container's (its pid may have been reused since it died):
  // otherwise the namespace read would be someone else's.
  const stat = readProcStat(record.pid);
  if (stat === undefined || parseProcStat(stat).startTime !== record.initStartTime) return [];
  let ns: string;
  try {
    ns = fs.readlinkSync(`/proc/${record.pid}/ns/mnt`);
  } catch {
    return [];
  }
  const pids = processesWhere((pid) => fs.readlinkSync(`/proc/${pid}/ns/mnt`) === ns);
  return pids.sort((a, b) => a - b);
}

function killAll(record: ContainerRecord, signal: number) {
  // With a cgroup: frozen while signalled, so that no fork escapes (and SIGKILL thaws a paused one).
  const cgroup = hasCgroup(record) ? cgroups().cgroupOf(record) : undefined;
  if (cgroup?.exists()) {
    cgroup.signalAll(signal);
    return;
  }
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
  trace('husk', `kill(${record.pid}, ${signal})${all ? ' for every process in the container' : ''}`,
    { kind: 'kill', pid: record.pid, signal, all });
  if (all) killAll(record, signal);
  else process.kill(record.pid, signal);
  // A frozen (cgroup v1) process dies of SIGKILL only once thawed; runc thaws it too.
  if (signal === 9 && status === 'paused' && hasCgroup(record)) cgroups().cgroupOf(record)?.thaw();
}

function waitGone(store: Store, record: ContainerRecord, ms: number): boolean {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      native.waitpid(record.pid, true);
    } catch {
      // not our child
    }
    if (store.refresh(record) === 'stopped') return true;
    sleepSync(5);
  }
  return false;
}

export async function remove(root: string, id: string, force: boolean): Promise<void> {
  validateId(id);
  // husk is the subreaper of what it starts (hooks), as create and run make it.
  native.setSubreaper();
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
    if (hasCgroup(record)) {
      // Whatever is left in the cgroup (processes that outlived the init) is killed, then
      // every directory removed; if that fails the record keeps them for another delete.
      cgroups().removeCgroup(record);
      store.write(record);
    }
    // Without a mount namespace of its own its mounts are in the host's table: detached
    // here; if that fails the record stays, for another delete.
    if (record.mountsBefore) hostMounts().detachAddedMounts(record.rootfs, record.mountsBefore);
    // Also for a container whose create was killed half-way: its createRuntime hooks may have
    // set up what poststop undoes.
    if (record.config.hooks?.poststop?.length) {
      await hooks().warningHooks('poststop', record.config, ociState(record, 'stopped'));
    }
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

