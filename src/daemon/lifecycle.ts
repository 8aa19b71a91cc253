// What happens to a container over its life, between the daemon and its monitor: start (the
// monitor runs it), the exit (recorded, then --rm or the restart policy), stop, kill, remove,
// and the recovery pass when the daemon starts (containers outlive the daemon: their monitors
// hold them; the ones whose monitor is gone are recorded as exited and restarted by policy).
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { reason } from '../errors';
import { log } from '../host/log';
import { remountBundle, removeBundle } from '../image/bundle';
import { ApiError, badRequest, conflict } from './api';
import type { DaemonContext } from './context';
import { shouldRestart } from './containerConfig';
import { containerDir, readRecord, stateFor, writeRecord, listRecords, type ContainerRecord } from './records';
import { networkId, syncHosts } from './networks';

// ---------------------------------------------------------------------------------- monitor

export type { ExitStatus, MonitorConfig } from './monitor';
import type { ExitStatus } from './monitor';

/** The monitor (monitor.ts) and its log reader (logs.ts), loaded when first needed. */
export function monitor(): typeof import('./monitor') & Pick<typeof import('./logs'), 'readLogs'> {
  return { ...(require('./monitor') as typeof import('./monitor')), readLogs: (require('./logs') as typeof import('./logs')).readLogs };
}

const runtime = () => require('../runtime/container') as typeof import('../runtime/container');

// ---------------------------------------------------------------------------------- the daemon's view

interface Live {
  /** `start:<id>` (when the run began, Unix seconds), `exit:<id>` (exit code), `destroy:<id>` (exit code). */
  bus: EventEmitter;
  watching: Set<string>;
  removing: Set<string>;
  restartTimers: Map<string, NodeJS.Timeout>;
  /** Attached clients still reading a container's log: --rm waits for them before the log goes. */
  readers: Map<string, Set<Promise<void>>>;
}

const lives = new WeakMap<DaemonContext, Live>();

export function live(ctx: DaemonContext): Live {
  let l = lives.get(ctx);
  if (!l) {
    l = { bus: new EventEmitter().setMaxListeners(0), watching: new Set(), removing: new Set(), restartTimers: new Map(), readers: new Map() };
    lives.set(ctx, l);
  }
  return l;
}

export function runDirOf(ctx: DaemonContext, id: string): string {
  return path.join(ctx.o.execRoot, id.slice(0, 12));
}

export function emit(ctx: DaemonContext, r: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
  ctx.events.emit('container', action, r.Id, { ...(r.Config.Labels ?? {}), image: r.husk.imageName, name: r.Name.slice(1), ...extra });
}

export function isRunning(r: ContainerRecord): boolean {
  return r.State.Status === 'running' || r.State.Status === 'paused';
}

/** The signal a name (`TERM`, `SIGTERM`) or number means. */
export function signalNumber(text: string | undefined | null, fallback = 'SIGKILL'): number {
  const s = (text || fallback).toUpperCase();
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw badRequest(`Invalid signal: ${text}`);
    return n;
  }
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  const n = (os.constants.signals as Record<string, number>)[name];
  if (!n) throw badRequest(`Invalid signal: ${text}`);
  return n;
}

// ---------------------------------------------------------------------------------- start and exit

/** The CNI networks a container is on: its own and those connected later. */
export function networksOf(r: ContainerRecord): string[] {
  return [...(r.husk.network ? [r.husk.network] : []), ...(r.husk.connected ?? []).map((c) => c.cni)];
}

