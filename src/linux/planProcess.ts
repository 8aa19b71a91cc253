// The plan's process steps, for the container's init and for a process joining it (exec):
// its environment and executable, limits, privileges, identity, security labels, the seccomp
// filter, the wait for `start` and execve.
import * as path from 'path';
import { constants as osConstants } from 'os';
import { HuskError } from '../errors';
import type { Process, Spec } from '../spec/types';
import { capabilityMask } from './capabilities';
import { PR } from './constants';
import type { HostView } from './plan';
import { type Builder, type PlanStep, q } from './planStep';
import { RLIMITS } from './rlimits';
import type { CompiledSeccomp } from './seccomp';
import { parsePasswd } from '../host/passwd';

const EXDEV = osConstants.errno.EXDEV;

/** native/process.cc refuses a write under /proc that is not on a procfs with EXDEV. */
const notProcfs = (file: string) => ({ [EXDEV]: `${q(file)} is not on a procfs` });

/** Writes a small /proc file (a sysctl, a security label). */
export function writeProcStep(file: string, contents: string, what: string): PlanStep {
  return { op: 'writeFile', path: file, contents, why: notProcfs(file),
    trace: `write(${q(file)}, ${q(contents)})`, what };
}

/** The candidates to try for process.args[0], in order: runc looks it up in the process's PATH. */
export function executableCandidates(arg0: string, env: string[]): string[] {
  if (arg0.includes('/')) return [arg0];
  const pathVar = env.filter((e) => e.startsWith('PATH=')).pop();
  if (!pathVar) return [];
  return pathVar.slice(5).split(':').map((dir) => path.posix.join(dir || '.', arg0));
}

/** The environment the process gets: its own, with HOME added as runc does. */
export function processEnv(process: Process, rootfs: string, host: HostView): string[] {
  const env = [...(process.env ?? [])];
  if (!env.some((e) => e.startsWith('HOME='))) {
    const uid = process.user?.uid ?? 0;
    const entry = parsePasswd(host.readRootfsFile(rootfs, '/etc/passwd')).find((e) => e.uid === uid && e.home);
    env.push(`HOME=${entry?.home ?? '/'}`);
  }
  return env;
}

/**
 * Security modules: applied at execve through /proc/self/attr/...; refused where the host
 * does not have the module (a profile asked for is never dropped silently). `where` prefixes
 * the refusal ("config.json: " for create).
 */
export function securityLabels(b: Builder, process: Process, host: HostView, where: string) {
  if (process.apparmorProfile) {
    const profile = process.apparmorProfile;
    if (!host.securityModules.includes('apparmor')) {
      throw new HuskError(`${where}process.apparmorProfile ${q(profile)}: AppArmor is not enabled on this host`);
    }
    b.add(writeProcStep('/proc/self/attr/apparmor/exec', `exec ${profile}`, `set AppArmor profile ${q(profile)}`));
  }
  if (process.selinuxLabel) {
    const label = process.selinuxLabel;
    if (!host.securityModules.includes('selinux')) {
      throw new HuskError(`${where}process.selinuxLabel ${q(label)}: SELinux is not enabled on this host`);
    }
    b.add(writeProcStep('/proc/self/attr/exec', label, `set SELinux label ${q(label)}`));
  }
}

/** The pty: with `path` (/dev/console) the slave is bound there too. */
export function consoleStep(process: Process, path?: string): PlanStep {
  const uid = process.user?.uid ?? 0;
  const gid = process.user?.gid ?? 0;
  const rows = process.consoleSize?.height ?? 0;
  const cols = process.consoleSize?.width ?? 0;
  const bind = path ? ` mount(pts, ${q(path)}, MS_BIND);` : '';
  return { op: 'console', path, rows, cols, uid, gid,
    trace: `open("/dev/ptmx"); ioctl(TIOCGPTPEER);${bind} ioctl(0, TIOCSCTTY)`, what: 'set up the terminal' };
}

function seccompStep(seccomp: CompiledSeccomp): PlanStep {
  return {
    op: 'seccomp', filter: seccomp.filter, flags: seccomp.flags,
    trace: `seccomp(SECCOMP_SET_MODE_FILTER, ${seccomp.flags}, {${seccomp.filter.length / 8} instructions})`,
    what: 'install the seccomp filter',
  };
}

/** linux.seccomp compiled to BPF, or undefined; a notify rule needs a listener to send to. */
export function compiledSeccomp(spec: Spec, warnings: string[], debug: string[]): CompiledSeccomp | undefined {
  const config = spec.linux?.seccomp;
  if (!config) return undefined;
  // Docker's and Podman's profiles name system calls of other architectures: as runc does,
  // skipping those is only said with --debug.
  // The compiler and its syscall tables are loaded only for a config that has a filter.
  const { compileSeccomp } = require('./seccomp') as typeof import('./seccomp');
  const compiled = compileSeccomp(config, { warn: (w) => (/unknown system call/.test(w) ? debug : warnings).push(w) });
  if (compiled.notify && !config.listenerPath) {
    throw new HuskError('config.json: linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath');
  }
  return compiled;
}

export interface ProcessContext {
  env: string[];
  cwd: string;
  stdio?: [number, number, number];
  preserveFds?: number;
  execFifo?: { path: string; fd: number };
  /** setgroups is denied in the user namespace (an unprivileged id map). */
  denySetgroups: boolean;
  host: HostView;
  warnings: string[];
  seccomp?: CompiledSeccomp;
}

