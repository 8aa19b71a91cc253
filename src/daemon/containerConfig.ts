// Docker's container create body (Config + HostConfig + NetworkingConfig) -> what husk makes
// of it: the bundle's options, the network flags, the changes to config.json that the bundle
// options do not carry (capabilities, seccomp, --init), and the daemon's own policy (restart,
// auto-remove, log rotation). Pure: every rule here is unit-tested without root.
//
// What dockerd accepts, husk accepts with the same names: a field Docker does not have is a 400
// naming it; a field Docker has but husk does not do yet is a 400 only when it carries a value
// other than the one the CLI sends by default (null, "", 0, false, [], {}).
import * as path from 'path';
import { badRequest } from './api';
import type { Mount, Resources, Seccomp, SeccompSyscall, Spec } from '../spec/types';
import type { NetworkFlags } from '../network/options';

export const CONFIG_FIELDS = [
  'Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin',
  'StdinOnce', 'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint',
  'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal', 'StopTimeout', 'Shell',
] as const;

/** The create body: Config's fields at the top, with HostConfig and NetworkingConfig. */
export const CREATE_FIELDS = [...CONFIG_FIELDS, 'HostConfig', 'NetworkingConfig'] as const;

const RESOURCE_FIELDS = [
  'CpuShares', 'Memory', 'NanoCpus', 'CgroupParent', 'BlkioWeight', 'BlkioWeightDevice', 'BlkioDeviceReadBps',
  'BlkioDeviceWriteBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteIOps', 'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod',
  'CpuRealtimeRuntime', 'CpusetCpus', 'CpusetMems', 'Devices', 'DeviceCgroupRules', 'DeviceRequests', 'KernelMemory',
  'KernelMemoryTCP', 'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'OomKillDisable', 'PidsLimit', 'Ulimits',
  'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth',
] as const;

export const HOST_CONFIG_FIELDS = [
  'Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'VolumeDriver',
  'VolumesFrom', 'ConsoleSize', 'Annotations', 'CapAdd', 'CapDrop', 'CgroupnsMode', 'Dns', 'DnsOptions', 'DnsSearch',
  'ExtraHosts', 'GroupAdd', 'IpcMode', 'Cgroup', 'Links', 'OomScoreAdj', 'PidMode', 'Privileged', 'PublishAllPorts',
  'ReadonlyRootfs', 'SecurityOpt', 'StorageOpt', 'Tmpfs', 'UTSMode', 'UsernsMode', 'ShmSize', 'Sysctls', 'Runtime',
  'Isolation', ...RESOURCE_FIELDS, 'Mounts', 'MaskedPaths', 'ReadonlyPaths', 'Init',
] as const;

/** What husk maps; every other HostConfig field must keep its default. */
const HOST_CONFIG_SUPPORTED = new Set<string>([
  'Binds', 'ContainerIDFile', 'LogConfig', 'NetworkMode', 'PortBindings', 'RestartPolicy', 'AutoRemove', 'ConsoleSize',
  'CapAdd', 'CapDrop', 'Dns', 'ExtraHosts', 'ReadonlyRootfs', 'SecurityOpt', 'Tmpfs', 'Memory', 'MemorySwap', 'NanoCpus',
  'CpuShares', 'CpuQuota', 'CpuPeriod', 'PidsLimit', 'Mounts', 'Init', 'Privileged',
  // The CLI sends these with values that mean "the default": checked below.
  'IpcMode', 'PidMode', 'UTSMode', 'CgroupnsMode', 'Isolation', 'Runtime',
]);
const CONFIG_SUPPORTED = new Set<string>([
  'Hostname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce',
  'Env', 'Cmd', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'Labels', 'StopSignal', 'StopTimeout', 'ArgsEscaped',
  'Domainname', 'NetworkDisabled', 'OnBuild', 'Shell', 'MacAddress', 'Healthcheck',
]);

