// /containers/...: the container endpoints the docker CLI uses. Each handler finds the record,
// makes one call into lifecycle.ts (start, stop, remove...) or the monitor (attach, logs), and
// answers in Docker's shape. What a create body means is containerConfig.ts's; what the
// daemon keeps is records.ts's.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Duplex } from 'stream';
import { HuskError, reason } from '../errors';
import { diskUsage } from '../host/diskUsage';
import { createBundle, removeBundle } from '../image/bundle';
import { findImage, loadFound } from '../image/images';
import { networkOf } from '../image/run';
import { CAPABILITIES } from '../linux/capabilities';
import { ApiError, badRequest, boolParam, checkFields, commonHeaders, conflict, filtersParam, intParam, notFound, type ApiRequest, type ApiResponse, type Route } from './api';
import type { DaemonContext } from './context';
import { INIT_BINARIES, checkName, patchSpec, planCreate, resourcesOf } from './containerConfig';
import {
  addReader, emit, isRunning, killContainer, live, monitor, networkSettings, pauseContainer, recover as recoverContainers, removeContainer,
  runDirOf, signalNumber, startContainer, stopContainer, unpauseContainer, waitForExit,
} from './lifecycle';
import { ZERO_TIME, containerDir, findRecord, inspectView, listRecords, readRecord, writeRecord, type ContainerRecord } from './records';
import { archiveRoutes } from './archive';
import { ensureVolume, readVolume } from './volumes';

export { recoverContainers as recover };

export function counts(ctx: DaemonContext) {
  const all = listRecords(ctx);
  const running = all.filter((r) => r.State.Status === 'running' || r.State.Status === 'restarting').length;
  const paused = all.filter((r) => r.State.Status === 'paused').length;
  return { Containers: all.length, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: all.length - running - paused };
}

// ---------------------------------------------------------------------------------- create

const ADJECTIVES = ['brave', 'calm', 'eager', 'fervent', 'gallant', 'happy', 'jolly', 'keen', 'lucid', 'nifty', 'quirky', 'serene', 'vivid', 'zealous'];
const NAMES = ['curie', 'darwin', 'euler', 'hopper', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'turing', 'wozniak', 'yonath'];

function generateName(taken: Set<string>): string {
  for (;;) {
    const pick = (l: string[]) => l[randomBytes(1)[0] % l.length];
    const name = `${pick(ADJECTIVES)}_${pick(NAMES)}`;
    if (!taken.has(`/${name}`)) return name;
    taken.add(`/${name}`);
    if (taken.size > ADJECTIVES.length * NAMES.length) return `${name}${randomBytes(2).toString('hex')}`;
  }
}

/** Names being created right now: a second create of the same name is a conflict at once. */
const reserved = new Map<string, string>();

function nameConflict(name: string, id: string): ApiError {
  return conflict(`Conflict. The container name "/${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`);
}

function checkNameFree(ctx: DaemonContext, name: string, self?: string): void {
  const holder = listRecords(ctx).find((r) => r.Name === `/${name}` && r.Id !== self)?.Id ?? reserved.get(name);
  if (holder && holder !== self) throw nameConflict(name, holder);
}

/** A HuskError from the image or network side is the request's fault: 400 with its message. */
function asBadRequest(err: unknown): unknown {
  return err instanceof HuskError ? badRequest(err.message) : err;
}

