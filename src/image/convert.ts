// Image config -> runtime config.json, following the image-spec's conversion rules
// (conversion.md): Entrypoint + Cmd become process.args, Env and WorkingDir are copied,
// User is resolved against the image's own /etc/passwd and /etc/group (an unknown name is an
// error), os/architecture/author/created/StopSignal and the Labels become annotations (a
// Label wins over an implicit annotation of the same key), ExposedPorts becomes the
// org.opencontainers.image.exposedPorts annotation. Volumes are recorded in an annotation;
// they stay in the container's writable layer.
//
// Command-line overrides (docker run's) are applied on top. Everything here is pure: the
// passwd and group files come in as text, so the rules are unit-tested without a rootfs.
import { HuskError } from '../errors';
import { defaultSpec } from '../spec/defaults';
import type { Mount, Resources, Spec, User } from '../spec/types';
import { parseGroup, parsePasswd, type PasswdEntry } from '../host/passwd';
import { ramInBytes } from '../runtime/resources';
import type { ImageConfig } from './manifest';

/** Docker's default capability set for containers (moby's oci/caps/defaults.go). */
export const DOCKER_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const ANNOTATIONS = {
  os: 'org.opencontainers.image.os',
  architecture: 'org.opencontainers.image.architecture',
  variant: 'org.opencontainers.image.variant',
  osVersion: 'org.opencontainers.image.os.version',
  osFeatures: 'org.opencontainers.image.os.features',
  author: 'org.opencontainers.image.author',
  created: 'org.opencontainers.image.created',
  stopSignal: 'org.opencontainers.image.stopSignal',
  exposedPorts: 'org.opencontainers.image.exposedPorts',
  /** Not in the spec: the image's Volumes, comma-separated. */
  volumes: 'io.husk.image.volumes',
  /** Not in the spec: what the bundle was made from. */
  imageName: 'io.husk.image.name',
  imageDigest: 'io.husk.image.digest',
} as const;

// ------------------------------------------------------------------------------ users

const isId = (s: string) => /^[0-9]+$/.test(s);

function toId(s: string, what: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xfffffffe) throw new HuskError(`${what} ${JSON.stringify(s)} is out of range`);
  return n;
}

/**
 * Resolves `user`, `uid`, `user:group`, `uid:gid` (and mixes) against the image's files. A
 * numeric user that has no passwd entry is used as is (gid 0, as Docker does); a name that
 * has none is an error. Supplementary groups come from /etc/group only when the group was not
 * given and the user was named, as conversion.md says.
 */
export function resolveUser(spec: string | undefined, passwdText: string | undefined, groupText: string | undefined): User & { home?: string } {
  const text = (spec ?? '').trim();
  if (!text) {
    const root = parsePasswd(passwdText).find((p) => p.uid === 0);
    return { uid: 0, gid: root?.gid ?? 0, ...(root ? { home: root.home } : {}) };
  }
  const colon = text.indexOf(':');
  const userPart = colon >= 0 ? text.slice(0, colon) : text;
  const groupPart = colon >= 0 ? text.slice(colon + 1) : undefined;
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  let uid: number;
  let gid = 0;
  let home: string | undefined;
  let named: PasswdEntry | undefined;
  if (isId(userPart)) {
    uid = toId(userPart, 'user id');
    const entry = passwd.find((p) => p.uid === uid);
    if (entry) {
      gid = entry.gid;
      home = entry.home;
    }
  } else {
    if (!userPart) throw new HuskError(`user ${JSON.stringify(text)}: the user name is empty`);
    named = passwd.find((p) => p.name === userPart);
    if (!named) {
      throw new HuskError(`user ${JSON.stringify(userPart)} is not in the image's /etc/passwd${passwdText === undefined ? ' (the image has no /etc/passwd)' : ''}`);
    }
    uid = named.uid;
    gid = named.gid;
    home = named.home;
  }
  if (groupPart !== undefined) {
    if (isId(groupPart)) {
      gid = toId(groupPart, 'group id');
    } else {
      const entry = groups.find((g) => g.name === groupPart);
      if (!entry) {
        throw new HuskError(`group ${JSON.stringify(groupPart)} is not in the image's /etc/group${groupText === undefined ? ' (the image has no /etc/group)' : ''}`);
      }
      gid = entry.gid;
    }
    return { uid, gid, ...(home ? { home } : {}) };
  }
  const additionalGids = named ? [...new Set(groups.filter((g) => g.members.includes(named!.name) && g.gid !== gid).map((g) => g.gid))] : [];
  return { uid, gid, ...(additionalGids.length ? { additionalGids } : {}), ...(home ? { home } : {}) };
}