/** One network's endpoint as `docker inspect` shows it, from the container's CNI attachment. */
function endpointOn(r: ContainerRecord, mode: string, cni: string | undefined, aliases: string[] | undefined): Record<string, any> {
  // On a user network Docker lists the container's short id among its aliases.
  const shown = mode === 'bridge' || mode === 'host' || mode === 'none' ? null : [...(aliases ?? []), r.Id.slice(0, 12)];
  const endpoint: Record<string, any> = { IPAMConfig: null, Links: null, Aliases: shown, NetworkID: networkId(mode), EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', DriverOpts: null };
  if (!cni) return endpoint;
  try {
    const { listRecords: attachments } = require('../network/attach') as typeof import('../network/attach');
    const a = attachments().find((x) => x.containerId === r.Id && x.network.name === cni);
    const result = (a?.result ?? {}) as { ips?: { address?: string; gateway?: string }[]; interfaces?: { name?: string; mac?: string; sandbox?: string }[] };
    const ip = result.ips?.find((i) => i.address && !i.address.includes(':'));
    if (ip?.address) {
      const [address, prefix] = ip.address.split('/');
      Object.assign(endpoint, { IPAddress: address, IPPrefixLen: Number(prefix), Gateway: ip.gateway ?? '', EndpointID: a!.attachId });
    }
    const mac = result.interfaces?.find((i) => i.sandbox && i.mac)?.mac;
    if (mac) endpoint.MacAddress = mac;
  } catch (err) {
    log.warn(`container ${r.Id}: reading its network attachment: ${reason(err)}`);
  }
  return endpoint;
}

/** What `docker inspect` says of the network once the container runs: its network, and those
 * `docker network connect` added. */
export function networkSettings(ctx: DaemonContext, r: ContainerRecord): Record<string, any> {
  const mode = String(r.HostConfig.NetworkMode ?? 'bridge');
  const ports: Record<string, unknown> = {};
  for (const p of Object.keys(r.Config.ExposedPorts ?? {})) ports[p] = null;
  for (const [p, list] of Object.entries((r.HostConfig.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[]>)) {
    ports[p] = (list ?? []).map((b) => ({ HostIp: b.HostIp || '0.0.0.0', HostPort: b.HostPort ?? '' }));
  }
  const endpoint = endpointOn(r, mode, r.husk.network, r.husk.aliases);
  const networks: Record<string, unknown> = { [mode]: endpoint };
  for (const extra of r.husk.connected ?? []) networks[extra.name] = endpointOn(r, extra.name, extra.cni, extra.aliases);
  return {
    Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, Ports: ports,
    SandboxKey: '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: endpoint.EndpointID,
    Gateway: endpoint.Gateway, GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: endpoint.IPAddress,
    IPPrefixLen: endpoint.IPPrefixLen, IPv6Gateway: '', MacAddress: endpoint.MacAddress,
    Networks: networks,
  };
}

/** The exit code dockerd gives a container whose process could not be started. */
function startFailureCode(message: string): number {
  if (/no such file|not found/i.test(message)) return 127;
  if (/permission denied|EACCES/i.test(message)) return 126;
  return 128;
}

/** Starts a created or exited container through a new monitor; resolves once it runs. */
export async function startContainer(ctx: DaemonContext, r: ContainerRecord, why: 'start' | 'restart-policy' = 'start'): Promise<ContainerRecord> {
  const l = live(ctx);
  const timer = l.restartTimers.get(r.Id);
  if (timer) {
    clearTimeout(timer);
    l.restartTimers.delete(r.Id);
  }
  remountBundle(ctx.images, r.husk.bundle);
  // The monitor of the last run reports the exit, then closes its sockets and ends: a moment.
  for (let i = 0; i < 100 && monitor().monitorAlive(r.husk.runDir); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  fs.rmSync(r.husk.exitFile, { force: true });
  // The runtime's record of an earlier run whose monitor was killed before it deleted it.
  if (runtime().exists(ctx.runtimeRoot, r.Id)) await runtime().remove(ctx.runtimeRoot, r.Id, true).catch(() => undefined);
  let started: { pid: number; monitorPid: number };
  // The log's entries of this run are the ones from here on (attach before start shows only them).
  const since = Date.now() / 1000;
  try {
    started = await monitor().startMonitor({
      id: r.Id,
      runtimeRoot: ctx.runtimeRoot,
      bundle: r.husk.bundle,
      runDir: r.husk.runDir,
      exitFile: r.husk.exitFile,
      tty: Boolean(r.Config.Tty),
      openStdin: Boolean(r.Config.OpenStdin),
      stdinOnce: Boolean(r.Config.StdinOnce),
      logPath: r.LogPath,
      logMaxSize: r.husk.log.maxSize,
      logMaxFiles: r.husk.log.maxFiles,
    });
  } catch (err) {
    const message = reason(err);
    const now = readRecord(ctx, r.Id) ?? r;
    now.State = stateFor(now.State, now.State.Status === 'created' ? 'created' : 'exited', { Pid: 0, Error: message, ExitCode: startFailureCode(message) });
    writeRecord(ctx, now);
    l.bus.emit(`start-failed:${now.Id}`);
    // As dockerd: a --rm container that could not start is removed (the CLI waits for that).
    if (now.HostConfig.AutoRemove) await removeContainer(ctx, now, true).catch((e) => log.warn(`container ${now.Id}: --rm: ${reason(e)}`));
    throw new ApiError(400, `failed to create task for container: ${message}`);
  }
  const now = readRecord(ctx, r.Id) ?? r;
  now.State = stateFor(now.State, 'running', { Pid: started.pid, StartedAt: new Date().toISOString(), ExitCode: 0, Error: '', OOMKilled: false });
  if (why === 'start') now.husk.stoppedByUser = false;
  now.husk.monitorPid = started.monitorPid;
  now.NetworkSettings = networkSettings(ctx, now);
  writeRecord(ctx, now);
  // The others on its network learn its name, and it theirs.
  for (const cni of networksOf(now)) syncHosts(ctx, cni);
  emit(ctx, now, 'start');
  l.bus.emit(`start:${now.Id}`, since);
  watchExit(ctx, now);
  return now;
}

/** Waits (once per container) for the monitor to report the exit, then handles it. */
export function watchExit(ctx: DaemonContext, r: ContainerRecord): void {
  const l = live(ctx);
  if (l.watching.has(r.Id)) return;
  l.watching.add(r.Id);
  monitor().waitExit(r.husk.runDir, r.husk.exitFile).then(
    (status) => onExit(ctx, r.Id, status),
    (err) => onExit(ctx, r.Id, { exitCode: 255, oomKilled: false, finishedAt: new Date().toISOString(), error: reason(err) }),
  ).catch((err) => log.warn(`container ${r.Id}: after its exit: ${reason(err)}`));
}

async function onExit(ctx: DaemonContext, id: string, st: ExitStatus): Promise<void> {
  const l = live(ctx);
  l.watching.delete(id);
  const r = readRecord(ctx, id);
  if (!r) return;
  r.State = stateFor(r.State, 'exited', { Pid: 0, ExitCode: st.exitCode, OOMKilled: st.oomKilled, FinishedAt: st.finishedAt, Error: st.error ?? '' });
  writeRecord(ctx, r);
  for (const cni of networksOf(r)) syncHosts(ctx, cni);
  if (st.oomKilled) emit(ctx, r, 'oom');
  emit(ctx, r, 'die', { exitCode: String(st.exitCode) });
  l.bus.emit(`exit:${id}`, st.exitCode);
  if (l.removing.has(id)) return;
  if (r.HostConfig.AutoRemove) {
    // The output of a foreground `docker run --rm` is read from the log: it is read to its end first.
    const readers = [...(l.readers.get(id) ?? [])];
    await Promise.race([Promise.all(readers), new Promise((resolve) => setTimeout(resolve, 5000))]);
    await removeContainer(ctx, r, true).catch((err) => log.warn(`container ${id}: --rm: ${reason(err)}`));
    return;
  }
  if (!shouldRestart(r.husk.restart, st.exitCode, r.RestartCount, r.husk.stoppedByUser)) return;
  r.State = stateFor(r.State, 'restarting');
  writeRecord(ctx, r);
  // dockerd's back-off: 100 ms, doubled on each restart, at most a minute.
  const delay = Math.min(100 * 2 ** r.RestartCount, 60_000);
  l.restartTimers.set(id, setTimeout(() => {
    l.restartTimers.delete(id);
    const now = readRecord(ctx, id);
    if (!now || now.State.Status !== 'restarting') return;
    now.RestartCount++;
    writeRecord(ctx, now);
    startContainer(ctx, now, 'restart-policy').catch((err) => log.warn(`container ${id}: restart: ${reason(err)}`));
  }, delay));
}

/** Notes a client reading the container's log until `ended` settles. */
export function addReader(ctx: DaemonContext, id: string, ended: Promise<void>): void {
  const l = live(ctx);
  const set = l.readers.get(id) ?? new Set();
  l.readers.set(id, set);
  set.add(ended);
  void ended.finally(() => {
    set.delete(ended);
    if (!set.size) l.readers.delete(id);
  });
}

/** Resolves with true once the container has exited (false after `ms`). */
export function waitForExit(ctx: DaemonContext, id: string, ms: number): Promise<boolean> {
  const l = live(ctx);
  const r = readRecord(ctx, id);
  if (!r || !isRunning(r)) return Promise.resolve(true);
  // A container this daemon has not watched yet (recover not run): its exit is watched from now.
  watchExit(ctx, r);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      l.bus.off(`exit:${id}`, onExit);
      resolve(ok);
    };
    const onExit = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    l.bus.on(`exit:${id}`, onExit);
  });
}