/** A port the kernel gives for `HostIp:0` in the daemon's network namespace, now free. */
function freePort(ip: string, proto: string): Promise<number> {
  return new Promise((resolve, reject) => {
    if (proto === 'udp') {
      const sock = require('dgram').createSocket(ip.includes(':') ? 'udp6' : 'udp4');
      sock.once('error', reject);
      sock.bind(0, ip || '0.0.0.0', () => {
        const { port } = sock.address();
        sock.close(() => resolve(port));
      });
      return;
    }
    const server = require('net').createServer();
    server.once('error', reject);
    server.listen(0, ip || '0.0.0.0', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `-p 80` and Testcontainers' `{"HostPort": ""}`: the daemon picks a free host port, as dockerd
 * does, and the binding keeps the one it picked (restarts reuse it). */
async function pickHostPorts(body: unknown): Promise<void> {
  const bindings = (body as { HostConfig?: { PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> } } | undefined)?.HostConfig?.PortBindings;
  if (!bindings || typeof bindings !== 'object') return;
  for (const [port, list] of Object.entries(bindings)) {
    if (!Array.isArray(list)) continue;
    for (const b of list) {
      if (!b || typeof b !== 'object' || (b.HostPort !== undefined && b.HostPort !== '' && b.HostPort !== '0')) continue;
      try {
        b.HostPort = String(await freePort(b.HostIp ?? '', port.split('/')[1] ?? 'tcp'));
      } catch (err) {
        throw badRequest(`HostConfig.PortBindings: ${port}: no free host port on ${b.HostIp || '0.0.0.0'}: ${reason(err)}`);
      }
    }
  }
}

async function create(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const asked = req.query.get('name');
  const body = await req.json<unknown>({});
  await pickHostPorts(body);
  const id = randomBytes(32).toString('hex');
  const plan = planCreate(body, id, require('os').hostname(), ctx.volumesDir);
  const name = asked ? checkName(asked) : generateName(new Set([...listRecords(ctx).map((r) => r.Name), ...[...reserved.keys()].map((n) => `/${n}`)]));
  checkNameFree(ctx, name);
  const found = findImage(ctx.images, plan.image);
  if (!found) throw notFound(`No such image: ${plan.image}`);
  const image = loadFound(ctx.images, found);
  let net;
  try {
    net = networkOf({ ...plan.network, cniConfigDir: ctx.o.cniConfigDir, cniPluginDir: ctx.o.cniPluginDirs });
  } catch (err) {
    // 400, not 404: the CLI takes a 404 from create for a missing image, and pulls.
    if (err instanceof HuskError && /no network|not found|does not exist|no such/i.test(err.message)) throw badRequest(`network ${plan.network.network} not found`);
    throw asBadRequest(err);
  }
  reserved.set(name, id);
  const dir = containerDir(ctx, id);
  const bundleDir = path.join(dir, 'bundle');
  let bundleMade = false;
  const newVolumes: string[] = [];
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Named volumes are made on first use, as dockerd makes them (empty: the image's content is not copied in).
    for (const v of plan.volumes) {
      if (readVolume(ctx, v)) continue;
      ensureVolume(ctx, v);
      newVolumes.push(v);
    }
    const bundle = await createBundle(ctx.images, image, bundleDir, {
      ...plan.bundle,
      hostEnv: {},
      network: net.network,
      dns: net.dns,
      addHosts: net.addHosts,
      networkFiles: true,
      container: { id, root: ctx.runtimeRoot },
    }).catch((err) => Promise.reject(asBadRequest(err)));
    bundleMade = true;
    const spec = patchSpec(bundle.spec, plan.spec, INIT_BINARIES.find((f) => fs.existsSync(f)), CAPABILITIES);
    fs.writeFileSync(path.join(bundleDir, 'config.json'), JSON.stringify(spec, null, 2) + '\n');
    const ic = image.config.config ?? {};
    const args = spec.process!.args!;
    const record: ContainerRecord = {
      Id: id,
      Created: new Date().toISOString(),
      Path: args[0],
      Args: args.slice(1),
      State: { Status: 'created', Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
      Image: image.ref.config,
      ResolvConfPath: path.join(bundleDir, 'resolv.conf'),
      HostnamePath: path.join(bundleDir, 'hostname'),
      HostsPath: path.join(bundleDir, 'hosts'),
      LogPath: path.join(dir, `${id}-json.log`),
      Name: `/${name}`,
      RestartCount: 0,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: null,
      HostConfig: plan.hostConfig,
      GraphDriver: { Name: 'overlay2', Data: { MergedDir: bundle.rootfs, UpperDir: path.join(bundleDir, 'overlay', 'upper'), WorkDir: path.join(bundleDir, 'overlay', 'work') } },
      Mounts: plan.mountPoints,
      Config: {
        ...plan.config,
        Env: spec.process!.env ?? [],
        Cmd: plan.config.Cmd ?? (plan.config.Entrypoint ? null : ic.Cmd ?? null),
        Entrypoint: plan.config.Entrypoint ?? ic.Entrypoint ?? null,
        WorkingDir: plan.config.WorkingDir || ic.WorkingDir || '',
        User: plan.config.User || ic.User || '',
        ExposedPorts: { ...(ic.ExposedPorts ?? {}), ...((plan.config.ExposedPorts as object) ?? {}) },
        Labels: { ...(ic.Labels ?? {}), ...((plan.config.Labels as object) ?? {}) },
        ...(plan.config.StopSignal ?? ic.StopSignal ? { StopSignal: plan.config.StopSignal ?? ic.StopSignal } : {}),
      },
      NetworkSettings: {},
      husk: {
        bundle: bundleDir,
        runDir: runDirOf(ctx, id),
        exitFile: path.join(dir, 'exit.json'),
        monitorPid: 0,
        imageName: plan.image,
        restart: plan.restart,
        log: plan.log,
        stoppedByUser: false,
        network: typeof net.network === 'object' ? net.network.attach.network : undefined,
        aliases: endpointAliases(body),
      },
    };
    record.NetworkSettings = networkSettings(ctx, record);
    writeRecord(ctx, record);
    emit(ctx, record, 'create');
  } catch (err) {
    // Nothing is left of a create that failed.
    if (bundleMade) {
      try {
        removeBundle(ctx.images, bundleDir, true);
      } catch {
        // the directory goes below all the same
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    for (const v of newVolumes) fs.rmSync(path.join(ctx.volumesDir, v), { recursive: true, force: true });
    throw err;
  } finally {
    reserved.delete(name);
  }
  res.json({ Id: id, Warnings: [] }, 201);
}

// ---------------------------------------------------------------------------------- start, wait

async function start(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  if (isRunning(r)) return res.empty(304);
  await startContainer(ctx, r);
  res.empty(204);
}

/** Resolves with the exit code once the container exits (or is removed, for 'removed'). */
function waitFor(ctx: DaemonContext, r: ContainerRecord, condition: string): Promise<number> {
  const bus = live(ctx).bus;
  if (condition === 'not-running' && !isRunning(r) && r.State.Status !== 'restarting') return Promise.resolve(r.State.ExitCode);
  const event = condition === 'removed' ? `destroy:${r.Id}` : `exit:${r.Id}`;
  return new Promise((resolve) => bus.once(event, (code: number) => resolve(code)));
}

async function wait(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const condition = req.query.get('condition') || 'not-running';
  if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw badRequest(`invalid condition: "${condition}"`);
  const code = waitFor(ctx, r, condition);
  // The head goes out at once, as dockerd's: the client knows its wait is in place.
  res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
  res.raw.flushHeaders();
  let closed = false;
  res.raw.on('close', () => (closed = true));
  const status = await code;
  if (closed) return;
  const now = readRecord(ctx, r.Id);
  const error = now?.State.Error ? { Message: now.State.Error } : null;
  res.raw.end(JSON.stringify({ StatusCode: status, Error: error }));
}

// ---------------------------------------------------------------------------------- attach, resize, logs

/** The exit of the container's current run, as a promise (settled already when not running). */
function exited(ctx: DaemonContext, r: ContainerRecord): Promise<unknown> {
  if (!isRunning(r)) return Promise.resolve();
  return new Promise((resolve) => live(ctx).bus.once(`exit:${r.Id}`, resolve));
}

/** Copies `from` to `to`, then ends `to`; resolves when `from` has ended (or failed). */
function pipeUntilEnd(from: NodeJS.ReadableStream, to: Duplex): Promise<void> {
  return new Promise((resolve) => {
    from.on('data', (chunk: Buffer) => to.write(chunk));
    from.on('end', () => {
      to.end();
      resolve();
    });
    from.on('error', () => {
      to.destroy();
      resolve();
    });
    from.on('close', () => resolve());
  });
}

async function attachHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  let r = findRecord(ctx, req.params.id);
  const o = { stdin: boolParam(req.query, 'stdin'), stdout: boolParam(req.query, 'stdout'), stderr: boolParam(req.query, 'stderr') };
  const stream = boolParam(req.query, 'stream');
  const logs = boolParam(req.query, 'logs');
  const tty = Boolean(r.Config.Tty);
  if (!stream && !logs) throw badRequest('Bad parameters: you must choose at least one stream');
  const { socket, head } = res.hijack(tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream');
  socket.on('error', () => socket.destroy());
  emit(ctx, r, 'attach');
  const show = { follow: false, timestamps: false, stdout: o.stdout, stderr: o.stderr, tty };
  if (!stream) {
    pipeUntilEnd(monitor().readLogs(r.LogPath, show), socket);
    return;
  }
  if (!isRunning(r)) {
    // Attached before start (docker run, start -a): everything the container writes is in its
    // log, so its output comes from there (nothing is lost before the attach reaches the
    // monitor); stdin goes to the monitor.
    const started = await new Promise<number | undefined>((resolve) => {
      const bus = live(ctx).bus;
      const stop = () => {
        bus.off(`start:${r.Id}`, onStart);
        bus.off(`start-failed:${r.Id}`, onFail);
        bus.off(`destroy:${r.Id}`, onFail);
      };
      const onStart = (since: number) => {
        stop();
        resolve(since);
      };
      // A start that failed, or a container removed first: the attach ends.
      const onFail = () => {
        stop();
        socket.end();
        resolve(undefined);
      };
      bus.on(`start:${r.Id}`, onStart);
      bus.on(`start-failed:${r.Id}`, onFail);
      bus.on(`destroy:${r.Id}`, onFail);
      socket.once('close', onFail);
    });
    if (started === undefined) return;
    r = readRecord(ctx, r.Id) ?? r;
    const done = exited(ctx, r);
    if (o.stdout || o.stderr) addReader(ctx, r.Id, pipeUntilEnd(monitor().readLogs(r.LogPath, { ...show, follow: true, done, since: started }), socket));
    else void done.then(() => socket.end());
    if (o.stdin) {
      const input = await monitor().attach(r.husk.runDir, { stdin: true, stdout: false, stderr: false }).catch(() => undefined);
      if (!input) return;
      input.on('error', () => input.destroy());
      input.resume();
      if (head.length) input.write(head);
      socket.pipe(input);
      socket.on('close', () => input.destroy());
    }
    return;
  }
  if (logs) await new Promise<void>((resolve) => {
    const old = monitor().readLogs(r.LogPath, show);
    old.on('data', (c: Buffer) => socket.write(c));
    old.on('end', resolve);
    old.on('error', () => resolve());
  });
  const conn = await monitor().attach(r.husk.runDir, o).catch((err) => {
    socket.end();
    throw err;
  });
  conn.on('error', () => conn.destroy());
  if (head.length) conn.write(head);
  socket.pipe(conn);
  conn.pipe(socket);
  socket.on('close', () => conn.destroy());
}

async function resizeHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const rows = intParam(req.query, 'h', 0)!;
  const cols = intParam(req.query, 'w', 0)!;
  if (!isRunning(r)) throw conflict(`Container ${r.Id} is not running`);
  await monitor().resize(r.husk.runDir, rows, cols).catch((err) => Promise.reject(badRequest(`resize: ${reason(err)}`)));
  emit(ctx, r, 'resize', { height: String(rows), width: String(cols) });
  res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'text/plain' });
  res.raw.end();
}

/** `--since 10m` reaches the API as Unix seconds, with a fraction. */
function timeParam(req: ApiRequest, name: string): number | undefined {
  const v = req.query.get(name);
  if (v === null || v === '' || v === '0') return undefined;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)}`);
  return Number(v);
}

function logsHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): void {
  const r = findRecord(ctx, req.params.id);
  const stdout = boolParam(req.query, 'stdout');
  const stderr = boolParam(req.query, 'stderr');
  if (!stdout && !stderr) throw badRequest('Bad parameters: you must choose at least one stream');
  const tailText = req.query.get('tail');
  const tail = tailText === null || tailText === '' || tailText === 'all' ? undefined : intParam(req.query, 'tail');
  const follow = boolParam(req.query, 'follow');
  const tty = Boolean(r.Config.Tty);
  const out = monitor().readLogs(r.LogPath, {
    follow, tail: tail !== undefined && tail < 0 ? undefined : tail, since: timeParam(req, 'since'), until: timeParam(req, 'until'),
    timestamps: boolParam(req.query, 'timestamps'), stdout, stderr, tty, done: follow ? exited(ctx, r) : undefined,
  });
  res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
  res.raw.flushHeaders();
  out.pipe(res.raw);
  res.raw.on('close', () => out.destroy());
}

// ---------------------------------------------------------------------------------- list, inspect

/** go-units' HumanDuration, as `docker ps` prints ages. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

export function statusText(r: ContainerRecord, now = Date.now()): string {
  const since = (t: string) => humanDuration(now - Date.parse(t));
  switch (r.State.Status) {
    case 'running': return `Up ${since(r.State.StartedAt)}`;
    case 'paused': return `Up ${since(r.State.StartedAt)} (Paused)`;
    case 'restarting': return `Restarting (${r.State.ExitCode}) ${since(r.State.FinishedAt)} ago`;
    case 'exited': return r.State.FinishedAt === ZERO_TIME ? 'Exited' : `Exited (${r.State.ExitCode}) ${since(r.State.FinishedAt)} ago`;
    case 'dead': return 'Dead';
    default: return 'Created';
  }
}

function portsOf(r: ContainerRecord): unknown[] {
  const out: unknown[] = [];
  for (const [p, list] of Object.entries((r.NetworkSettings.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>)) {
    const [port, type = 'tcp'] = p.split('/');
    if (!list?.length) out.push({ PrivatePort: Number(port), Type: type });
    for (const b of list ?? []) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return out;
}

/** A container as `docker ps` (and `system df`) lists it. */
export function summary(r: ContainerRecord) {
  return {
    Id: r.Id,
    Names: [r.Name],
    Image: r.husk.imageName,
    ImageID: r.Image,
    Command: [r.Path, ...r.Args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' '),
    Created: Math.floor(Date.parse(r.Created) / 1000),
    Ports: portsOf(r),
    Labels: r.Config.Labels ?? {},
    State: r.State.Status,
    Status: statusText(r),
    HostConfig: { NetworkMode: r.HostConfig.NetworkMode },
    NetworkSettings: { Networks: r.NetworkSettings.Networks ?? {} },
    Mounts: r.Mounts,
  };
}

const LIST_FILTERS = ['id', 'name', 'label', 'status', 'ancestor', 'exited', 'network', 'before', 'since', 'health', 'volume', 'expose', 'publish', 'isolation', 'is-task'];

function listHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): void {
  const filters = filtersParam(req.query, LIST_FILTERS);
  const all = boolParam(req.query, 'all');
  let records = listRecords(ctx);
  const idx = (ref: string) => {
    try {
      return findRecord(ctx, ref).Created;
    } catch {
      throw badRequest(`No such container: ${ref}`);
    }
  };
  const f = (name: string) => filters.get(name);
  const any = (name: string, test: (v: string) => boolean) => !f(name) || f(name)!.some(test);
  const before = f('before')?.map(idx);
  const since = f('since')?.map(idx);
  for (const s of f('status') ?? []) {
    if (!['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'].includes(s)) throw badRequest(`invalid filter 'status=${s}'`);
  }
  records = records.filter((r) => (all || f('status') || f('exited') || isRunning(r) || r.State.Status === 'restarting')
    && any('id', (v) => r.Id.startsWith(v))
    && any('name', (v) => new RegExp(v).test(r.Name.slice(1)))
    && (f('label') ?? []).every((v) => {
      const [k, val] = v.split(/=(.*)/s, 2);
      const labels = (r.Config.Labels ?? {}) as Record<string, string>;
      return val === undefined ? k in labels : labels[k] === val;
    })
    && any('status', (v) => v === r.State.Status)
    && any('exited', (v) => r.State.Status === 'exited' && String(r.State.ExitCode) === v)
    && any('ancestor', (v) => r.husk.imageName === v || r.Image === v || r.Image === `sha256:${v}` || r.Image.startsWith(`sha256:${v}`) || r.husk.imageName === `${v}:latest`)
    && any('network', (v) => v in (r.NetworkSettings.Networks ?? {}) || r.husk.network === v)
    && (!before || before.every((t) => r.Created < t))
    && (!since || since.every((t) => r.Created > t)));
  const limit = intParam(req.query, 'limit', -1)!;
  if (limit > 0) records = records.slice(0, limit);
  const size = boolParam(req.query, 'size');
  res.json(records.map((r) => (size ? { ...summary(r), SizeRw: diskUsage(path.join(r.husk.bundle, 'overlay', 'upper')) } : summary(r))));
}

// ---------------------------------------------------------------------------------- stop, kill, rm...

async function stopHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const t = intParam(req.query, 't') ?? (typeof r.Config.StopTimeout === 'number' ? r.Config.StopTimeout : 10);
  const stopped = await stopContainer(ctx, r, t);
  res.empty(stopped ? 204 : 304);
}

async function restartHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const t = intParam(req.query, 't') ?? (typeof r.Config.StopTimeout === 'number' ? r.Config.StopTimeout : 10);
  await stopContainer(ctx, r, t);
  await startContainer(ctx, readRecord(ctx, r.Id) ?? r);
  emit(ctx, r, 'restart');
  res.empty(204);
}

async function removeHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  await removeContainer(ctx, r, boolParam(req.query, 'force'));
  res.empty(204);
}

function renameHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): void {
  const r = findRecord(ctx, req.params.id);
  const asked = req.query.get('name');
  if (!asked) throw badRequest('Error when allocating new name: new name is empty');
  const name = checkName(asked);
  if (`/${name}` === r.Name) throw conflict(`Renaming a container with the same name as its current name`);
  checkNameFree(ctx, name, r.Id);
  const old = r.Name;
  r.Name = `/${name}`;
  writeRecord(ctx, r);
  emit(ctx, r, 'rename', { oldName: old });
  res.empty(204);
}

async function pruneHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const filters = filtersParam(req.query, ['until', 'label', 'label!']);
  const deleted: string[] = [];
  for (const r of listRecords(ctx)) {
    if (r.State.Status !== 'exited' && r.State.Status !== 'created' && r.State.Status !== 'dead') continue;
    const labels = (r.Config.Labels ?? {}) as Record<string, string>;
    const has = (v: string) => {
      const [k, val] = v.split(/=(.*)/s, 2);
      return val === undefined ? k in labels : labels[k] === val;
    };
    if (!(filters.get('label') ?? []).every(has)) continue;
    if ((filters.get('label!') ?? []).some(has)) continue;
    const until = filters.get('until')?.[0];
    if (until && Date.parse(r.Created) > (/^[0-9.]+$/.test(until) ? Number(until) * 1000 : Date.parse(until))) continue;
    await removeContainer(ctx, r, false).then(() => deleted.push(r.Id), () => undefined);
  }
  ctx.events.emit('container', 'prune', '', { reclaimed: '0' });
  res.json({ ContainersDeleted: deleted, SpaceReclaimed: 0 });
}

// ---------------------------------------------------------------------------------- top, stats, update

function topHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): void {
  const r = findRecord(ctx, req.params.id);
  if (!isRunning(r)) throw conflict(`Container ${r.Id} is not running`);
  const { ps } = require('../runtime/container') as typeof import('../runtime/container');
  const pids = new Set(ps(ctx.runtimeRoot, r.Id));
  const args = (req.query.get('ps_args') || '-ef').split(/\s+/).filter(Boolean);
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const out = spawnSync('ps', args, { encoding: 'utf8', timeout: 10_000 });
  if (out.status !== 0) throw new ApiError(500, `ps ${args.join(' ')}: ${out.stderr.trim() || out.error?.message}`);
  const lines = out.stdout.split('\n').filter(Boolean);
  const titles = lines[0].trim().split(/\s+/);
  const pidCol = titles.indexOf('PID');
  if (pidCol < 0) throw badRequest(`Couldn't find PID field in ps output`);
  const processes = lines.slice(1).map((l) => {
    const fields = l.trim().split(/\s+/);
    return [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
  }).filter((f) => pids.has(Number(f[pidCol])));
  res.json({ Titles: titles, Processes: processes });
}

/** A cgroup file of a process's: the v1 controller's hierarchy when it is mounted, else the unified one. */
function cgroupRead(pid: number, controller: string, v1File: string, v2File: string): string | undefined {
  try {
    const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
    for (const line of lines) {
      const [, controllers, cgroupPath] = line.split(':');
      if (controllers.split(',').includes(controller)) return fs.readFileSync(path.join('/sys/fs/cgroup', controllers, cgroupPath, v1File), 'utf8').trim();
    }
    const unified = lines.find((l) => l.startsWith('0::'));
    if (!unified) return undefined;
    const base = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
    return fs.readFileSync(path.join(base, unified.slice(3), v2File), 'utf8').trim();
  } catch {
    return undefined;
  }
}

const asNumber = (t: string | undefined) => (t === undefined || t === 'max' ? 0 : Number(t) || 0);

function systemCpu(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const ticks = line.split(/\s+/).slice(1).map(Number).reduce((a, b) => a + (b || 0), 0);
  return ticks * (1e9 / 100);
}

/** One `docker stats` sample, from the cgroup of the container's init. */
function statsOf(r: ContainerRecord) {
  const pid = isRunning(r) ? r.State.Pid : 0;
  const ncpu = require('os').cpus().length;
  const v2cpu = pid ? /usage_usec (\d+)/.exec(cgroupRead(pid, 'none', '', 'cpu.stat') ?? '') : null;
  const total = pid ? (v2cpu ? Number(v2cpu[1]) * 1000 : asNumber(cgroupRead(pid, 'cpuacct', 'cpuacct.usage', 'cpu.stat'))) : 0;
  const throttling = { periods: 0, throttled_periods: 0, throttled_time: 0 };
  const cpu = { cpu_usage: { total_usage: total, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: systemCpu(), online_cpus: ncpu, throttling_data: throttling };
  let limit = pid ? asNumber(cgroupRead(pid, 'memory', 'memory.limit_in_bytes', 'memory.max')) : 0;
  if (!limit || limit > require('os').totalmem()) limit = require('os').totalmem();
  return {
    read: new Date().toISOString(), preread: ZERO_TIME, id: r.Id, name: r.Name,
    pids_stats: pid ? { current: asNumber(cgroupRead(pid, 'pids', 'pids.current', 'pids.current')), limit: asNumber(cgroupRead(pid, 'pids', 'pids.max', 'pids.max')) } : {},
    blkio_stats: { io_service_bytes_recursive: null },
    num_procs: 0, storage_stats: {},
    cpu_stats: cpu,
    precpu_stats: { cpu_usage: { total_usage: 0 }, system_cpu_usage: 0, online_cpus: ncpu, throttling_data: throttling },
    memory_stats: pid ? { usage: asNumber(cgroupRead(pid, 'memory', 'memory.usage_in_bytes', 'memory.current')), limit, stats: {} } : {},
  };
}

function statsHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): void {
  const r = findRecord(ctx, req.params.id);
  const stream = boolParam(req.query, 'stream', true) && !boolParam(req.query, 'one-shot');
  if (!stream) return res.json(statsOf(r));
  res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
  let previous = statsOf(r);
  res.raw.write(JSON.stringify(previous) + '\n');
  const timer = setInterval(() => {
    const now = readRecord(ctx, r.Id);
    if (!now) return res.raw.end();
    const next = { ...statsOf(now), preread: previous.read, precpu_stats: previous.cpu_stats };
    previous = next;
    res.raw.write(JSON.stringify(next) + '\n');
  }, 1000);
  res.raw.on('close', () => clearInterval(timer));
}

async function updateHandler(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const body = checkFields(await req.json<unknown>({}), 'update', ['RestartPolicy', 'CpuShares', 'Memory', 'NanoCpus', 'CpuPeriod', 'CpuQuota', 'MemorySwap', 'PidsLimit', 'MemoryReservation', 'KernelMemory', 'CpusetCpus', 'CpusetMems', 'BlkioWeight', 'CgroupParent', 'BlkioWeightDevice', 'BlkioDeviceReadBps', 'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'Devices', 'DeviceCgroupRules', 'DeviceRequests', 'KernelMemoryTCP', 'MemorySwappiness', 'OomKillDisable', 'Ulimits', 'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth']);
  const { RestartPolicy, ...rest } = body;
  const resources = resourcesOf(rest, 'update');
  if (resources && isRunning(r)) {
    const { update } = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
    try {
      update(ctx.runtimeRoot, r.Id, resources);
    } catch (err) {
      throw badRequest(`Cannot update container ${r.Id}: ${reason(err)}`);
    }
  }
  const now = readRecord(ctx, r.Id) ?? r;
  for (const [k, v] of Object.entries(rest)) if (v !== null && v !== undefined && v !== 0 && v !== '') now.HostConfig[k] = v;
  if (RestartPolicy && typeof RestartPolicy === 'object') {
    const p = RestartPolicy as { Name?: string; MaximumRetryCount?: number };
    now.husk.restart = { Name: (p.Name ?? '') as never, MaximumRetryCount: p.MaximumRetryCount ?? 0 };
    now.HostConfig.RestartPolicy = { Name: p.Name || 'no', MaximumRetryCount: p.MaximumRetryCount ?? 0 };
  }
  // A bundle not yet started gets the new limits in its config.json.
  if (resources && !isRunning(now)) {
    const file = path.join(now.husk.bundle, 'config.json');
    const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
    const { mergeResources } = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
    spec.linux.resources = mergeResources(spec.linux.resources, resources);
    fs.writeFileSync(file, JSON.stringify(spec, null, 2) + '\n');
  }
  writeRecord(ctx, now);
  emit(ctx, now, 'update');
  res.json({ Warnings: [] });
}

// ---------------------------------------------------------------------------------- routes

/** The aliases the create body gives the container on its network (Compose: the service name). */
function endpointAliases(body: unknown): string[] | undefined {
  const endpoints = (body as { NetworkingConfig?: { EndpointsConfig?: Record<string, { Aliases?: unknown } | null> } } | undefined)?.NetworkingConfig?.EndpointsConfig;
  const aliases = Object.values(endpoints ?? {})[0]?.Aliases;
  if (aliases === undefined || aliases === null) return undefined;
  if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(a))) {
    throw badRequest('NetworkingConfig.EndpointsConfig: Aliases must be a list of host names');
  }
  return aliases as string[];
}

export function routes(ctx: DaemonContext): Route[] {
  const on = (method: Route['method'], p: string, fn: (ctx: DaemonContext, req: ApiRequest, res: ApiResponse) => Promise<void> | void): Route => ({ method, path: p, handle: (req, res) => fn(ctx, req, res) });
  return [
    on('POST', '/containers/create', create),
    on('GET', '/containers/json', listHandler),
    on('POST', '/containers/prune', pruneHandler),
    on('GET', '/containers/{id}/json', (c, req, res) => res.json(inspectView(findRecord(c, req.params.id)))),
    on('POST', '/containers/{id}/start', start),
    on('POST', '/containers/{id}/wait', wait),
    on('POST', '/containers/{id}/attach', attachHandler),
    on('POST', '/containers/{id}/resize', resizeHandler),
    on('GET', '/containers/{id}/logs', logsHandler),
    on('POST', '/containers/{id}/stop', stopHandler),
    on('POST', '/containers/{id}/restart', restartHandler),
    on('POST', '/containers/{id}/kill', async (c, req, res) => {
      const r = findRecord(c, req.params.id);
      const signal = signalNumber(req.query.get('signal'));
      killContainer(c, r, signal);
      // As dockerd: a SIGKILL returns once the container is gone.
      if (signal === 9) await waitForExit(c, r.Id, 10_000);
      res.empty(204);
    }),
    on('POST', '/containers/{id}/pause', (c, req, res) => {
      pauseContainer(c, findRecord(c, req.params.id));
      res.empty(204);
    }),
    on('POST', '/containers/{id}/unpause', (c, req, res) => {
      unpauseContainer(c, findRecord(c, req.params.id));
      res.empty(204);
    }),
    on('POST', '/containers/{id}/rename', renameHandler),
    on('GET', '/containers/{id}/top', topHandler),
    on('GET', '/containers/{id}/stats', statsHandler),
    on('POST', '/containers/{id}/update', updateHandler),
    on('DELETE', '/containers/{id}', removeHandler),
    ...archiveRoutes(ctx),
  ];
}
