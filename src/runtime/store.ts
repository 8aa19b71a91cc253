// The on-disk store of containers under the runtime root (default /run/husk):
//
//   <root>/                 mode 0700, made on first use
//   <root>/<id>/            mode 0711, one per container; its directory fd is the lock
//   <root>/<id>/state.json  mode 0600, the ContainerRecord below, replaced by rename
//   <root>/<id>/exec.fifo   exists from create until start (made by create, removed by start)
//   <root>/~create-*        a container directory being staged; never a valid id
//
// Creation is race-free without a lock: the directory is staged under a name no id can
// have ("~" is not allowed in ids), complete with state.json, and renamed into place.
// rename(2) of a directory onto a non-empty one fails, so of two `create x` at once exactly
// one wins and the other gets `container "x" already exists`.
//
// The lock is flock(2) on the container directory itself, so there is no lock file to
// create or clean up. A waiter that gets the lock after `delete` removed the directory (or
// after a new container took the id) sees that the path no longer names the inode it
// locked, and reports the container gone (or locks the new one).
//
// The live status is never read from disk alone: refresh() re-checks the init process as
// runc's refreshState does, by pid and start time, so a reused pid is not the container.

import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { native } from '../native';
import { OCI_VERSION } from '../spec/defaults';
import type { ContainerStatus, NamespaceType, RuncState, Spec, State } from '../spec/types';
import { isValidId, validateId } from './ids';
import { writeFileAtomic } from '../host/atomicWrite';
import { parsePasswd } from '../host/passwd';
import type { MountsBefore } from '../linux/hostMounts';
import type { SystemdUnit } from '../cgroups/systemd/unit';
import { aliveAs, parseProcStat, readProcStat, type ProcStat } from '../host/procfs';
export { parseProcStat, readProcStat, type ProcStat };

/** What husk keeps about one container, in `<root>/<id>/state.json`. */
export interface ContainerRecord {
  id: string;
  /** The init's pid in husk's pid namespace; 0 until the init exists. */
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot) of that init. */
  initStartTime: number;
  /**
   * The last status a verb recorded: `creating` while create runs, then `created`,
   * `running` after start, `paused` while frozen. Never trusted alone: see refresh().
   */
  status: ContainerStatus;
  /** Absolute bundle directory. */
  bundle: string;
  /** Absolute root filesystem. */
  rootfs: string;
  /** Creation time, RFC 3339 in UTC with up to 9 fractional digits, as runc prints it. */
  created: string;
  /** Name of the user who created the container (`runc list`'s OWNER). */
  owner: string;
  annotations?: Record<string, string>;
  /** `<root>/<id>/exec.fifo`: while it exists, the init waits for `start`. */
  execFifo: string;
  /**
   * Every directory of the container's cgroup, by controller ("" for the cgroup2 hierarchy;
   * cgroup v1 hosts have one per hierarchy). Set by runtime/cgroup.ts, removed with the cgroup.
   */
  cgroupPaths?: Record<string, string>;
  /** --systemd-cgroup: the transient unit that owns the cgroup, stopped on delete. */
  systemdUnit?: SystemdUnit;
  /** Namespace files of the init (/proc/<pid>/ns/<type>), for verbs that join them. */
  namespacePaths?: Partial<Record<NamespaceType, string>>;
  /** The validated config.json, so later verbs never re-read the bundle. */
  config: Spec;
  /** No mount namespace of its own: husk's mount namespace and the ids of the mounts at or
   * under the rootfs before create; delete detaches every other one there (src/linux/hostMounts.ts). */
  mountsBefore?: MountsBefore;
}

/** flock(2) as the addon exposes it; false means "would block" (only when nonblock). */
export type Flock = (fd: number, operation: 'ex' | 'sh' | 'un', nonblock?: boolean) => boolean | void;

/** Returns the text of /proc/<pid>/stat, or undefined when there is no such process. */
export type ProcStatReader = (pid: number) => string | undefined;

export interface StoreOptions {
  /** The lock primitive; the addon's flock by default. Tests pass a stand-in. */
  flock?: Flock;
  /** Where /proc/<pid>/stat comes from; the real /proc by default. */
  readProcStat?: ProcStatReader;
}

/** Releases a lock; calling it again does nothing. */
export type Unlock = () => void;

export class Store {
  private readonly flock: Flock;
  private readonly readProcStat: ProcStatReader;

  constructor(
    readonly root: string,
    opts: StoreOptions = {},
  ) {
    this.flock = opts.flock ?? ((fd, op, nonblock) => native.flock(fd, op, nonblock));
    this.readProcStat = opts.readProcStat ?? readProcStat;
  }

  dir(id: string): string {
    validateId(id);
    return path.join(this.root, id);
  }

  statePath(id: string): string {
    return path.join(this.dir(id), 'state.json');
  }

