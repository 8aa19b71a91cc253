// config.json validation: what passes (runc's own `runc spec` output, unknown fields) and
// the exact message for each thing that does not.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { HuskError } from '../../src/errors';
import { loadConfig, parseConfig, sysctlDotted, validateConfig } from '../../src/spec/validate';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8');

/** runc's default config, parsed fresh each time so a test may change it. */
const base = (): any => JSON.parse(fixture('runc-spec.json'));

/** The message validation throws for `config`, or undefined if it passes. */
function errorOf(config: unknown, opts = {}): string | undefined {
  try {
    validateConfig(config, 'config.json', opts);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(HuskError);
    return (err as Error).message;
  }
}

/** Applies `edit` to runc's default config and returns the resulting message. */
const after = (edit: (c: any) => void) => {
  const c = base();
  edit(c);
  return errorOf(c);
};

describe('valid configs', () => {
  it('accepts what `runc spec` and `runc spec --rootless` write', () => {
    expect(parseConfig(fixture('runc-spec.json')).process!.args).toEqual(['sh']);
    expect(parseConfig(fixture('runc-spec-rootless.json')).linux!.uidMappings).toHaveLength(1);
  });

  it('keeps unknown fields, at any level', () => {
    const c = base();
    c.futureField = { x: 1 };
    c.process.futureFlag = true;
    c.linux.namespaces[0].futureOption = 'y';
    const spec = validateConfig(c) as any;
    expect(spec.futureField).toEqual({ x: 1 });
    expect(spec.process.futureFlag).toBe(true);
  });

  it('reads a missing user, uid or gid as root, as runc does', () => {
    const c = base();
    delete c.process.user;
    expect(validateConfig(c).process!.user).toEqual({ uid: 0, gid: 0 });
    const d = base();
    d.process.user = { gid: 5 };
    expect(validateConfig(d).process!.user).toEqual({ uid: 0, gid: 5 });
  });

  it('does not need a process unless asked to', () => {
    const c = base();
    delete c.process;
    expect(errorOf(c)).toBe('config.json: process is required');
    expect(errorOf(c, { requireProcess: false })).toBeUndefined();
  });

  it('accepts RLIM_INFINITY, which JSON.parse rounds up past 2^64', () => {
    const text = fixture('runc-spec.json').replace('"hard": 1024', '"hard": 18446744073709551615');
    expect(parseConfig(text).process!.rlimits![0].hard).toBeGreaterThanOrEqual(2 ** 64);
  });

  it('accepts a relative mount destination with a warning, like runc', () => {
    const warnings: string[] = [];
    const c = base();
    c.mounts[0].destination = 'proc';
    validateConfig(c, 'config.json', { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual(['config.json: mounts[0].destination "proc" is relative: deprecated, taken as relative to /']);
  });

  it('accepts a joined uts namespace for the hostname, and sysctls in their own namespaces', () => {
    expect(
      after((c) => {
        c.linux.namespaces[3] = { type: 'uts', path: '/proc/1/ns/uts' };
        c.linux.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '1', 'kernel.domainname': 'x' };
      }),
    ).toBeUndefined();
  });

  it('accepts a user namespace joined by path without mappings', () => {
    expect(after((c) => c.linux.namespaces.push({ type: 'user', path: '/proc/1/ns/user' }))).toBeUndefined();
  });
});

describe('file and JSON errors', () => {
  it('names the bundle when config.json is missing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-bundle-'));
    try {
      expect(() => loadConfig(dir)).toThrow(`config.json: no such file in bundle ${dir}`);
      fs.writeFileSync(path.join(dir, 'config.json'), fixture('runc-spec.json'));
      expect(loadConfig(dir).hostname).toBe('runc');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports malformed JSON with the parser message', () => {
    expect(() => parseConfig('{"ociVersion": ')).toThrow(/^config\.json: invalid JSON: Unexpected end of JSON input$/);
  });

  it('uses the given file name', () => {
    expect(() => parseConfig('[]', 'bundle/config.json')).toThrow('bundle/config.json: must be a JSON object');
  });
});

