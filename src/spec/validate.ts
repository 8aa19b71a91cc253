// Parses and validates a bundle's config.json before husk relies on any of it.
//
// Every check names the field by its JSON path (`linux.namespaces[2].type`) and the file it
// came from, so a user can find the line to fix. Fields husk does not know are left alone:
// a config written for a newer spec still parses. The cross-field rules at the end are
// runc's (libcontainer/configs/validate and specconv), and keep runc's wording after the
// `config.json:` prefix where runc has one, so its documentation and issues still match.

import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import {
  DEVICE_TYPES,
  HOOK_NAMES,
  IOPRIO_CLASSES,
  NAMESPACE_TYPES,
  RLIMIT_TYPES,
  ROOTFS_PROPAGATIONS,
  SCHEDULER_POLICIES,
  SECCOMP_ACTIONS,
  SECCOMP_FLAGS,
  SECCOMP_OPERATORS,
  TIME_OFFSET_CLOCKS,
  type Process,
  type Spec,
} from './types';

export interface ParseOptions {
  /** `create` and `run` need a process; default true. */
  requireProcess?: boolean;
  /** Told about constructs that are accepted for old bundles but deprecated. */
  onWarning?: (message: string) => void;
}

const UINT32_MAX = 0xffffffff;

/** Reads and validates `<bundleDir>/config.json`. */
export function loadConfig(bundleDir: string, opts: ParseOptions = {}): Spec {
  const file = path.join(bundleDir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new HuskError(`config.json: no such file in bundle ${bundleDir}`, { code, cause: err });
    }
    throw new HuskError(`config.json: cannot read ${file}: ${reason(err)}`, { code, cause: err });
  }
  return parseConfig(text, 'config.json', opts);
}

/** Parses config.json text; `where` prefixes every message. */
export function parseConfig(text: string, where = 'config.json', opts: ParseOptions = {}): Spec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HuskError(`${where}: invalid JSON: ${(err as Error).message}`, { cause: err });
  }
  return validateConfig(value, where, opts);
}

/** Validates an already-parsed config and returns it typed (unknown fields kept). */
export function validateConfig(value: unknown, where = 'config.json', opts: ParseOptions = {}): Spec {
  const c = new Checker(where);
  if (!isObject(value)) c.fail('', 'must be a JSON object');
  const spec = value as Record<string, unknown>;

  c.string('ociVersion', spec.ociVersion, { required: true });

  c.object('root', spec.root, { required: true });
  const root = spec.root as Record<string, unknown>;
  c.string('root.path', root.path, { required: true, nonEmpty: true });
  c.boolean('root.readonly', root.readonly);

  if (spec.process !== undefined || opts.requireProcess !== false) {
    checkProcess(c, spec);
  }

  c.string('hostname', spec.hostname);
  c.string('domainname', spec.domainname);
  c.stringMap('annotations', spec.annotations);

  if (c.array('mounts', spec.mounts)) {
    (spec.mounts as unknown[]).forEach((m, i) => checkMount(c, `mounts[${i}]`, m, opts));
  }

  if (c.object('hooks', spec.hooks)) {
    const hooks = spec.hooks as Record<string, unknown>;
    for (const name of HOOK_NAMES) {
      if (!c.array(`hooks.${name}`, hooks[name])) continue;
      (hooks[name] as unknown[]).forEach((h, i) => checkHook(c, `hooks.${name}[${i}]`, h));
    }
  }

  if (c.object('linux', spec.linux)) checkLinux(c, spec.linux as Record<string, unknown>);
  checkNamespaceRules(c, spec);

  return value as Spec;
}

/** Validates a process on its own (`husk exec --process FILE`); messages name `where`. */
export function validateProcess(value: unknown, where: string): Process {
  const c = new Checker(where);
  checkProcess(c, { process: value });
  return value as Process;
}

