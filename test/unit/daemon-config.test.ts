// Docker's create body -> husk's bundle options and the daemon's policy (src/daemon/containerConfig.ts).
import { describe, expect, it } from 'vitest';
import {
  applyCapabilities, checkName, isDefault, parseBind, parseSecurityOpt, patchSpec, planCreate, publishOf, seccompFromDocker,
  shouldRestart, tmpfsMount,
} from '../../src/daemon/containerConfig';
import { defaultSpec } from '../../src/spec/defaults';

const ID = 'a'.repeat(64);

/** What the docker CLI sends for `docker create IMAGE` (28.x), flags left at their defaults. */
function cliBody(extra: Record<string, unknown> = {}, host: Record<string, unknown> = {}) {
  return {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false,
    OpenStdin: false, StdinOnce: false, Env: [], Cmd: null, Image: 'busybox', Volumes: {}, WorkingDir: '', Entrypoint: null,
    OnBuild: null, Labels: {},
    HostConfig: {
      Binds: null, ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default', PortBindings: {},
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: false, VolumeDriver: '', VolumesFrom: null,
      ConsoleSize: [0, 0], CapAdd: null, CapDrop: null, CgroupnsMode: '', Dns: [], DnsOptions: [], DnsSearch: [],
      ExtraHosts: null, GroupAdd: null, IpcMode: '', Cgroup: '', Links: null, OomScoreAdj: 0, PidMode: '', Privileged: false,
      PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null, UTSMode: '', UsernsMode: '', ShmSize: 0,
      Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0, BlkioWeightDevice: [],
      BlkioDeviceReadBps: [], BlkioDeviceWriteBps: [], BlkioDeviceReadIOps: [], BlkioDeviceWriteIOps: [], CpuPeriod: 0,
      CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '', Devices: [],
      DeviceCgroupRules: null, DeviceRequests: null, MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: -1,
      OomKillDisable: null, PidsLimit: null, Ulimits: [], CpuCount: 0, CpuPercent: 0, IOMaximumIOps: 0,
      IOMaximumBandwidth: 0, MaskedPaths: null, ReadonlyPaths: null, ...host,
    },
    NetworkingConfig: { EndpointsConfig: {} },
    ...extra,
  };
}