/** The end of every plan, the container's init or a process joining it (exec): limits,
 * privileges and identity in runc's order, then the wait for `start` (if any) and execve. */
export function processSteps(b: Builder, process: Process, ctx: ProcessContext) {
  const { env, cwd, host, warnings } = ctx;
  for (const r of process.rlimits ?? []) {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new HuskError(`config.json: process.rlimits: unknown type ${q(r.type)}`);
    b.add({ op: 'setrlimit', resource, soft: BigInt(r.soft), hard: BigInt(r.hard),
      trace: `prlimit64(0, ${r.type}, {${r.soft}, ${r.hard}})`, what: `set ${r.type}` });
  }
  if (process.noNewPrivileges) {
    b.add({ op: 'prctl', option: PR.PR_SET_NO_NEW_PRIVS, arg2: 1, trace: 'prctl(PR_SET_NO_NEW_PRIVS, 1)',
      what: 'set no_new_privs' });
  }
  if (process.user?.umask !== undefined) {
    b.add({ op: 'umask', mask: process.user.umask,
      trace: `umask(0${process.user.umask.toString(8)})`, what: 'set umask' });
  }
  for (const [target, fd] of (ctx.stdio ?? []).entries()) {
    b.add({ op: 'dup2', oldfd: fd, newfd: target, trace: `dup2(${fd}, ${target})`, what: `set up fd ${target}` });
  }
  // Inherited fds are marked close-on-exec before any seccomp filter goes in: a profile
  // written before Linux 5.9 refuses close_range (CVE-2024-21626 is why none may stay open).
  const first = 3 + (ctx.preserveFds ?? 0);
  b.add({ op: 'closeFds', first, trace: `close_range(${first}, ~0, CLOSE_RANGE_CLOEXEC)`,
    what: 'close inherited file descriptors' });
  // Seccomp as late as it can be: without no_new_privs the filter needs CAP_SYS_ADMIN, so it
  // goes in before the capabilities are dropped; with it, just before waiting for start.
  if (ctx.seccomp && !process.noNewPrivileges) b.add(seccompStep(ctx.seccomp));

  const caps = process.capabilities;
  const mask = (names: string[] | undefined, field: string) =>
    capabilityMask(names, `process.capabilities.${field}`, host.lastCap, (w) => warnings.push(w));
  if (caps) {
    const keep = mask(caps.bounding, 'bounding');
    b.add({ op: 'dropBounding', keep, trace: `prctl(PR_CAPBSET_DROP, ...) keeping 0x${keep.toString(16)}`,
      what: 'drop capabilities from the bounding set' });
    b.add({ op: 'prctl', option: PR.PR_SET_KEEPCAPS, arg2: 1, trace: 'prctl(PR_SET_KEEPCAPS, 1)',
      what: 'keep capabilities across setuid' });
  }
  const user = process.user ?? { uid: 0, gid: 0 };
  const groups = user.additionalGids ?? [];
  if (ctx.denySetgroups) {
    // setgroups is denied in this user namespace (an unprivileged map): nothing to clear.
    if (groups.length) {
      throw new HuskError('config.json: process.user.additionalGids cannot be set: '
        + 'this user namespace denies setgroups (an unprivileged id map)');
    }
  } else {
    b.add({ op: 'setgroups', groups,
      trace: `setgroups(${groups.length}, [${groups.join(', ')}])`, what: 'set supplementary groups' });
  }
  b.add({ op: 'setresgid', gid: user.gid,
    trace: `setresgid(${user.gid}, ${user.gid}, ${user.gid})`, what: `set gid ${user.gid}` });
  b.add({ op: 'setresuid', uid: user.uid,
    trace: `setresuid(${user.uid}, ${user.uid}, ${user.uid})`, what: `set uid ${user.uid}` });
  b.add({ op: 'chdir', path: cwd, trace: `chdir(${q(cwd)})`, what: `change to working directory ${q(cwd)}` });
  if (caps) {
    b.add({ op: 'prctl', option: PR.PR_SET_KEEPCAPS, arg2: 0,
      trace: 'prctl(PR_SET_KEEPCAPS, 0)', what: 'stop keeping capabilities' });
    const effective = mask(caps.effective, 'effective');
    const permitted = mask(caps.permitted, 'permitted');
    const inheritable = mask(caps.inheritable, 'inheritable');
    const ambient = mask(caps.ambient, 'ambient');
    const hex = (n: bigint) => `0x${n.toString(16)}`;
    b.add({ op: 'capset', effective, permitted, inheritable, ambient,
      trace: `capset(effective=${hex(effective)}, permitted=${hex(permitted)}, inheritable=${hex(inheritable)}); `
        + `ambient=${hex(ambient)}`,
      what: 'set capabilities' });
  }
  const candidates = executableCandidates(process.args[0], env);
  b.add({ op: 'findExecutable', candidates, trace: `access(${candidates.map(q).join(' | ')}, X_OK)`,
    what: `exec: ${q(process.args[0])}` });
  if (ctx.seccomp && process.noNewPrivileges) b.add(seccompStep(ctx.seccomp));
  if (ctx.execFifo) {
    b.add({ op: 'waitExecFifo', trace: `open(${q(ctx.execFifo.path)}, O_WRONLY) blocks until start`,
      what: 'wait for start on the exec fifo' });
  }
  b.add({ op: 'exec', argv: process.args, envp: env,
    trace: `execve(${q(process.args[0])}, [${process.args.map(q).join(', ')}], [${env.length} vars])`,
    what: `exec ${q(process.args[0])}` });
}