// ---------------------------------------------------------------------------------- signals

export function signalContainer(ctx: DaemonContext, r: ContainerRecord, signal: number, all = false): void {
  try {
    runtime().kill(ctx.runtimeRoot, r.Id, signal, all);
  } catch (err) {
    throw new ApiError(409, `Cannot kill container: ${r.Id}: ${reason(err)}`);
  }
  emit(ctx, r, 'kill', { signal: String(signal) });
}

function markStoppedByUser(ctx: DaemonContext, r: ContainerRecord): ContainerRecord {
  const l = live(ctx);
  const timer = l.restartTimers.get(r.Id);
  if (timer) {
    clearTimeout(timer);
    l.restartTimers.delete(r.Id);
  }
  const now = readRecord(ctx, r.Id) ?? r;
  now.husk.stoppedByUser = true;
  if (now.State.Status === 'restarting') now.State = stateFor(now.State, 'exited');
  writeRecord(ctx, now);
  return now;
}

/** docker stop: StopSignal (or SIGTERM), then SIGKILL to all after `seconds`. False when it was not running. */
export async function stopContainer(ctx: DaemonContext, r: ContainerRecord, seconds: number): Promise<boolean> {
  const wasRestarting = r.State.Status === 'restarting';
  r = markStoppedByUser(ctx, r);
  if (!isRunning(r)) return wasRestarting;
  if (r.State.Status === 'paused') unpauseContainer(ctx, r, false);
  const signal = signalNumber(r.Config.StopSignal, 'SIGTERM');
  try {
    signalContainer(ctx, r, signal);
  } catch {
    // gone meanwhile: the exit is on its way
  }
  if (!(await waitForExit(ctx, r.Id, Math.max(0, seconds) * 1000))) {
    try {
      signalContainer(ctx, r, 9, true);
    } catch {
      // gone meanwhile
    }
    await waitForExit(ctx, r.Id, 10_000);
  }
  emit(ctx, readRecord(ctx, r.Id) ?? r, 'stop');
  return true;
}