/** null, "", 0, false, [] and {} (recursively): what the CLI sends for a flag not given. */
export function isDefault(v: unknown): boolean {
  if (v === null || v === undefined || v === '' || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.every(isDefault);
  if (typeof v === 'object') return Object.values(v as object).every(isDefault);
  return false;
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';
  MaximumRetryCount: number;
}

export interface CreatePlan {
  image: string;
  /** createBundle's options (without network, hooks and container, which the caller adds). */
  bundle: {
    cmd?: string[];
    entrypoint?: string[];
    env: string[];
    workdir?: string;
    user?: string;
    terminal: boolean;
    hostname: string;
    readonlyRootfs: boolean;
    resources?: Resources;
    mounts: Mount[];
  };
  network: NetworkFlags;
  /** What config.json gets after createBundle made it. */
  spec: { capAdd: string[]; capDrop: string[]; seccomp?: 'unconfined' | Seccomp; init: boolean };
  restart: RestartPolicy;
  autoRemove: boolean;
  log: { maxSize?: number; maxFiles?: number };
  /** The record's Config and HostConfig: the body's, with defaults filled in as dockerd does. */
  config: Record<string, unknown>;
  hostConfig: Record<string, unknown>;
  /** The record's Mounts (docker inspect's). */
  mountPoints: MountPoint[];
  /** The named volumes the container uses (made when missing, as dockerd does). */
  volumes: string[];
}

export interface MountPoint {
  Type: 'bind' | 'tmpfs' | 'volume';
  Source: string;
  Destination: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** Named volumes: the volume's name and driver. */
  Name?: string;
  Driver?: string;
}

const obj = (v: unknown, where: string, known: readonly string[]): Record<string, unknown> => {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${where}: expected a JSON object`);
  for (const key of Object.keys(v)) if (!known.includes(key)) throw badRequest(`${where}: unknown field ${JSON.stringify(key)}`);
  return v as Record<string, unknown>;
};

function strings(v: unknown, where: string): string[] | undefined {
  if (v === null || v === undefined) return undefined;
  // Cmd and Entrypoint may be one string (old clients): it is the command, as one word list.
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw badRequest(`${where}: expected a list of strings`);
  return v as string[];
}

function str(v: unknown, where: string): string | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw badRequest(`${where}: expected a string`);
  return v;
}

function num(v: unknown, where: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${where}: expected a number`);
  return v;
}

/** A host path for a bind: absolute, no `..`, and not the host's / itself. */
export function checkHostPath(p: string, where: string): string {
  if (!path.isAbsolute(p)) throw badRequest(`${where}: ${JSON.stringify(p)}: husk does not support named volumes yet (give an absolute host path)`);
  if (p.split('/').includes('..')) throw badRequest(`${where}: ${JSON.stringify(p)}: ".." is not allowed in a bind's path`);
  if (path.normalize(p) === '/') throw badRequest(`${where}: binding the host's / into a container is refused`);
  return path.normalize(p);
}

function checkTarget(p: string, where: string): string {
  if (!path.isAbsolute(p)) throw badRequest(`${where}: ${JSON.stringify(p)}: the container path must be absolute`);
  if (p.split('/').includes('..')) throw badRequest(`${where}: ${JSON.stringify(p)}: ".." is not allowed in a container path`);
  if (path.normalize(p) === '/') throw badRequest(`${where}: a mount over the container's / is refused`);
  return path.normalize(p);
}

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

function bindMount(source: string, target: string, readOnly: boolean, propagation = 'rprivate'): Mount {
  return { destination: target, type: 'bind', source, options: ['rbind', readOnly ? 'ro' : 'rw', propagation] };
}

/** A named volume's name, as dockerd checks it. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A named volume's data directory (dockerd's layout: <volumes>/<name>/_data). */
export function volumeSource(volumesDir: string | undefined, name: string, where: string): string {
  if (!volumesDir) throw badRequest(`${where}: ${JSON.stringify(name)}: husk does not support named volumes here (give an absolute host path)`);
  if (!VOLUME_NAME.test(name)) throw badRequest(`${where}: ${JSON.stringify(name)} includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`);
  return path.join(volumesDir, name, '_data');
}