// ------------------------------------------------------------------------------ resources

/** Docker's memory sizes (go-units RAMInBytes, as Docker reads them), more than 0 bytes. */
export function parseMemory(text: string, flag: string): number {
  let bytes: number;
  try {
    bytes = ramInBytes(text.trim());
  } catch {
    throw new HuskError(`${flag} ${JSON.stringify(text)}: expected a size such as 512m or 2g`);
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new HuskError(`${flag} ${JSON.stringify(text)}: must be more than 0 bytes`);
  return bytes;
}

export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  pidsLimit?: string;
  cpus?: string;
}

/** docker run's --memory, --memory-swap, --pids-limit and --cpus as linux.resources. */
export function resourcesFromRunFlags(f: ResourceFlags): Resources | undefined {
  const r: Resources = {};
  if (f.memory !== undefined) {
    const limit = parseMemory(f.memory, '--memory');
    if (limit < 6 * 1024 * 1024) throw new HuskError(`--memory ${JSON.stringify(f.memory)}: the minimum is 6m, as for Docker`);
    r.memory = { limit };
  }
  if (f.memorySwap !== undefined) {
    if (!r.memory) throw new HuskError('--memory-swap needs --memory');
    // -1 means unlimited swap; otherwise it is memory + swap, as in Docker and the runtime spec.
    const swap = f.memorySwap.trim() === '-1' ? -1 : parseMemory(f.memorySwap, '--memory-swap');
    if (swap !== -1 && swap < r.memory.limit!) throw new HuskError(`--memory-swap ${JSON.stringify(f.memorySwap)} must be at least --memory (it counts memory and swap together)`);
    r.memory.swap = swap;
  }
  if (f.pidsLimit !== undefined) {
    const n = Number(f.pidsLimit);
    if (!Number.isInteger(n)) throw new HuskError(`--pids-limit ${JSON.stringify(f.pidsLimit)}: not an integer`);
    // Docker: 0 or -1 means no limit.
    if (n > 0) r.pids = { limit: n };
  }
  if (f.cpus !== undefined) {
    const cpus = Number(f.cpus);
    if (!Number.isFinite(cpus) || cpus <= 0) throw new HuskError(`--cpus ${JSON.stringify(f.cpus)}: expected a positive number such as 1.5`);
    const period = 100_000;
    const quota = Math.round(cpus * period);
    if (quota < 1000) throw new HuskError(`--cpus ${JSON.stringify(f.cpus)}: the minimum is 0.01`);
    r.cpu = { quota, period };
  }
  return Object.keys(r).length ? r : undefined;
}

// ------------------------------------------------------------------------------ the config

export interface ConvertOptions {
  /** Replaces the image's Cmd (docker run IMAGE CMD...). */
  cmd?: string[];
  /** Replaces the image's Entrypoint (and drops its Cmd unless cmd is given), as --entrypoint. */
  entrypoint?: string[];
  /** -e K=V (or K alone, taken from `hostEnv`). */
  env?: string[];
  hostEnv?: NodeJS.ProcessEnv;
  workdir?: string;
  user?: string;
  terminal?: boolean;
  hostname?: string;
  /**
   * 'none' (the default): a network namespace of the container's own (loopback only, unless a
   * hook attaches it to a network); 'host': the host's.
   */
  network?: 'none' | 'host';
  resources?: Resources;
  /** Extra mounts (the container's /etc/hosts, /etc/hostname, /etc/resolv.conf). */
  mounts?: Mount[];
  readonlyRootfs?: boolean;
  annotations?: Record<string, string>;
  /** /etc/passwd and /etc/group of the image's rootfs (undefined: the file does not exist). */
  passwd?: string;
  group?: string;
  rootfsPath?: string;
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Sets or replaces K=V entries, keeping the first position of each key. */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const out = [...base];
  for (const entry of extra) {
    const key = envKey(entry);
    const at = out.findIndex((e) => envKey(e) === key);
    if (at >= 0) out[at] = entry;
    else out.push(entry);
  }
  return out;
}