function checkProcess(c: Checker, spec: Record<string, unknown>): void {
  c.object('process', spec.process, { required: true });
  const p = spec.process as Record<string, unknown>;

  if (!Array.isArray(p.args) || p.args.length === 0) c.fail('process.args', 'must be a non-empty array');
  c.stringArray('process.args', p.args);
  c.string('process.commandLine', p.commandLine);

  if (c.stringArray('process.env', p.env)) {
    (p.env as string[]).forEach((kv, i) => {
      if (kv.indexOf('=') <= 0) c.fail(`process.env[${i}]`, `${JSON.stringify(kv)} must have the form KEY=value`);
      if (kv.includes('\0')) c.fail(`process.env[${i}]`, 'must not contain a NUL byte');
    });
  }

  c.string('process.cwd', p.cwd, { required: true, nonEmpty: true });
  c.absolute('process.cwd', p.cwd as string);

  c.boolean('process.terminal', p.terminal);
  if (c.object('process.consoleSize', p.consoleSize)) {
    const box = p.consoleSize as Record<string, unknown>;
    c.uint('process.consoleSize.height', box.height, { required: true, max: 0xffff });
    c.uint('process.consoleSize.width', box.width, { required: true, max: 0xffff });
  }

  // A missing user (or uid/gid) is root, as runc reads it: Go's zero value.
  if (p.user === undefined) p.user = { uid: 0, gid: 0 };
  c.object('process.user', p.user);
  const user = p.user as Record<string, unknown>;
  if (user.uid === undefined) user.uid = 0;
  if (user.gid === undefined) user.gid = 0;
  c.uint('process.user.uid', user.uid, { max: UINT32_MAX });
  c.uint('process.user.gid', user.gid, { max: UINT32_MAX });
  c.uint('process.user.umask', user.umask, { max: 0o777 });
  if (c.array('process.user.additionalGids', user.additionalGids)) {
    (user.additionalGids as unknown[]).forEach((g, i) =>
      c.uint(`process.user.additionalGids[${i}]`, g, { required: true, max: UINT32_MAX }),
    );
  }
  c.string('process.user.username', user.username);

  if (c.object('process.capabilities', p.capabilities)) {
    const caps = p.capabilities as Record<string, unknown>;
    for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient']) {
      c.stringArray(`process.capabilities.${set}`, caps[set]);
    }
  }

  if (c.array('process.rlimits', p.rlimits)) {
    (p.rlimits as unknown[]).forEach((r, i) => {
      const at = `process.rlimits[${i}]`;
      c.object(at, r, { required: true });
      const rl = r as Record<string, unknown>;
      c.string(`${at}.type`, rl.type, { required: true });
      if (!(RLIMIT_TYPES as readonly string[]).includes(rl.type as string)) {
        c.fail(`${at}.type`, `${JSON.stringify(rl.type)} is not an rlimit type (one of ${RLIMIT_TYPES.join(', ')})`);
      }
      c.uint(`${at}.soft`, rl.soft, { required: true });
      c.uint(`${at}.hard`, rl.hard, { required: true });
      if ((rl.soft as number) > (rl.hard as number)) {
        c.fail(at, `soft limit ${rl.soft} is greater than hard limit ${rl.hard}`);
      }
    });
  }

  c.boolean('process.noNewPrivileges', p.noNewPrivileges);
  c.string('process.apparmorProfile', p.apparmorProfile);
  c.string('process.selinuxLabel', p.selinuxLabel);
  c.int('process.oomScoreAdj', p.oomScoreAdj, { min: -1000, max: 1000 });

  if (c.object('process.scheduler', p.scheduler)) checkScheduler(c, p.scheduler as Record<string, unknown>);

  if (c.object('process.ioPriority', p.ioPriority)) {
    const io = p.ioPriority as Record<string, unknown>;
    c.oneOf('process.ioPriority.class', io.class, IOPRIO_CLASSES, { required: true });
    c.int('process.ioPriority.priority', io.priority, { required: true, min: 0, max: 7 });
  }
}