/** `-v /host:/container[:ro|rw|z|Z|propagation,...]`, or `-v NAME:/container` for a named volume. */
export function parseBind(text: string, volumesDir?: string): { mount: Mount; point: MountPoint; volume?: string } {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) throw badRequest(`HostConfig.Binds: invalid volume specification: ${JSON.stringify(text)}`);
  const volume = parts[0].startsWith('/') ? undefined : parts[0];
  const source = volume === undefined ? checkHostPath(parts[0], 'HostConfig.Binds') : volumeSource(volumesDir, volume, 'HostConfig.Binds');
  const target = checkTarget(parts[1], 'HostConfig.Binds');
  const modes = parts[2] ? parts[2].split(',') : [];
  let readOnly = false;
  let propagation = 'rprivate';
  for (const m of modes) {
    if (m === 'ro') readOnly = true;
    else if (m === 'rw' || m === 'z' || m === 'Z' || m === 'nocopy') continue;
    else if (PROPAGATIONS.includes(m)) propagation = m;
    else throw badRequest(`HostConfig.Binds: invalid mode ${JSON.stringify(m)} in ${JSON.stringify(text)}`);
  }
  return {
    mount: bindMount(source, target, readOnly, propagation),
    point: volume === undefined
      ? { Type: 'bind', Source: source, Destination: target, Mode: parts[2] ?? '', RW: !readOnly, Propagation: propagation }
      : { Type: 'volume', Name: volume, Source: source, Destination: target, Driver: 'local', Mode: parts[2] ?? 'z', RW: !readOnly, Propagation: '' },
    ...(volume !== undefined ? { volume } : {}),
  };
}

/** `--tmpfs /run:size=64m,mode=1777`: Docker's default options are noexec, nosuid, nodev. */
export function tmpfsMount(target: string, options: string[]): Mount {
  const opts = ['nosuid', 'nodev', 'noexec'];
  for (const o of options.filter(Boolean)) {
    const flip: Record<string, string> = { exec: 'noexec', suid: 'nosuid', dev: 'nodev' };
    if (flip[o]) {
      const at = opts.indexOf(flip[o]);
      if (at >= 0) opts.splice(at, 1);
    }
    opts.push(o);
  }
  return { destination: target, type: 'tmpfs', source: 'tmpfs', options: opts };
}

const MOUNT_FIELDS = ['Target', 'Source', 'Type', 'ReadOnly', 'Consistency', 'BindOptions', 'VolumeOptions', 'TmpfsOptions'];