function userEnv(entries: string[] | undefined, hostEnv: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const e of entries ?? []) {
    if (e.startsWith('=') || e === '') throw new HuskError(`-e ${JSON.stringify(e)}: the variable name is empty`);
    if (e.includes('=')) out.push(e);
    else if (hostEnv[e] !== undefined) out.push(`${e}=${hostEnv[e]}`);
  }
  return out;
}

/** The process args: Entrypoint + Cmd, with docker run's overrides. */
export function processArgs(config: ImageConfig['config'], o: Pick<ConvertOptions, 'cmd' | 'entrypoint'>): string[] {
  const entrypoint = o.entrypoint ?? config?.Entrypoint ?? [];
  const cmd = o.cmd?.length ? o.cmd : o.entrypoint ? [] : config?.Cmd ?? [];
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new HuskError('the image has no Entrypoint or Cmd: give a command after the image name');
  return args;
}

export function annotationsFor(image: ImageConfig): Record<string, string> {
  const a: Record<string, string> = {};
  if (image.os) a[ANNOTATIONS.os] = image.os;
  if (image.architecture) a[ANNOTATIONS.architecture] = image.architecture;
  if (image.variant) a[ANNOTATIONS.variant] = image.variant;
  if (image['os.version']) a[ANNOTATIONS.osVersion] = image['os.version'];
  if (image['os.features']?.length) a[ANNOTATIONS.osFeatures] = image['os.features'].join(',');
  if (image.author) a[ANNOTATIONS.author] = image.author;
  if (image.created) a[ANNOTATIONS.created] = image.created;
  const c = image.config ?? {};
  if (c.StopSignal) a[ANNOTATIONS.stopSignal] = c.StopSignal;
  const ports = Object.keys(c.ExposedPorts ?? {});
  if (ports.length) a[ANNOTATIONS.exposedPorts] = ports.join(',');
  const volumes = Object.keys(c.Volumes ?? {});
  if (volumes.length) a[ANNOTATIONS.volumes] = volumes.join(',');
  // Labels take precedence over the implicit annotations.
  for (const [k, v] of Object.entries(c.Labels ?? {})) if (typeof v === 'string') a[k] = v;
  return a;
}

export function imageToSpec(image: ImageConfig, o: ConvertOptions = {}): Spec {
  const c = image.config ?? {};
  const args = processArgs(c, o);
  const user = resolveUser(o.user ?? c.User, o.passwd, o.group);
  const spec = defaultSpec({ args, terminal: Boolean(o.terminal) });
  const proc = spec.process!;
  const hostname = o.hostname ?? 'husk';
  let env = mergeEnv([], c.Env ?? []);
  if (!env.some((e) => envKey(e) === 'PATH')) env.unshift(DEFAULT_PATH);
  env = mergeEnv(env, [`HOSTNAME=${hostname}`]);
  if (o.terminal && !env.some((e) => envKey(e) === 'TERM')) env.push('TERM=xterm');
  if (user.home && !env.some((e) => envKey(e) === 'HOME')) env.push(`HOME=${user.home}`);
  proc.env = mergeEnv(env, userEnv(o.env, o.hostEnv ?? process.env));
  const cwd = o.workdir ?? (c.WorkingDir || '/');
  if (!cwd.startsWith('/')) throw new HuskError(`working directory ${JSON.stringify(cwd)} is not an absolute path`);
  proc.cwd = cwd;
  proc.user = { uid: user.uid, gid: user.gid, ...(user.additionalGids ? { additionalGids: user.additionalGids } : {}) };
  const caps = () => [...DOCKER_CAPABILITIES];
  proc.capabilities = { bounding: caps(), effective: caps(), permitted: caps() };
  proc.noNewPrivileges = false;
  spec.hostname = hostname;
  spec.root = { path: o.rootfsPath ?? 'rootfs', readonly: Boolean(o.readonlyRootfs) };
  spec.mounts = [...(spec.mounts ?? []), ...(o.mounts ?? [])];
  const linux = spec.linux!;
  linux.namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }];
  if (o.network !== 'host') linux.namespaces.splice(1, 0, { type: 'network' });
  if (o.resources) linux.resources = { ...linux.resources, ...o.resources };
  spec.annotations = { ...annotationsFor(image), ...(o.annotations ?? {}) };
  return spec;
}