export function killContainer(ctx: DaemonContext, r: ContainerRecord, signal: number): void {
  if (!isRunning(r)) throw new ApiError(409, `Cannot kill container: ${r.Id}: Container ${r.Id} is not running`);
  if (signal === 9 || signal === 15) r = markStoppedByUser(ctx, r);
  signalContainer(ctx, r, signal, signal === 9);
}

export function pauseContainer(ctx: DaemonContext, r: ContainerRecord): void {
  if (!isRunning(r)) throw conflict(`Container ${r.Id} is not running`);
  if (r.State.Status === 'paused') throw conflict(`Container ${r.Id} is already paused`);
  const { pause } = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
  pause(ctx.runtimeRoot, r.Id);
  r.State = stateFor(r.State, 'paused');
  writeRecord(ctx, r);
  emit(ctx, r, 'pause');
}

export function unpauseContainer(ctx: DaemonContext, r: ContainerRecord, check = true): void {
  if (check && r.State.Status !== 'paused') throw conflict(`Container ${r.Id} is not paused`);
  const { resume } = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
  resume(ctx.runtimeRoot, r.Id);
  r.State = stateFor(r.State, 'running');
  writeRecord(ctx, r);
  emit(ctx, r, 'unpause');
}

// ---------------------------------------------------------------------------------- remove

/** docker rm: the runtime's state, the bundle (mount, writable layer), the record and the log. */
export async function removeContainer(ctx: DaemonContext, r: ContainerRecord, force: boolean): Promise<void> {
  const l = live(ctx);
  if (isRunning(r) && !force) {
    if (r.State.Status === 'paused') throw conflict(`You cannot remove a paused container ${r.Id}. Unpause and then stop the container before attempting removal or force remove`);
    throw conflict(`You cannot remove a running container ${r.Id}. Stop the container before attempting removal or force remove`);
  }
  if (l.removing.has(r.Id)) throw conflict(`removal of container ${r.Id} is already in progress`);
  l.removing.add(r.Id);
  try {
    r = markStoppedByUser(ctx, r);
    if (isRunning(r)) {
      try {
        runtime().kill(ctx.runtimeRoot, r.Id, 9, true);
      } catch {
        // gone meanwhile
      }
      await waitForExit(ctx, r.Id, 10_000);
    }
    if (runtime().exists(ctx.runtimeRoot, r.Id)) await runtime().remove(ctx.runtimeRoot, r.Id, true);
    removeBundle(ctx.images, r.husk.bundle, true);
    fs.rmSync(r.husk.runDir, { recursive: true, force: true });
    fs.rmSync(containerDir(ctx, r.Id), { recursive: true, force: true });
  } finally {
    l.removing.delete(r.Id);
  }
  emit(ctx, r, 'destroy');
  l.bus.emit(`destroy:${r.Id}`, r.State.ExitCode);
}

// ---------------------------------------------------------------------------------- recovery

/**
 * At daemon start: every container recorded as running (or paused, or restarting) is watched
 * again. One whose monitor still runs goes on; one whose monitor is gone gets its exit from the
 * exit file (or 255), which applies --rm and its restart policy. --rm containers recorded as
 * exited are removed; `always` containers start again (even ones the user stopped, as dockerd).
 */
export function recover(ctx: DaemonContext): void {
  for (const r of listRecords(ctx)) {
    if (isRunning(r) || r.State.Status === 'restarting') {
      watchExit(ctx, r);
    } else if (r.HostConfig.AutoRemove && r.State.Status === 'exited') {
      removeContainer(ctx, r, true).catch((err) => log.warn(`container ${r.Id}: --rm: ${reason(err)}`));
    } else if (r.husk.restart.Name === 'always' && r.State.Status === 'exited') {
      // dockerd starts `always` containers with the daemon, even ones the user stopped.
      startContainer(ctx, r).catch((err) => log.warn(`container ${r.Id}: restart at daemon start: ${reason(err)}`));
    }
  }
}