// sched_setattr(2) limits, with runc's rules on which fields go with which policy.
function checkScheduler(c: Checker, s: Record<string, unknown>): void {
  const at = 'process.scheduler';
  c.oneOf(`${at}.policy`, s.policy, SCHEDULER_POLICIES, { required: true });
  c.int(`${at}.nice`, s.nice, { min: -20, max: 19 });
  c.int(`${at}.priority`, s.priority, { min: 0, max: 99 });
  c.stringArray(`${at}.flags`, s.flags);
  for (const f of ['runtime', 'deadline', 'period']) c.uint(`${at}.${f}`, s[f]);
  if (s.priority && s.policy !== 'SCHED_FIFO' && s.policy !== 'SCHED_RR') {
    c.fail(`${at}.priority`, 'can only be specified for SCHED_FIFO or SCHED_RR policy');
  }
  if (s.policy !== 'SCHED_DEADLINE' && (s.runtime || s.deadline || s.period)) {
    c.fail(at, 'runtime/deadline/period can only be specified for SCHED_DEADLINE policy');
  }
}

function checkMount(c: Checker, at: string, value: unknown, opts: ParseOptions): void {
  c.object(at, value, { required: true });
  const m = value as Record<string, unknown>;
  c.string(`${at}.destination`, m.destination, { required: true, nonEmpty: true });
  const dest = m.destination as string;
  if (!dest.startsWith('/')) {
    // runc accepts this for old bundles with a warning and joins the path to "/".
    opts.onWarning?.(
      `${c.where}: ${at}.destination ${JSON.stringify(dest)} is relative: deprecated, taken as relative to /`,
    );
  }
  c.string(`${at}.type`, m.type);
  c.string(`${at}.source`, m.source);
  c.stringArray(`${at}.options`, m.options);
  c.idMappings(`${at}.uidMappings`, m.uidMappings);
  c.idMappings(`${at}.gidMappings`, m.gidMappings);
}

function checkHook(c: Checker, at: string, value: unknown): void {
  c.object(at, value, { required: true });
  const h = value as Record<string, unknown>;
  c.string(`${at}.path`, h.path, { required: true, nonEmpty: true });
  c.absolute(`${at}.path`, h.path as string);
  c.stringArray(`${at}.args`, h.args);
  c.stringArray(`${at}.env`, h.env);
  if (h.timeout !== undefined && !(Number.isInteger(h.timeout) && (h.timeout as number) > 0)) {
    c.fail(`${at}.timeout`, 'must be a positive integer');
  }
}