describe('planCreate', () => {
  it('takes what the CLI sends for a plain create, on the default network', () => {
    const plan = planCreate(cliBody(), ID);
    expect(plan.image).toBe('busybox');
    expect(plan.bundle.hostname).toBe(ID.slice(0, 12));
    expect(plan.network.network).toBe('bridge');
    expect(plan.restart).toEqual({ Name: 'no', MaximumRetryCount: 0 });
    expect(plan.bundle.resources).toBeUndefined();
    expect(plan.bundle.mounts).toEqual([]);
  });

  it('refuses a field Docker does not have, naming it', () => {
    expect(() => planCreate(cliBody({ Colour: 'red' }), ID)).toThrow('container config: unknown field "Colour"');
    expect(() => planCreate(cliBody({}, { Bogus: 1 }), ID)).toThrow('HostConfig: unknown field "Bogus"');
  });

  it('refuses a field husk does not do yet, only when it is not the default', () => {
    expect(() => planCreate(cliBody({}, { OomScoreAdj: 500 }), ID)).toThrow('husk does not support HostConfig.OomScoreAdj yet');
    expect(() => planCreate(cliBody({}, { Privileged: true }), ID)).toThrow('husk does not support HostConfig.Privileged yet');
    expect(() => planCreate(cliBody({}, { PidMode: 'host' }), ID)).toThrow('husk does not support HostConfig.PidMode "host" yet');
  });

  it('maps the run flags: env, workdir, user, entrypoint, resources, read-only, restart, log options', () => {
    const plan = planCreate(cliBody({ Env: ['A=1'], WorkingDir: '/w', User: 'nobody', Entrypoint: ['/probe'], Cmd: ['echo', 'x'], Hostname: 'h' }, {
      Memory: 64 << 20, MemorySwap: 128 << 20, NanoCpus: 1.5e9, PidsLimit: 50, ReadonlyRootfs: true,
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 }, LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    }), ID);
    expect(plan.bundle).toMatchObject({ env: ['A=1'], workdir: '/w', user: 'nobody', entrypoint: ['/probe'], cmd: ['echo', 'x'], hostname: 'h', readonlyRootfs: true });
    expect(plan.bundle.resources).toEqual({ memory: { limit: 64 << 20, swap: 128 << 20 }, cpu: { quota: 150000, period: 100000 }, pids: { limit: 50 } });
    expect(plan.restart).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });
    expect(plan.log).toEqual({ maxSize: 10 << 20, maxFiles: 3 });
  });

  it('refuses what dockerd refuses in resources and policies', () => {
    expect(() => planCreate(cliBody({}, { Memory: 1024 }), ID)).toThrow('Minimum memory limit allowed is 6MB');
    expect(() => planCreate(cliBody({}, { MemorySwap: 1 << 30 }), ID)).toThrow(/Memory limit/);
    expect(() => planCreate(cliBody({}, { AutoRemove: true, RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } }), ID)).toThrow(/AutoRemove/);
    expect(() => planCreate(cliBody({}, { RestartPolicy: { Name: 'sometimes', MaximumRetryCount: 0 } }), ID)).toThrow(/invalid restart policy/);
    expect(() => planCreate(cliBody({}, { LogConfig: { Type: 'syslog', Config: {} } }), ID)).toThrow(/logging driver/);
  });

  it('maps binds, mounts and tmpfs, and refuses /, .. and duplicates', () => {
    const plan = planCreate(cliBody({}, {
      Binds: ['/srv/data:/data:ro'], Tmpfs: { '/run': 'size=64m' },
      Mounts: [{ Type: 'bind', Source: '/srv/logs', Target: '/logs' }, { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1024, Mode: 0o1777 } }],
    }), ID);
    expect(plan.bundle.mounts).toEqual([
      { destination: '/data', type: 'bind', source: '/srv/data', options: ['rbind', 'ro', 'rprivate'] },
      { destination: '/logs', type: 'bind', source: '/srv/logs', options: ['rbind', 'rw', 'rprivate'] },
      { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'size=1024', 'mode=1777'] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'size=64m'] },
    ]);
    expect(plan.mountPoints[0]).toMatchObject({ Type: 'bind', Source: '/srv/data', Destination: '/data', RW: false });
    expect(() => parseBind('/:/host')).toThrow("binding the host's / into a container is refused");
    expect(() => parseBind('/srv/../etc:/x')).toThrow('".." is not allowed');
    expect(() => parseBind('/srv:/a/../b')).toThrow('".." is not allowed');
    expect(() => parseBind('myvolume:/data')).toThrow(/named volumes/);
    expect(() => planCreate(cliBody({}, { Binds: ['/a:/x', '/b:/x'] }), ID)).toThrow('Duplicate mount point: /x');
    expect(() => planCreate(cliBody({}, { Mounts: [{ Type: 'bind', Source: '/', Target: '/h' }] }), ID)).toThrow(/refused/);
  });

  it('maps the network: none, host, a named network, ports, dns, extra hosts', () => {
    const plan = planCreate(cliBody({ ExposedPorts: { '80/tcp': {} } }, {
      NetworkMode: 'mynet', PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }] },
      Dns: ['1.1.1.1'], ExtraHosts: ['db:10.0.0.2'],
    }), ID);
    expect(plan.network).toMatchObject({ network: 'mynet', publish: ['8080:80/tcp', '127.0.0.1:5353:53/udp'], dns: ['1.1.1.1'], addHost: ['db:10.0.0.2'] });
    expect(planCreate(cliBody({}, { NetworkMode: 'host' }), ID).network.network).toBe('host');
    expect(() => publishOf({ '80/tcp': [{ HostIp: '', HostPort: '' }] })).toThrow(/host port/);
    expect(() => planCreate(cliBody({}, { NetworkMode: 'container:x' }), ID)).toThrow(/NetworkMode/);
  });
});

