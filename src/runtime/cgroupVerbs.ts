// The verbs that act on a running container through its cgroup: pause, resume, update and
// events. Each takes the container's lock (events only reads), checks the transition in
// the one table (state.ts) and records what it changed.
import * as fs from 'fs';
import { HuskError, reason } from '../errors';
import { call } from '../host/call';
import { checkTransition } from './state';
import { Store } from './store';
import { validateId } from './ids';
import type { Resources } from '../spec/types';
import type { CgroupOptions } from '../cgroups';
import { eventJson } from '../cgroups/stats';
import { requireCgroup } from './cgroup';
import { sleep } from '../host/sleep';

function locked<T>(root: string, id: string, fn: (store: Store) => T): T {
  validateId(id);
  const store = new Store(root);
  const unlock = store.lock(id);
  try {
    return fn(store);
  } finally {
    unlock();
  }
}

/** runc pause: freeze every process; `state` shows "paused" until resume. */
export function pause(root: string, id: string, opts: CgroupOptions = {}): void {
  locked(root, id, (store) => {
    const record = store.read(id);
    checkTransition('pause', store.refresh(record), id);
    requireCgroup(record, 'pause the container', opts).freeze();
    record.status = 'paused';
    store.write(record);
  });
}

/** runc resume: thaw; the status is derived again (running, or created if it never started). */
export function resume(root: string, id: string, opts: CgroupOptions = {}): void {
  locked(root, id, (store) => {
    const record = store.read(id);
    checkTransition('resume', store.refresh(record), id);
    requireCgroup(record, 'resume the container', opts).thaw();
    record.status = 'running';
    store.write(record);
  });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The container's resources with an update merged in, as runc merges them: field by field
 * within memory, cpu, blockIO and pids; lists (devices, throttles, hugepageLimits) replaced;
 * unified merged by key.
 */
export function mergeResources(current: Resources | undefined, update: Resources): Resources {
  const out: Record<string, unknown> = { ...(current ?? {}) };
  for (const [k, v] of Object.entries(update)) {
    if (v === undefined || v === null) continue;
    const old = out[k];
    out[k] = isPlainObject(v) && isPlainObject(old) ? { ...old, ...v } : v;
  }
  return out as Resources;
}

/** runc update: new limits on a created, running or paused container. */
export function update(root: string, id: string, changes: Resources, opts: CgroupOptions = {}): void {
  locked(root, id, (store) => {
    const record = store.read(id);
    checkTransition('update', store.refresh(record), id);
    const manager = requireCgroup(record, 'update the container', opts);
    const linux = (record.config.linux ??= {});
    const merged = mergeResources(linux.resources, changes);
    // Only the sections given are written, with the merged values (memory and swap, quota
    // and period depend on each other).
    const toApply: Record<string, unknown> = {};
    for (const k of Object.keys(changes)) {
      const v = (changes as Record<string, unknown>)[k];
      if (v !== undefined && v !== null) toApply[k] = (merged as Record<string, unknown>)[k];
    }
    manager.apply(toApply as Resources, { update: true });
    linux.resources = merged;
    store.write(record);
  });
}

/** The resources JSON of `update -r FILE` or `-r -` (stdin), checked to be an object. */
export function readResourcesFile(file: string): Resources {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(call.stdin, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new HuskError(`--resources ${file}: ${reason(err)}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HuskError(`--resources ${file}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isPlainObject(value)) throw new HuskError(`--resources ${file}: expected a JSON object (OCI LinuxResources)`);
  return value as Resources;
}

export interface EventsOptions {
  /** --stats: one stats event, then exit. */
  stats: boolean;
  /** --interval, in milliseconds. */
  intervalMs: number;
  /** Where each JSON line goes (stdout). */
  write: (line: string) => void;
}

/**
 * runc events: with --stats one {"type":"stats",...} line; otherwise a stats line every
 * interval and an {"type":"oom",...} line whenever the OOM killer kills in the container
 * (memory.events oom_kill on v2, memory.oom_control oom_kill on v1, polled), until it stops.
 */
export async function events(root: string, id: string, o: EventsOptions, opts: CgroupOptions = {}): Promise<void> {
  validateId(id);
  if (!(o.intervalMs > 0)) throw new HuskError('duration interval must be greater than 0');
  const store = new Store(root);
  const record = store.read(id);
  checkTransition('events', store.refresh(record), id);
  const manager = requireCgroup(record, 'read the container\'s events', opts);
  if (o.stats) {
    o.write(`${eventJson('stats', id, manager.stats())}\n`);
    return;
  }
  let ooms = manager.oomKillCount();
  let nextStats = Date.now() + o.intervalMs;
  const poll = Math.min(o.intervalMs, 100);
  for (;;) {
    await sleep(Math.max(0, Math.min(poll, nextStats - Date.now())));
    if (store.refresh(record) === 'stopped' || !manager.exists()) {
      // A last look: the kill that stopped it may be the OOM killer's.
      if (manager.exists() && manager.oomKillCount() > ooms) o.write(`${eventJson('oom', id)}\n`);
      return;
    }
    const now = manager.oomKillCount();
    for (; ooms < now; ooms++) o.write(`${eventJson('oom', id)}\n`);
    if (Date.now() >= nextStats) {
      nextStats += o.intervalMs;
      try {
        o.write(`${eventJson('stats', id, manager.stats())}\n`);
      } catch (err) {
        if (!manager.exists()) return;
        throw err;
      }
    }
  }
}

/** Go's time.ParseDuration for --interval ("5s", "100ms", "1m30s", "1.5h"), in milliseconds. */
export function parseDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let sign = 1;
  let rest = text;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest[0] === '-' ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  let total = 0;
  let matched = 0;
  re.lastIndex = 0;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    total += Number(m[1]) * units[m[2]];
    matched = re.lastIndex;
  }
  if (rest === '' || matched !== rest.length) throw new HuskError(`invalid value ${JSON.stringify(text)} for flag -interval: parse error`);
  return sign * total;
}