function checkLinux(c: Checker, linux: Record<string, unknown>): void {
  if (c.array('linux.namespaces', linux.namespaces)) {
    const seen = new Map<string, number>();
    (linux.namespaces as unknown[]).forEach((n, i) => {
      const at = `linux.namespaces[${i}]`;
      c.object(at, n, { required: true });
      const ns = n as Record<string, unknown>;
      c.string(`${at}.type`, ns.type, { required: true });
      if (!(NAMESPACE_TYPES as readonly string[]).includes(ns.type as string)) {
        c.fail(`${at}.type`, `${JSON.stringify(ns.type)} is not a namespace type`);
      }
      const first = seen.get(ns.type as string);
      if (first !== undefined) {
        c.fail(`${at}.type`, `${JSON.stringify(ns.type)} is a duplicate of linux.namespaces[${first}]`);
      }
      seen.set(ns.type as string, i);
      c.string(`${at}.path`, ns.path);
      if (ns.path) c.absolute(`${at}.path`, ns.path as string);
    });
  }

  c.idMappings('linux.uidMappings', linux.uidMappings);
  c.idMappings('linux.gidMappings', linux.gidMappings);

  if (c.array('linux.devices', linux.devices)) {
    (linux.devices as unknown[]).forEach((d, i) => checkDevice(c, `linux.devices[${i}]`, d));
  }

  c.string('linux.cgroupsPath', linux.cgroupsPath);
  if (c.object('linux.resources', linux.resources)) checkResources(c, linux.resources as Record<string, unknown>);
  c.oneOf('linux.rootfsPropagation', linux.rootfsPropagation, ROOTFS_PROPAGATIONS);

  for (const key of ['maskedPaths', 'readonlyPaths']) {
    if (c.stringArray(`linux.${key}`, linux[key])) {
      (linux[key] as string[]).forEach((p, i) => c.absolute(`linux.${key}[${i}]`, p));
    }
  }

  c.string('linux.mountLabel', linux.mountLabel);
  c.stringMap('linux.sysctl', linux.sysctl);
  if (c.object('linux.seccomp', linux.seccomp)) checkSeccomp(c, linux.seccomp as Record<string, unknown>);

  if (c.object('linux.personality', linux.personality)) {
    const p = linux.personality as Record<string, unknown>;
    c.oneOf('linux.personality.domain', p.domain, ['LINUX', 'LINUX32'], { required: true });
    c.stringArray('linux.personality.flags', p.flags);
  }

  if (c.object('linux.intelRdt', linux.intelRdt)) {
    const rdt = linux.intelRdt as Record<string, unknown>;
    for (const key of ['closID', 'schemata', 'l3CacheSchema', 'memBwSchema']) c.string(`linux.intelRdt.${key}`, rdt[key]);
    c.boolean('linux.intelRdt.enableCMT', rdt.enableCMT);
    c.boolean('linux.intelRdt.enableMBM', rdt.enableMBM);
    const clos = rdt.closID as string | undefined;
    if (clos === '.' || clos === '..' || clos?.includes('/')) {
      c.fail('linux.intelRdt.closID', `${JSON.stringify(clos)} must be a plain directory name`);
    }
  }

  if (c.object('linux.timeOffsets', linux.timeOffsets)) {
    for (const [clock, off] of Object.entries(linux.timeOffsets as Record<string, unknown>)) {
      const at = `linux.timeOffsets.${clock}`;
      if (!(TIME_OFFSET_CLOCKS as readonly string[]).includes(clock)) {
        c.fail('linux.timeOffsets', `${JSON.stringify(clock)} is not a clock (one of ${TIME_OFFSET_CLOCKS.join(', ')})`);
      }
      c.object(at, off, { required: true });
      const o = off as Record<string, unknown>;
      c.int(`${at}.secs`, o.secs);
      c.int(`${at}.nanosecs`, o.nanosecs, { min: 0, max: 999_999_999 });
    }
  }
}

function checkDevice(c: Checker, at: string, value: unknown): void {
  c.object(at, value, { required: true });
  const d = value as Record<string, unknown>;
  c.oneOf(`${at}.type`, d.type, DEVICE_TYPES, { required: true });
  c.string(`${at}.path`, d.path, { required: true, nonEmpty: true });
  c.absolute(`${at}.path`, d.path as string);
  // Normalised first, so "/dev/../etc/shadow" is not under /dev.
  if (!path.posix.normalize(d.path as string).startsWith('/dev/')) {
    c.fail(`${at}.path`, `${JSON.stringify(d.path)} must be under /dev`);
  }
  const needsNumbers = d.type !== 'p';
  c.uint(`${at}.major`, d.major, { required: needsNumbers });
  c.uint(`${at}.minor`, d.minor, { required: needsNumbers });
  // Go's os.FileMode: permission bits plus Go's own type bits, which runc strips.
  c.uint(`${at}.fileMode`, d.fileMode, { max: UINT32_MAX });
  c.uint(`${at}.uid`, d.uid, { max: UINT32_MAX });
  c.uint(`${at}.gid`, d.gid, { max: UINT32_MAX });
}