describe('names, capabilities, seccomp, --init', () => {
  it('checks names as dockerd does', () => {
    expect(checkName('/web_1')).toBe('web_1');
    expect(checkName('a.b-c')).toBe('a.b-c');
    expect(() => checkName('-x')).toThrow('Invalid container name (-x)');
    expect(() => checkName('a')).toThrow(/Invalid container name/);
    expect(() => checkName('a/b')).toThrow(/Invalid container name/);
  });

  it('adds and drops capabilities with ALL as Docker does', () => {
    const all = ['CAP_A', 'CAP_B', 'CAP_C'];
    expect(applyCapabilities(['CAP_A', 'CAP_B'], ['CAP_C'], ['CAP_A'], all)).toEqual(['CAP_B', 'CAP_C']);
    expect(applyCapabilities(['CAP_A', 'CAP_B'], ['CAP_C'], ['ALL'], all)).toEqual(['CAP_C']);
    expect(applyCapabilities(['CAP_A'], ['ALL'], [], all)).toEqual(all);
  });

  it('reads seccomp=unconfined and a Docker profile', () => {
    expect(parseSecurityOpt(['seccomp=unconfined'])).toEqual({ seccomp: 'unconfined' });
    const profile = seccompFromDocker(JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO', archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }],
      syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }, { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_PTRACE'] } }],
    }));
    expect(profile).toEqual({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }] });
    expect(() => parseSecurityOpt(['seccomp={nope'])).toThrow(/not JSON/);
    expect(() => parseSecurityOpt(['colour=red'])).toThrow(/invalid security option/);
  });

  it('patches config.json: capabilities, seccomp, and --init in front of the command', () => {
    const spec = defaultSpec({ args: ['/probe', 'report'], terminal: false });
    spec.process!.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] };
    patchSpec(spec, { capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_KILL'], init: true }, '/usr/bin/docker-init', ['CAP_KILL', 'CAP_NET_ADMIN']);
    expect(spec.process!.capabilities!.bounding).toEqual(['CAP_NET_ADMIN']);
    expect(spec.process!.args).toEqual(['/sbin/docker-init', '--', '/probe', 'report']);
    expect(spec.mounts!.at(-1)).toEqual({ destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/docker-init', options: ['bind', 'ro', 'rprivate'] });
    expect(() => patchSpec(defaultSpec({ args: ['x'], terminal: false }), { capAdd: [], capDrop: [], init: true }, undefined, [])).toThrow(/docker-init/);
  });
});

describe('policies', () => {
  it('restarts as the policy says', () => {
    expect(shouldRestart({ Name: 'no', MaximumRetryCount: 0 }, 1, 0, false)).toBe(false);
    expect(shouldRestart({ Name: 'always', MaximumRetryCount: 0 }, 0, 5, false)).toBe(true);
    expect(shouldRestart({ Name: 'always', MaximumRetryCount: 0 }, 0, 5, true)).toBe(false);
    expect(shouldRestart({ Name: 'unless-stopped', MaximumRetryCount: 0 }, 0, 0, false)).toBe(true);
    expect(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, 1, 1, false)).toBe(true);
    expect(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 2 }, 1, 2, false)).toBe(false);
    expect(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 0 }, 0, 0, false)).toBe(false);
    expect(shouldRestart({ Name: 'on-failure', MaximumRetryCount: 0 }, 3, 100, false)).toBe(true);
  });

  it('knows the CLI\'s defaults', () => {
    expect(isDefault({ Type: '', Config: {} })).toBe(true);
    expect(isDefault([0, 0])).toBe(true);
    expect(isDefault({ a: [1] })).toBe(false);
  });

  it('gives --tmpfs Docker\'s default options, which the user may turn around', () => {
    expect(tmpfsMount('/t', ['exec', 'size=1m']).options).toEqual(['nosuid', 'nodev', 'exec', 'size=1m']);
  });
});