function parseMountSpec(m: unknown, i: number, volumesDir?: string): { mount: Mount; point: MountPoint; volume?: string } {
  const where = `HostConfig.Mounts[${i}]`;
  const o = obj(m, where, MOUNT_FIELDS);
  const target = checkTarget(String(o.Target ?? ''), `${where}.Target`);
  const readOnly = Boolean(o.ReadOnly);
  if (o.Type === 'bind') {
    const b = obj(o.BindOptions, `${where}.BindOptions`, ['Propagation', 'NonRecursive', 'CreateMountpoint', 'ReadOnlyNonRecursive', 'ReadOnlyForceRecursive']);
    const propagation = str(b.Propagation, `${where}.BindOptions.Propagation`) ?? 'rprivate';
    if (!PROPAGATIONS.includes(propagation)) throw badRequest(`${where}.BindOptions.Propagation: invalid propagation ${JSON.stringify(propagation)}`);
    const source = checkHostPath(String(o.Source ?? ''), `${where}.Source`);
    return { mount: bindMount(source, target, readOnly, propagation), point: { Type: 'bind', Source: source, Destination: target, Mode: '', RW: !readOnly, Propagation: propagation } };
  }
  if (o.Type === 'tmpfs') {
    const t = obj(o.TmpfsOptions, `${where}.TmpfsOptions`, ['SizeBytes', 'Mode', 'Options']);
    const opts: string[] = [];
    const size = num(t.SizeBytes, `${where}.TmpfsOptions.SizeBytes`);
    if (size) opts.push(`size=${size}`);
    const mode = num(t.Mode, `${where}.TmpfsOptions.Mode`);
    if (mode) opts.push(`mode=${mode.toString(8)}`);
    if (readOnly) opts.push('ro');
    return { mount: tmpfsMount(target, opts), point: { Type: 'tmpfs', Source: '', Destination: target, Mode: '', RW: !readOnly, Propagation: '' } };
  }
  if (o.Type === 'volume') {
    obj(o.VolumeOptions, `${where}.VolumeOptions`, ['NoCopy', 'Labels', 'DriverConfig', 'Subpath']);
    const name = String(o.Source ?? '');
    if (!name) throw badRequest(`${where}: husk does not support anonymous volumes yet (give the volume a name)`);
    const source = volumeSource(volumesDir, name, `${where}.Source`);
    return { mount: bindMount(source, target, readOnly), point: { Type: 'volume', Name: name, Source: source, Destination: target, Driver: 'local', Mode: 'z', RW: !readOnly, Propagation: '' }, volume: name };
  }
  throw badRequest(`${where}.Type: ${JSON.stringify(o.Type)}: expected bind, tmpfs or volume`);
}

/** `--security-opt`: seccomp=unconfined, or seccomp=<the profile's JSON> as the CLI sends it. */
export function parseSecurityOpt(opts: string[]): { seccomp?: 'unconfined' | Seccomp } {
  let seccomp: 'unconfined' | Seccomp | undefined;
  for (const o of opts) {
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    const value = eq < 0 ? '' : o.slice(eq + 1);
    if (key === 'seccomp') {
      if (value === 'unconfined') seccomp = 'unconfined';
      else seccomp = seccompFromDocker(value);
    } else if (key === 'no-new-privileges' || key === 'label' || key === 'apparmor') {
      if (key === 'no-new-privileges' && value !== '' && value !== 'false' && value !== 'true') throw badRequest(`HostConfig.SecurityOpt: invalid no-new-privileges value ${JSON.stringify(value)}`);
      if (key === 'apparmor' && value !== 'unconfined') throw badRequest(`husk does not support HostConfig.SecurityOpt ${JSON.stringify(o)} yet`);
      if (key === 'label' && value !== 'disable') throw badRequest(`husk does not support HostConfig.SecurityOpt ${JSON.stringify(o)} yet`);
    } else {
      throw badRequest(`HostConfig.SecurityOpt: invalid security option ${JSON.stringify(o)}`);
    }
  }
  return { seccomp };
}

/**
 * A Docker seccomp profile (defaultAction, architectures or archMap, syscalls with names or
 * name, includes and excludes by capability or architecture) as the runtime spec's. Rules whose
 * includes ask for a capability or kernel are left out (as dockerd does without that capability).
 */
export function seccompFromDocker(text: string): Seccomp {
  let p: Record<string, any>;
  try {
    p = JSON.parse(text);
  } catch (err) {
    throw badRequest(`HostConfig.SecurityOpt: the seccomp profile is not JSON: ${(err as Error).message}`);
  }
  if (!p || typeof p !== 'object' || typeof p.defaultAction !== 'string') throw badRequest('HostConfig.SecurityOpt: the seccomp profile has no defaultAction');
  const arches: string[] = [];
  for (const a of p.architectures ?? []) arches.push(a);
  for (const m of p.archMap ?? []) if (m.architecture === 'SCMP_ARCH_X86_64' || m.architecture === 'SCMP_ARCH_AARCH64') arches.push(m.architecture, ...(m.subArchitectures ?? []));
  const syscalls: SeccompSyscall[] = [];
  for (const s of p.syscalls ?? []) {
    const inc = s.includes ?? {};
    if (inc.caps?.length || inc.minKernel || (inc.arches?.length && !inc.arches.includes(process.arch === 'x64' ? 'amd64' : process.arch))) continue;
    const names: string[] = s.names ?? (s.name ? [s.name] : []);
    if (!names.length) continue;
    syscalls.push({ names, action: s.action, ...(s.errnoRet !== undefined ? { errnoRet: s.errnoRet } : {}), ...(s.args?.length ? { args: s.args } : {}) });
  }
  return { defaultAction: p.defaultAction as Seccomp['defaultAction'], ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}), ...(arches.length ? { architectures: [...new Set(arches)] } : {}), syscalls };
}