// Cgroup resources: types only. What the values mean is the cgroup manager's business.
function checkResources(c: Checker, r: Record<string, unknown>): void {
  const at = 'linux.resources';
  if (c.array(`${at}.devices`, r.devices)) {
    (r.devices as unknown[]).forEach((d, i) => {
      const dat = `${at}.devices[${i}]`;
      c.object(dat, d, { required: true });
      const rule = d as Record<string, unknown>;
      c.boolean(`${dat}.allow`, rule.allow, { required: true });
      c.oneOf(`${dat}.type`, rule.type, ['a', 'c', 'b']);
      c.int(`${dat}.major`, rule.major);
      c.int(`${dat}.minor`, rule.minor);
      c.string(`${dat}.access`, rule.access);
      if (typeof rule.access === 'string' && !/^[rwm]*$/.test(rule.access)) {
        c.fail(`${dat}.access`, `${JSON.stringify(rule.access)} must be made of r, w and m`);
      }
    });
  }
  if (c.object(`${at}.memory`, r.memory)) {
    const m = r.memory as Record<string, unknown>;
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']) c.int(`${at}.memory.${k}`, m[k]);
    c.uint(`${at}.memory.swappiness`, m.swappiness);
    for (const k of ['disableOOMKiller', 'useHierarchy', 'checkBeforeUpdate']) c.boolean(`${at}.memory.${k}`, m[k]);
  }
  if (c.object(`${at}.cpu`, r.cpu)) {
    const cpu = r.cpu as Record<string, unknown>;
    for (const k of ['shares', 'burst', 'period', 'realtimePeriod']) c.uint(`${at}.cpu.${k}`, cpu[k]);
    for (const k of ['quota', 'realtimeRuntime', 'idle']) c.int(`${at}.cpu.${k}`, cpu[k]);
    c.string(`${at}.cpu.cpus`, cpu.cpus);
    c.string(`${at}.cpu.mems`, cpu.mems);
  }
  if (c.object(`${at}.pids`, r.pids)) c.int(`${at}.pids.limit`, (r.pids as Record<string, unknown>).limit);
  c.object(`${at}.blockIO`, r.blockIO);
  if (c.array(`${at}.hugepageLimits`, r.hugepageLimits)) {
    (r.hugepageLimits as unknown[]).forEach((h, i) => {
      c.object(`${at}.hugepageLimits[${i}]`, h, { required: true });
      const hp = h as Record<string, unknown>;
      c.string(`${at}.hugepageLimits[${i}].pageSize`, hp.pageSize, { required: true });
      c.uint(`${at}.hugepageLimits[${i}].limit`, hp.limit, { required: true });
    });
  }
  c.object(`${at}.network`, r.network);
  c.object(`${at}.rdma`, r.rdma);
  c.stringMap(`${at}.unified`, r.unified);
}

function checkSeccomp(c: Checker, s: Record<string, unknown>): void {
  const at = 'linux.seccomp';
  c.oneOf(`${at}.defaultAction`, s.defaultAction, SECCOMP_ACTIONS, { required: true });
  c.uint(`${at}.defaultErrnoRet`, s.defaultErrnoRet);
  if (c.stringArray(`${at}.architectures`, s.architectures)) {
    (s.architectures as string[]).forEach((a, i) => {
      if (!a.startsWith('SCMP_ARCH_')) c.fail(`${at}.architectures[${i}]`, `${JSON.stringify(a)} is not an SCMP_ARCH_* name`);
    });
  }
  if (c.array(`${at}.flags`, s.flags)) {
    (s.flags as unknown[]).forEach((f, i) => c.oneOf(`${at}.flags[${i}]`, f, SECCOMP_FLAGS, { required: true }));
  }
  c.string(`${at}.listenerPath`, s.listenerPath);
  c.string(`${at}.listenerMetadata`, s.listenerMetadata);
  if (!c.array(`${at}.syscalls`, s.syscalls)) return;
  (s.syscalls as unknown[]).forEach((sc, i) => {
    const sat = `${at}.syscalls[${i}]`;
    c.object(sat, sc, { required: true });
    const rule = sc as Record<string, unknown>;
    if (!Array.isArray(rule.names) || rule.names.length === 0) c.fail(`${sat}.names`, 'must be a non-empty array');
    c.stringArray(`${sat}.names`, rule.names);
    c.oneOf(`${sat}.action`, rule.action, SECCOMP_ACTIONS, { required: true });
    c.uint(`${sat}.errnoRet`, rule.errnoRet);
    if (!c.array(`${sat}.args`, rule.args)) return;
    (rule.args as unknown[]).forEach((a, j) => {
      const aat = `${sat}.args[${j}]`;
      c.object(aat, a, { required: true });
      const arg = a as Record<string, unknown>;
      c.uint(`${aat}.index`, arg.index, { required: true, max: 5 });
      c.uint(`${aat}.value`, arg.value, { required: true });
      c.uint(`${aat}.valueTwo`, arg.valueTwo);
      c.oneOf(`${aat}.op`, arg.op, SECCOMP_OPERATORS, { required: true });
    });
  });
}