  execFifoPath(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /** A record for a new container, in status `creating`, with no init yet. */
  newRecord(o: { id: string; bundle: string; rootfs: string; config: Spec; owner?: string; created?: string }): ContainerRecord {
    const record: ContainerRecord = {
      id: o.id,
      pid: 0,
      initStartTime: 0,
      status: 'creating',
      bundle: o.bundle,
      rootfs: o.rootfs,
      created: o.created ?? nowRfc3339Nano(),
      owner: o.owner ?? userName(process.geteuid?.() ?? 0),
      execFifo: this.execFifoPath(o.id),
      config: o.config,
    };
    const annotations = o.config.annotations;
    if (annotations && Object.keys(annotations).length > 0) record.annotations = { ...annotations };
    return record;
  }

  /**
   * Makes `<root>/<id>/` holding the record's state.json, atomically: the directory appears
   * complete or not at all. Throws `container "<id>" already exists` if the id is taken.
   */
  create(record: ContainerRecord): void {
    const final = this.dir(record.id);
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const staging = fs.mkdtempSync(path.join(this.root, `~create-${process.pid}-`));
    try {
      fs.chmodSync(staging, 0o711);
      writeFileAtomic(path.join(staging, 'state.json'), JSON.stringify(record), 0o600);
      fs.renameSync(staging, final);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
        throw new HuskError(`container ${JSON.stringify(record.id)} already exists`, { code: 'EEXIST', cause: err });
      }
      throw new HuskError(`cannot create ${final}: ${reason(err)}`, { code, cause: err });
    }
  }