/** `CAP_X`, `x` or `ALL` -> `CAP_X` / `ALL`. */
export function capName(c: string): string {
  const up = c.toUpperCase();
  if (up === 'ALL') return 'ALL';
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
}

/** Capabilities added and dropped on top of the ones config.json has (Docker's rules: drop
 * first unless ALL is added; ALL dropped leaves only what is added). */
export function applyCapabilities(current: string[], add: string[], drop: string[], all: string[]): string[] {
  let caps = drop.includes('ALL') ? [] : current.filter((c) => !drop.includes(c));
  if (add.includes('ALL')) caps = [...all];
  for (const c of add) if (c !== 'ALL' && !caps.includes(c)) caps.push(c);
  return caps;
}

/** `size=10m` / `max-size=10m`: Docker's units (k, m, g; decimal k = 1000 as go-units FromHumanSize? no: json-file uses RAMInBytes, 1024). */
export function parseSize(text: string, where: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)b?$/i.exec(text.trim());
  if (!m) throw badRequest(`${where}: invalid size ${JSON.stringify(text)}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * unit);
}

/** The container's name, as dockerd checks it (without its leading /). */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkName(name: string): string {
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (!NAME_PATTERN.test(bare)) throw badRequest(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return bare;
}

/** PortBindings {"80/tcp": [{HostIp, HostPort}]} -> the -p texts husk's network takes. */
export function publishOf(bindings: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [port, list] of Object.entries(bindings)) {
    const m = /^([0-9]+)(?:\/(tcp|udp|sctp))?$/.exec(port);
    if (!m) throw badRequest(`HostConfig.PortBindings: invalid port ${JSON.stringify(port)}`);
    for (const b of (list as { HostIp?: string; HostPort?: string }[] | null) ?? []) {
      if (!b.HostPort) throw badRequest(`HostConfig.PortBindings: ${port}: no host port (the daemon picks one before this)`);
      const ip = b.HostIp ? (b.HostIp.includes(':') ? `[${b.HostIp}]:` : `${b.HostIp}:`) : '';
      out.push(`${ip}${b.HostPort}:${m[1]}/${m[2] ?? 'tcp'}`);
    }
  }
  return out;
}

function restartPolicy(v: unknown): RestartPolicy {
  const o = obj(v, 'HostConfig.RestartPolicy', ['Name', 'MaximumRetryCount']);
  const name = (o.Name ?? '') as string;
  if (!['', 'no', 'always', 'unless-stopped', 'on-failure'].includes(name)) throw badRequest(`invalid restart policy ${JSON.stringify(name)}`);
  const max = num(o.MaximumRetryCount, 'HostConfig.RestartPolicy.MaximumRetryCount') ?? 0;
  if (max < 0) throw badRequest('invalid restart policy: maximum retry count cannot be negative');
  if (max > 0 && name !== 'on-failure') throw badRequest(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  return { Name: name as RestartPolicy['Name'], MaximumRetryCount: max };
}

/** HostConfig's resource fields (create's and update's) as linux.resources. */
export function resourcesOf(h: Record<string, unknown>, where = 'HostConfig'): Resources | undefined {
  const r: Resources = {};
  const memory = num(h.Memory, `${where}.Memory`);
  if (memory) {
    if (memory < 6 * 1024 * 1024) throw badRequest('Minimum memory limit allowed is 6MB');
    r.memory = { limit: memory };
  }
  const swap = num(h.MemorySwap, `${where}.MemorySwap`);
  if (swap) {
    if (!r.memory) throw badRequest('You should always set the Memory limit when using Memoryswap limit');
    if (swap !== -1 && swap < r.memory.limit!) throw badRequest('Minimum memoryswap limit should be larger than memory limit, see usage');
    r.memory.swap = swap;
  }
  const nano = num(h.NanoCpus, `${where}.NanoCpus`);
  const quota = num(h.CpuQuota, `${where}.CpuQuota`);
  const period = num(h.CpuPeriod, `${where}.CpuPeriod`);
  if (nano && (quota || period)) throw badRequest('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano) r.cpu = { quota: Math.round((nano / 1e9) * 100_000), period: 100_000 };
  if (quota || period) r.cpu = { ...(quota ? { quota } : {}), ...(period ? { period } : {}) };
  const shares = num(h.CpuShares, `${where}.CpuShares`);
  if (shares) r.cpu = { ...(r.cpu ?? {}), shares };
  const pids = num(h.PidsLimit, `${where}.PidsLimit`);
  if (pids && pids > 0) r.pids = { limit: pids };
  return Object.keys(r).length ? r : undefined;
}

const DEFAULT_MODES: Record<string, string[]> = {
  IpcMode: ['', 'private', 'shareable'], PidMode: [''], UTSMode: [''], CgroupnsMode: ['', 'private', 'host'],
  Isolation: ['', 'default'], Runtime: ['', 'runc', 'husk'],
};

/**
 * The create body checked and mapped. `id` gives the default hostname (its first 12; the host's
 * name with the host's network). -e K without a value was already resolved by the client.
 */
export function planCreate(body: unknown, id: string, hostHostname = 'localhost', volumesDir?: string): CreatePlan {
  const c = obj(body, 'container config', CREATE_FIELDS);
  const h = obj(c.HostConfig, 'HostConfig', HOST_CONFIG_FIELDS);
  const n = obj(c.NetworkingConfig, 'NetworkingConfig', ['EndpointsConfig']);
  for (const [k, v] of Object.entries(c)) {
    if (k !== 'HostConfig' && k !== 'NetworkingConfig' && !CONFIG_SUPPORTED.has(k) && !isDefault(v)) throw badRequest(`husk does not support Config.${k} yet`);
  }
  for (const [k, v] of Object.entries(h)) {
    if (DEFAULT_MODES[k]) {
      if (v !== null && v !== undefined && !DEFAULT_MODES[k].includes(v as string)) throw badRequest(`husk does not support HostConfig.${k} ${JSON.stringify(v)} yet`);
    } else if (!HOST_CONFIG_SUPPORTED.has(k) && !isDefault(v) && !(k === 'MemorySwappiness' && v === -1)) {
      throw badRequest(`husk does not support HostConfig.${k} yet`);
    }
  }
  if (h.Privileged) throw badRequest('husk does not support HostConfig.Privileged yet');
  if (c.Healthcheck && !isDefault(c.Healthcheck)) throw badRequest('husk does not support Config.Healthcheck yet');

  const image = str(c.Image, 'Image');
  if (!image) throw badRequest('No command specified: the config has no Image');
  const env = strings(c.Env, 'Env') ?? [];
  for (const e of env) if (e.startsWith('=') || e === '') throw badRequest(`invalid environment variable: ${JSON.stringify(e)}`);
  const workdir = str(c.WorkingDir, 'WorkingDir');
  if (workdir && !workdir.startsWith('/')) throw badRequest(`the working directory '${workdir}' is invalid, it needs to be an absolute path`);
  const givenHostname = str(c.Hostname, 'Hostname');

  const mounts: Mount[] = [];
  const points: MountPoint[] = [];
  const volumes: string[] = [];
  for (const b of strings(h.Binds, 'HostConfig.Binds') ?? []) {
    const { mount, point, volume } = parseBind(b, volumesDir);
    mounts.push(mount);
    points.push(point);
    if (volume) volumes.push(volume);
  }
  (Array.isArray(h.Mounts) ? h.Mounts : h.Mounts == null ? [] : [h.Mounts]).forEach((m, i) => {
    const { mount, point, volume } = parseMountSpec(m, i, volumesDir);
    mounts.push(mount);
    points.push(point);
    if (volume) volumes.push(volume);
  });
  for (const [target, options] of Object.entries(obj(h.Tmpfs, 'HostConfig.Tmpfs', Object.keys(h.Tmpfs ?? {})))) {
    const dest = checkTarget(target, 'HostConfig.Tmpfs');
    mounts.push(tmpfsMount(dest, String(options ?? '').split(',')));
    points.push({ Type: 'tmpfs', Source: '', Destination: dest, Mode: String(options ?? ''), RW: true, Propagation: '' });
  }
  const destinations = mounts.map((m) => m.destination);
  const dup = destinations.find((d, i) => destinations.indexOf(d) !== i);
  if (dup) throw badRequest(`Duplicate mount point: ${dup}`);

  let mode = str(h.NetworkMode, 'HostConfig.NetworkMode') ?? 'default';
  if (mode === 'default') mode = 'bridge';
  if (c.NetworkDisabled) mode = 'none';
  // With the host's network, the host's name (as dockerd), else the id's first 12.
  const hostname = givenHostname ?? (mode === 'host' ? hostHostname : id.slice(0, 12));
  if (mode.startsWith('container:')) throw badRequest(`husk does not support HostConfig.NetworkMode ${JSON.stringify(mode)} yet`);
  const endpoints = obj(n.EndpointsConfig, 'NetworkingConfig.EndpointsConfig', Object.keys((n.EndpointsConfig as object) ?? {}));
  if (Object.keys(endpoints).length > 1) throw badRequest('Container cannot be connected to network endpoints: husk connects a container to one network at create');
  const publish = publishOf(obj(h.PortBindings, 'HostConfig.PortBindings', Object.keys((h.PortBindings as object) ?? {})));
  const dns = strings(h.Dns, 'HostConfig.Dns') ?? [];
  const addHost = strings(h.ExtraHosts, 'HostConfig.ExtraHosts') ?? [];

  const log = obj(h.LogConfig, 'HostConfig.LogConfig', ['Type', 'Config']);
  const logType = str(log.Type, 'HostConfig.LogConfig.Type') ?? 'json-file';
  if (logType !== 'json-file') throw badRequest(`husk does not support the ${JSON.stringify(logType)} logging driver yet (json-file only)`);
  const logOpts = obj(log.Config, 'HostConfig.LogConfig.Config', ['max-size', 'max-file', 'compress', 'labels', 'env', 'tag']);
  const maxSize = logOpts['max-size'] ? parseSize(String(logOpts['max-size']), 'log-opt max-size') : undefined;
  const maxFiles = logOpts['max-file'] ? Number(logOpts['max-file']) : undefined;
  if (maxFiles !== undefined && (!Number.isInteger(maxFiles) || maxFiles < 1)) throw badRequest(`log-opt max-file: invalid value ${JSON.stringify(logOpts['max-file'])}`);

  const restart = restartPolicy(h.RestartPolicy);
  const autoRemove = Boolean(h.AutoRemove);
  if (autoRemove && restart.Name && restart.Name !== 'no') throw badRequest('can\'t create \'AutoRemove\' container with restart policy');
  const security = parseSecurityOpt(strings(h.SecurityOpt, 'HostConfig.SecurityOpt') ?? []);

  const stopSignal = str(c.StopSignal, 'StopSignal');
  const config: Record<string, unknown> = {
    Hostname: hostname, Domainname: c.Domainname ?? '', User: c.User ?? '', AttachStdin: Boolean(c.AttachStdin),
    AttachStdout: Boolean(c.AttachStdout), AttachStderr: Boolean(c.AttachStderr), ExposedPorts: c.ExposedPorts ?? undefined,
    Tty: Boolean(c.Tty), OpenStdin: Boolean(c.OpenStdin), StdinOnce: Boolean(c.StdinOnce), Env: env,
    Cmd: strings(c.Cmd, 'Cmd') ?? null, Image: image, Volumes: c.Volumes ?? null, WorkingDir: workdir ?? '',
    Entrypoint: strings(c.Entrypoint, 'Entrypoint') ?? null, OnBuild: null, Labels: c.Labels ?? {},
    ...(stopSignal ? { StopSignal: stopSignal } : {}), ...(c.StopTimeout != null ? { StopTimeout: c.StopTimeout } : {}),
  };
  const hostConfig: Record<string, unknown> = {
    ...h, NetworkMode: mode, RestartPolicy: { Name: restart.Name || 'no', MaximumRetryCount: restart.MaximumRetryCount },
    LogConfig: { Type: 'json-file', Config: logOpts }, AutoRemove: autoRemove,
  };
  return {
    image,
    bundle: {
      cmd: strings(c.Cmd, 'Cmd'),
      entrypoint: strings(c.Entrypoint, 'Entrypoint'),
      env,
      workdir,
      user: str(c.User, 'User'),
      terminal: Boolean(c.Tty),
      hostname,
      readonlyRootfs: Boolean(h.ReadonlyRootfs),
      resources: resourcesOf(h),
      mounts,
    },
    network: { network: mode, hostname, publish, dns, addHost },
    spec: {
      capAdd: (strings(h.CapAdd, 'HostConfig.CapAdd') ?? []).map(capName),
      capDrop: (strings(h.CapDrop, 'HostConfig.CapDrop') ?? []).map(capName),
      seccomp: security.seccomp,
      init: Boolean(h.Init),
    },
    restart,
    autoRemove,
    log: { maxSize, maxFiles },
    config,
    hostConfig,
    mountPoints: points,
    volumes: [...new Set(volumes)],
  };
}

/** Where --init's tini is found on the host, bound read-only at /sbin/docker-init. */
export const INIT_BINARIES = ['/usr/bin/docker-init', '/usr/bin/tini-static', '/usr/bin/tini'];

/** The changes to config.json that the bundle options do not carry. */
export function patchSpec(spec: Spec, p: CreatePlan['spec'], initBinary: string | undefined, allCaps: string[]): Spec {
  const proc = spec.process!;
  if (p.capAdd.length || p.capDrop.length) {
    const caps = proc.capabilities ?? {};
    for (const set of ['bounding', 'effective', 'permitted'] as const) caps[set] = applyCapabilities(caps[set] ?? [], p.capAdd, p.capDrop, allCaps);
    proc.capabilities = caps;
  }
  if (p.seccomp && p.seccomp !== 'unconfined') spec.linux!.seccomp = p.seccomp;
  if (p.seccomp === 'unconfined') delete spec.linux!.seccomp;
  if (p.init) {
    if (!initBinary) throw badRequest(`--init: no docker-init on this host (install Debian's tini: ${INIT_BINARIES.join(', ')})`);
    spec.mounts = [...(spec.mounts ?? []), { destination: '/sbin/docker-init', type: 'bind', source: initBinary, options: ['bind', 'ro', 'rprivate'] }];
    proc.args = ['/sbin/docker-init', '--', ...(proc.args ?? [])];
  }
  return spec;
}

/** Whether the restart policy starts a container again after it exited with `exitCode`. */
export function shouldRestart(p: RestartPolicy, exitCode: number, restartCount: number, stoppedByUser: boolean): boolean {
  if (stoppedByUser) return false;
  switch (p.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exitCode !== 0 && (p.MaximumRetryCount === 0 || restartCount < p.MaximumRetryCount);
    default:
      return false;
  }
}