// Rules that tie fields to namespaces. A namespace counts whether it is new or joined by
// path, as in runc's `Namespaces.Contains`.
function checkNamespaceRules(c: Checker, spec: Record<string, unknown>): void {
  const linux = (spec.linux ?? {}) as Record<string, unknown>;
  const namespaces = (linux.namespaces ?? []) as { type: string; path?: string }[];
  const has = (type: string) => namespaces.some((n) => n.type === type);
  const nonEmpty = (v: unknown) => Array.isArray(v) && v.length > 0;

  if (spec.hostname && !has('uts')) c.fail('', 'unable to set hostname without a private UTS namespace');
  if (spec.domainname && !has('uts')) c.fail('', 'unable to set domainname without a private UTS namespace');
  if ((nonEmpty(linux.maskedPaths) || nonEmpty(linux.readonlyPaths)) && !has('mount')) {
    c.fail('', 'unable to restrict sys entries without a private MNT namespace');
  }

  const userns = namespaces.find((n) => n.type === 'user');
  if (!userns && (nonEmpty(linux.uidMappings) || nonEmpty(linux.gidMappings))) {
    c.fail('', "user namespace mappings specified, but USER namespace isn't enabled in the config");
  }
  // A joined user namespace brings its own mappings (runc 1.2 reads them from the path).
  if (userns && !userns.path) {
    if (!nonEmpty(linux.uidMappings)) c.fail('', 'user namespaces enabled, but no uid mappings found');
    if (!nonEmpty(linux.gidMappings)) c.fail('', 'user namespaces enabled, but no gid mappings found');
  }
  if (linux.timeOffsets !== undefined && !has('time')) {
    c.fail('', "time namespace offsets specified, but time namespace isn't enabled in the config");
  }

  checkSysctlNamespaces(c, (linux.sysctl ?? {}) as Record<string, string>, has);
}

// /proc/sys is only partly namespaced: a sysctl is allowed when the namespace that owns it
// is the container's own. A joined network namespace is accepted here; whether it is the
// host's can only be seen at create time.
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

function checkSysctlNamespaces(c: Checker, sysctl: Record<string, string>, has: (t: string) => boolean): void {
  for (const raw of Object.keys(sysctl)) {
    const name = sysctlDotted(raw);
    if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) {
      if (!has('ipc')) c.fail('', `sysctl ${JSON.stringify(name)} is not allowed in the hosts ipc namespace`);
      continue;
    }
    if (name.startsWith('net.')) {
      if (!has('network')) c.fail('', `sysctl ${JSON.stringify(name)} not allowed in host network namespace`);
      continue;
    }
    if (has('uts') && name === 'kernel.domainname') continue;
    if (has('uts') && name === 'kernel.hostname') {
      c.fail('', `sysctl ${JSON.stringify(name)} is not allowed as it conflicts with the OCI "hostname" field`);
    }
    c.fail('', `sysctl ${JSON.stringify(name)} is not in a separate kernel namespace`);
  }
}

/** sysctl(8) also accepts "/" as the separator; when it comes first, "." and "/" swap. */
export function sysctlDotted(name: string): string {
  const first = name.search(/[./]/);
  if (first === -1 || name[first] === '.') return name;
  return name.replace(/[./]/g, (ch) => (ch === '.' ? '/' : '.'));
}