describe('field errors', () => {
  const cases: [string, (c: any) => void, string][] = [
    ['ociVersion missing', (c) => delete c.ociVersion, 'ociVersion is required'],
    ['ociVersion not a string', (c) => (c.ociVersion = 1), 'ociVersion must be a string'],
    ['root missing', (c) => delete c.root, 'root is required'],
    ['root.path empty', (c) => (c.root.path = ''), 'root.path must be a non-empty string'],
    ['root.readonly not boolean', (c) => (c.root.readonly = 'yes'), 'root.readonly must be a boolean'],
    ['args empty', (c) => (c.process.args = []), 'process.args must be a non-empty array'],
    ['args missing', (c) => delete c.process.args, 'process.args must be a non-empty array'],
    ['args not strings', (c) => (c.process.args = ['sh', 1]), 'process.args[1] must be a string'],
    ['env without =', (c) => c.process.env.push('FOO'), 'process.env[2] "FOO" must have the form KEY=value'],
    ['env with empty name', (c) => c.process.env.push('=x'), 'process.env[2] "=x" must have the form KEY=value'],
    ['cwd missing', (c) => delete c.process.cwd, 'process.cwd is required'],
    ['cwd relative', (c) => (c.process.cwd = 'home'), 'process.cwd must be an absolute path'],
    ['uid negative', (c) => (c.process.user.uid = -1), 'process.user.uid must be a non-negative integer'],
    ['gid fractional', (c) => (c.process.user.gid = 1.5), 'process.user.gid must be a non-negative integer'],
    ['uid above uint32', (c) => (c.process.user.uid = 2 ** 32), 'process.user.uid must be at most 4294967295'],
    ['umask too big', (c) => (c.process.user.umask = 0o1000), 'process.user.umask must be at most 511'],
    ['additionalGids', (c) => (c.process.user.additionalGids = [1, 'x']), 'process.user.additionalGids[1] must be a non-negative integer'],
    ['terminal not boolean', (c) => (c.process.terminal = 1), 'process.terminal must be a boolean'],
    ['consoleSize width', (c) => (c.process.consoleSize = { height: 24 }), 'process.consoleSize.width is required'],
    [
      'rlimit type unknown',
      (c) => (c.process.rlimits[0].type = 'RLIMIT_FOO'),
      'process.rlimits[0].type "RLIMIT_FOO" is not an rlimit type (one of RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, RLIMIT_RTTIME, RLIMIT_SIGPENDING, RLIMIT_STACK)',
    ],
    ['rlimit soft negative', (c) => (c.process.rlimits[0].soft = -1), 'process.rlimits[0].soft must be a non-negative integer'],
    ['rlimit hard missing', (c) => delete c.process.rlimits[0].hard, 'process.rlimits[0].hard is required'],
    ['rlimit soft > hard', (c) => (c.process.rlimits[0].soft = 2048), 'process.rlimits[0] soft limit 2048 is greater than hard limit 1024'],
    ['capabilities not strings', (c) => (c.process.capabilities.bounding = [7]), 'process.capabilities.bounding[0] must be a string'],
    ['capabilities set not array', (c) => (c.process.capabilities.ambient = 'CAP_KILL'), 'process.capabilities.ambient must be an array'],
    ['oomScoreAdj range', (c) => (c.process.oomScoreAdj = 1001), 'process.oomScoreAdj must be between -1000 and 1000'],
    ['oomScoreAdj integer', (c) => (c.process.oomScoreAdj = 'x'), 'process.oomScoreAdj must be an integer'],
    ['scheduler policy', (c) => (c.process.scheduler = { policy: 'SCHED_FAST' }), 'process.scheduler.policy "SCHED_FAST" is not one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE'],
    ['scheduler priority', (c) => (c.process.scheduler = { policy: 'SCHED_OTHER', priority: 5 }), 'process.scheduler.priority can only be specified for SCHED_FIFO or SCHED_RR policy'],
    ['ioPriority class', (c) => (c.process.ioPriority = { class: 'IOPRIO_CLASS_X', priority: 1 }), 'process.ioPriority.class "IOPRIO_CLASS_X" is not one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE'],
    ['hostname not string', (c) => (c.hostname = 5), 'hostname must be a string'],
    ['annotations values', (c) => (c.annotations = { a: 1 }), 'annotations["a"] must be a string'],
    ['mounts not array', (c) => (c.mounts = {}), 'mounts must be an array'],
    ['mount destination missing', (c) => delete c.mounts[3].destination, 'mounts[3].destination is required'],
    ['mount options not strings', (c) => (c.mounts[1].options = ['ro', true]), 'mounts[1].options[1] must be a string'],
    ['mount type not string', (c) => (c.mounts[2].type = 1), 'mounts[2].type must be a string'],
    ['mount idmap size 0', (c) => (c.mounts[0].uidMappings = [{ containerID: 0, hostID: 1000, size: 0 }]), 'mounts[0].uidMappings[0].size must be a positive integer'],
    ['hook path relative', (c) => (c.hooks = { prestart: [{ path: 'bin/hook' }] }), 'hooks.prestart[0].path must be an absolute path'],
    ['hook timeout zero', (c) => (c.hooks = { poststop: [{ path: '/bin/true', timeout: 0 }] }), 'hooks.poststop[0].timeout must be a positive integer'],
    ['hook args', (c) => (c.hooks = { createRuntime: [{ path: '/bin/true', args: 'x' }] }), 'hooks.createRuntime[0].args must be an array'],
    ['hooks kind not array', (c) => (c.hooks = { poststart: {} }), 'hooks.poststart must be an array'],
    ['namespace type', (c) => (c.linux.namespaces[2].type = 'foo'), 'linux.namespaces[2].type "foo" is not a namespace type'],
    ['namespace duplicate', (c) => c.linux.namespaces.push({ type: 'pid' }), 'linux.namespaces[5].type "pid" is a duplicate of linux.namespaces[0]'],
    ['namespace path relative', (c) => (c.linux.namespaces[1].path = 'netns'), 'linux.namespaces[1].path must be an absolute path'],
    ['device type', (c) => (c.linux.devices = [{ type: 'x', path: '/dev/x', major: 1, minor: 1 }]), 'linux.devices[0].type "x" is not one of c, b, u, p'],
    ['device path outside /dev', (c) => (c.linux.devices = [{ type: 'c', path: '/dev/../etc/shadow', major: 1, minor: 1 }]), 'linux.devices[0].path "/dev/../etc/shadow" must be under /dev'],
    ['device path relative', (c) => (c.linux.devices = [{ type: 'c', path: 'dev/null', major: 1, minor: 3 }]), 'linux.devices[0].path must be an absolute path'],
    ['device major missing', (c) => (c.linux.devices = [{ type: 'b', path: '/dev/sda', minor: 0 }]), 'linux.devices[0].major is required'],
    ['uidMappings field', (c) => (c.linux.uidMappings = [{ containerID: 0, size: 1 }]), 'linux.uidMappings[0].hostID is required'],
    ['maskedPaths relative', (c) => (c.linux.maskedPaths[1] = 'proc/kcore'), 'linux.maskedPaths[1] must be an absolute path'],
    ['readonlyPaths not strings', (c) => (c.linux.readonlyPaths = [1]), 'linux.readonlyPaths[0] must be a string'],
    ['rootfsPropagation', (c) => (c.linux.rootfsPropagation = 'recursive'), 'linux.rootfsPropagation "recursive" is not one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable'],
    ['sysctl value', (c) => (c.linux.sysctl = { 'net.ipv4.ip_forward': 1 }), 'linux.sysctl["net.ipv4.ip_forward"] must be a string'],
    ['seccomp defaultAction', (c) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_NOPE' }), 'linux.seccomp.defaultAction "SCMP_ACT_NOPE" is not one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY'],
    ['seccomp names empty', (c) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }), 'linux.seccomp.syscalls[0].names must be a non-empty array'],
    ['seccomp arg index', (c) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }), 'linux.seccomp.syscalls[0].args[0].index must be at most 5'],
    ['seccomp arch', (c) => (c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x86_64'] }), 'linux.seccomp.architectures[0] "x86_64" is not an SCMP_ARCH_* name'],
    ['resources device access', (c) => (c.linux.resources.devices[0].access = 'rwx'), 'linux.resources.devices[0].access "rwx" must be made of r, w and m'],
    ['resources device allow', (c) => delete c.linux.resources.devices[0].allow, 'linux.resources.devices[0].allow is required'],
    ['resources pids', (c) => (c.linux.resources.pids = { limit: 'many' }), 'linux.resources.pids.limit must be an integer'],
    ['personality', (c) => (c.linux.personality = { domain: 'BSD' }), 'linux.personality.domain "BSD" is not one of LINUX, LINUX32'],
    ['timeOffsets clock', (c) => { c.linux.namespaces.push({ type: 'time' }); c.linux.timeOffsets = { realtime: { secs: 1 } }; }, 'linux.timeOffsets "realtime" is not a clock (one of monotonic, boottime)'],
    ['intelRdt closID', (c) => (c.linux.intelRdt = { closID: '../x' }), 'linux.intelRdt.closID "../x" must be a plain directory name'],
  ];

  it.each(cases)('%s', (_name, edit, message) => {
    expect(after(edit)).toBe(`config.json: ${message}`);
  });
});