  /** Replaces state.json: written to `state.json.tmp-<pid>`, then renamed over it. */
  write(record: ContainerRecord): void {
    const file = this.statePath(record.id);
    try {
      writeFileAtomic(file, JSON.stringify(record), 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw this.doesNotExist(record.id, err);
      throw new HuskError(`cannot write ${file}: ${reason(err)}`, { cause: err });
    }
  }

  read(id: string): ContainerRecord {
    const file = this.statePath(id);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw this.doesNotExist(id, err);
      throw new HuskError(`cannot read ${file}: ${reason(err)}`, { code, cause: err });
    }
    let record: ContainerRecord;
    try {
      record = JSON.parse(text);
    } catch (err) {
      throw new HuskError(`${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof record !== 'object' || record === null || record.id !== id || typeof record.config !== 'object') {
      throw new HuskError(`${file}: not a husk container record for ${JSON.stringify(id)}`);
    }
    return record;
  }

  exists(id: string): boolean {
    return fs.existsSync(this.statePath(id));
  }

  /** The ids of the containers under the root, sorted as runc lists them. */
  list(): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.root, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new HuskError(`cannot list ${this.root}: ${reason(err)}`, { cause: err });
    }
    return entries
      .filter((e) => e.isDirectory() && isValidId(e.name) && fs.existsSync(path.join(this.root, e.name, 'state.json')))
      .map((e) => e.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  remove(id: string): void {
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }

  /**
   * Takes the container's lock (exclusive unless `shared`) and returns its release. Blocks
   * while another husk process holds it, unless `nonblock`. Throws `container "<id>" does
   * not exist` when there is no such container, including when it was deleted while we
   * waited. Closing the fd releases the lock, so a crashed holder never leaves it taken.
   */
  lock(id: string, opts: { shared?: boolean; nonblock?: boolean } = {}): Unlock {
    const dir = this.dir(id);
    // A new container may take the id between our open and our lock; then lock that one.
    for (let attempt = 0; attempt < 10; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') throw this.doesNotExist(id, err);
        throw new HuskError(`cannot open ${dir}: ${reason(err)}`, { code, cause: err });
      }
      try {
        if (this.flock(fd, opts.shared ? 'sh' : 'ex', opts.nonblock) === false) {
          throw Object.assign(new Error('resource temporarily unavailable'), { code: 'EWOULDBLOCK' });
        }
      } catch (err) {
        fs.closeSync(fd);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EWOULDBLOCK' || code === 'EAGAIN') {
          throw new HuskError(`container ${JSON.stringify(id)} is locked by another husk command`, { code, cause: err });
        }
        throw new HuskError(`cannot lock ${dir}: ${reason(err)}`, { code, cause: err });
      }
      const held = fs.fstatSync(fd);
      const now = fs.statSync(dir, { throwIfNoEntry: false });
      if (now && now.ino === held.ino && now.dev === held.dev) {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          try {
            this.flock(fd, 'un');
          } catch {
            // closing below drops the lock all the same
          }
          fs.closeSync(fd);
        };
      }
      fs.closeSync(fd);
      if (!now) throw this.doesNotExist(id);
    }
    throw new HuskError(`cannot lock ${dir}: the container keeps being replaced`);
  }

  /** Field 22 of /proc/<pid>/stat; throws if there is no such process. */
  startTimeOf(pid: number): number {
    const text = this.readProcStat(pid);
    if (text === undefined) throw new HuskError(`process ${pid} does not exist`, { code: 'ESRCH' });
    return parseProcStat(text).startTime;
  }

  /**
   * The live status, derived as runc's refreshState does: the init must still be the same
   * process (same pid and start time, not a zombie), or the container has stopped. Then a
   * recorded pause wins (a created container can be paused too), then a present exec fifo
   * means created, and anything else is running. `creating` lasts while create runs: until
   * the init exists, and while it lives.
   */
  refresh(record: ContainerRecord): ContainerStatus {
    const alive = this.initAlive(record);
    if (record.status === 'creating') return record.pid === 0 || alive ? 'creating' : 'stopped';
    if (!alive || record.status === 'stopped') return 'stopped';
    if (record.status === 'paused') return 'paused';
    if (fs.existsSync(record.execFifo ?? this.execFifoPath(record.id))) return 'created';
    return 'running';
  }

  /** The JSON `husk state` prints (and `husk list` with `{ list: true }`). */
  toRuncState(record: ContainerRecord, status: ContainerStatus, opts: { list?: boolean } = {}): RuncState {
    return toRuncState(record, status, opts);
  }

  private initAlive(record: ContainerRecord): boolean {
    if (!record.pid) return false;
    const text = this.readProcStat(record.pid);
    if (text === undefined) return false;
    return aliveAs(parseProcStat(text), record.initStartTime);
  }

  private doesNotExist(id: string, cause?: unknown): HuskError {
    return new HuskError(`container ${JSON.stringify(id)} does not exist`, { code: 'ENOENT', cause });
  }
}

/** Whether the container has a cgroup of its own (the cgroup module is loaded only then). */
export function hasCgroup(record: ContainerRecord): boolean {
  return !!record.cgroupPaths;
}

/**
 * The OCI runtime State (runtime.md) of a container: what hooks read on stdin and the seccomp
 * listener receives. pid and annotations are left out when there are none, as the spec's Go
 * binding does (omitempty).
 */
export function ociState(record: ContainerRecord, status: ContainerStatus, pid?: number): State {
  const state: State = { ociVersion: OCI_VERSION, id: record.id, status, bundle: record.bundle };
  if (pid) state.pid = pid;
  if (record.annotations && Object.keys(record.annotations).length) state.annotations = record.annotations;
  return state;
}

/**
 * runc's `containerState`, key for key in runc's order: ociVersion, id, pid, status, bundle,
 * rootfs, created, annotations (only when there are some), owner. runc prints the pid as 0
 * once stopped, the spec version it implements (not the config's), and the owner only in
 * `list` (`state` prints "").
 */
export function toRuncState(record: ContainerRecord, status: ContainerStatus, opts: { list?: boolean } = {}): RuncState {
  const annotations = record.annotations;
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    pid: status === 'stopped' ? 0 : record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
    owner: opts.list ? record.owner : '',
  };
}

/**
 * Serialises a RuncState byte for byte as runc's Go encoder does: annotation keys sorted
 * by bytes (a JS object would put integer-like keys first), "<", ">", "&", U+2028 and
 * U+2029 escaped as \u00XX. `indent` "  " is `runc state` (which prints no final newline);
 * no indent is one element of `runc list --format json`.
 */
export function marshalRuncState(state: RuncState, indent?: string): string {
  const nl = indent ? '\n' : '';
  const sep = indent ? ': ' : ':';
  const pad = (depth: number) => (indent ? indent.repeat(depth) : '');
  const field = (k: string, v: string, depth: number) => `${pad(depth)}${goString(k)}${sep}${v}`;
  const fields = [
    field('ociVersion', goString(state.ociVersion), 1),
    field('id', goString(state.id), 1),
    field('pid', String(state.pid), 1),
    field('status', goString(state.status), 1),
    field('bundle', goString(state.bundle), 1),
    field('rootfs', goString(state.rootfs), 1),
    field('created', goString(state.created), 1),
  ];
  if (state.annotations && Object.keys(state.annotations).length > 0) {
    const keys = Object.keys(state.annotations).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const inner = keys.map((k) => field(k, goString(state.annotations![k]), 2));
    fields.push(`${pad(1)}"annotations"${sep}{${nl}${inner.join(`,${nl}`)}${nl}${pad(1)}}`);
  }
  fields.push(field('owner', goString(state.owner), 1));
  return `{${nl}${fields.join(`,${nl}`)}${nl}}`;
}

function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Formats nanoseconds since the epoch as Go's time.RFC3339Nano in UTC, which is what runc
 * prints: "2024-01-02T03:04:05.123456789Z", trailing zeros of the fraction dropped (and
 * the dot with them when the fraction is zero).
 */
export function rfc3339Nano(epochNanoseconds: bigint): string {
  const seconds = epochNanoseconds / 1_000_000_000n;
  const fraction = (epochNanoseconds % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${base}${fraction ? `.${fraction}` : ''}Z`;
}

/** Now, with nanosecond digits: the wall clock at process start plus the monotonic clock since. */
export function nowRfc3339Nano(): string {
  const origin = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n;
  return rfc3339Nano(origin + BigInt(Math.round(performance.now() * 1e6)));
}

/** The user name for a uid from /etc/passwd, or "#<uid>" as runc's list shows an unknown one. */
export function userName(uid: number, passwdFile = '/etc/passwd'): string {
  let text: string | undefined;
  try {
    text = fs.readFileSync(passwdFile, 'utf8');
  } catch {
    // no passwd file: fall through to the number
  }
  return parsePasswd(text).find((p) => p.uid === uid && p.name)?.name ?? `#${uid}`;
}