// ---------------------------------------------------------------------------------------
// Small typed checks. Each returns true when the value is present (and so worth descending
// into), false when it is absent and optional, and throws otherwise.

interface Presence {
  required?: boolean;
}

class Checker {
  constructor(readonly where: string) {}

  fail(at: string, message: string): never {
    throw new HuskError(at ? `${this.where}: ${at} ${message}` : `${this.where}: ${message}`);
  }

  private present(at: string, v: unknown, o: Presence): boolean {
    if (v !== undefined) return true;
    if (o.required) this.fail(at, 'is required');
    return false;
  }

  object(at: string, v: unknown, o: Presence = {}): boolean {
    if (!this.present(at, v, o)) return false;
    if (!isObject(v)) this.fail(at, 'must be an object');
    return true;
  }

  array(at: string, v: unknown, o: Presence = {}): boolean {
    if (!this.present(at, v, o)) return false;
    if (!Array.isArray(v)) this.fail(at, 'must be an array');
    return true;
  }

  string(at: string, v: unknown, o: Presence & { nonEmpty?: boolean } = {}): boolean {
    if (!this.present(at, v, o)) return false;
    if (typeof v !== 'string') this.fail(at, 'must be a string');
    if (o.nonEmpty && v === '') this.fail(at, 'must be a non-empty string');
    return true;
  }

  boolean(at: string, v: unknown, o: Presence = {}): boolean {
    if (!this.present(at, v, o)) return false;
    if (typeof v !== 'boolean') this.fail(at, 'must be a boolean');
    return true;
  }

  stringArray(at: string, v: unknown, o: Presence = {}): boolean {
    if (!this.array(at, v, o)) return false;
    (v as unknown[]).forEach((s, i) => {
      if (typeof s !== 'string') this.fail(`${at}[${i}]`, 'must be a string');
    });
    return true;
  }

  stringMap(at: string, v: unknown, o: Presence = {}): boolean {
    if (!this.object(at, v, o)) return false;
    for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
      if (typeof s !== 'string') this.fail(`${at}[${JSON.stringify(k)}]`, 'must be a string');
    }
    return true;
  }

  /** A non-negative integer (uint in the spec), at most `max`. */
  uint(at: string, v: unknown, o: Presence & { max?: number } = {}): boolean {
    if (!this.present(at, v, o)) return false;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(at, 'must be a non-negative integer');
    if (o.max !== undefined && v > o.max) this.fail(at, `must be at most ${o.max}`);
    return true;
  }

  int(at: string, v: unknown, o: Presence & { min?: number; max?: number } = {}): boolean {
    if (!this.present(at, v, o)) return false;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(at, 'must be an integer');
    if ((o.min !== undefined && v < o.min) || (o.max !== undefined && v > o.max)) {
      this.fail(at, `must be between ${o.min} and ${o.max}`);
    }
    return true;
  }

  oneOf(at: string, v: unknown, allowed: readonly string[], o: Presence = {}): boolean {
    if (!this.string(at, v, o)) return false;
    if (!allowed.includes(v as string)) {
      this.fail(at, `${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
    }
    return true;
  }

  absolute(at: string, v: string): void {
    if (!v.startsWith('/')) this.fail(at, 'must be an absolute path');
  }

  idMappings(at: string, v: unknown): boolean {
    if (!this.array(at, v)) return false;
    (v as unknown[]).forEach((m, i) => {
      const mat = `${at}[${i}]`;
      this.object(mat, m, { required: true });
      const map = m as Record<string, unknown>;
      this.uint(`${mat}.containerID`, map.containerID, { required: true, max: UINT32_MAX });
      this.uint(`${mat}.hostID`, map.hostID, { required: true, max: UINT32_MAX });
      this.uint(`${mat}.size`, map.size, { required: true, max: UINT32_MAX });
      if (map.size === 0) this.fail(`${mat}.size`, 'must be a positive integer');
    });
    return true;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