describe('namespace rules (runc validate)', () => {
  const withoutNamespace = (c: any, type: string) => (c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== type));

  const cases: [string, (c: any) => void, string][] = [
    ['hostname without uts', (c) => withoutNamespace(c, 'uts'), 'unable to set hostname without a private UTS namespace'],
    ['domainname without uts', (c) => { withoutNamespace(c, 'uts'); delete c.hostname; c.domainname = 'example.org'; }, 'unable to set domainname without a private UTS namespace'],
    ['masked paths without mount ns', (c) => withoutNamespace(c, 'mount'), 'unable to restrict sys entries without a private MNT namespace'],
    ['mappings without user ns', (c) => (c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]), "user namespace mappings specified, but USER namespace isn't enabled in the config"],
    ['new user ns without uid mappings', (c) => c.linux.namespaces.push({ type: 'user' }), 'user namespaces enabled, but no uid mappings found'],
    ['new user ns without gid mappings', (c) => { c.linux.namespaces.push({ type: 'user' }); c.linux.uidMappings = [{ containerID: 0, hostID: 0, size: 1 }]; }, 'user namespaces enabled, but no gid mappings found'],
    ['time offsets without time ns', (c) => (c.linux.timeOffsets = { monotonic: { secs: 5 } }), "time namespace offsets specified, but time namespace isn't enabled in the config"],
    ['ipc sysctl without ipc ns', (c) => { withoutNamespace(c, 'ipc'); c.linux.sysctl = { 'kernel.msgmax': '1' }; }, 'sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace'],
    ['net sysctl without net ns', (c) => { withoutNamespace(c, 'network'); c.linux.sysctl = { 'net/ipv4/ip_forward': '1' }; }, 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'],
    ['kernel.hostname sysctl', (c) => (c.linux.sysctl = { 'kernel.hostname': 'x' }), 'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field'],
    ['host-wide sysctl', (c) => (c.linux.sysctl = { 'vm.swappiness': '1' }), 'sysctl "vm.swappiness" is not in a separate kernel namespace'],
  ];

  it.each(cases)('%s', (_name, edit, message) => {
    expect(after(edit)).toBe(`config.json: ${message}`);
  });

  it('an empty hostname needs no uts namespace', () => {
    expect(after((c) => { c.hostname = ''; c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'uts'); })).toBeUndefined();
  });

  it('reads sysctl names with "/" separators as sysctl(8) does', () => {
    expect(sysctlDotted('net/ipv4/conf/eno2.100/rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
    expect(sysctlDotted('net.ipv4.ip_forward')).toBe('net.ipv4.ip_forward');
  });
});
