// /_ping, /version, /info: what a client asks first. The CLI negotiates its API version from
// /_ping's Api-Version header, then uses `/v<that>/` on every request.
import * as fs from 'fs';
import * as os from 'os';
import { API_VERSION, MIN_API_VERSION, commonHeaders, type Route } from './api';
import type { DaemonContext } from './context';

function huskVersion(): string {
  return require('../../package.json').version;
}

function kernelVersion(): string {
  return os.release();
}

function cgroupVersion(): '1' | '2' {
  try {
    return fs.statfsSync('/sys/fs/cgroup').type === 0x63677270 ? '2' : '1';
  } catch {
    return '1';
  }
}

export function systemRoutes(ctx: DaemonContext, extra: { info?: () => Record<string, unknown> } = {}): Route[] {
  const ping: Route['handle'] = (req, res) => {
    res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache', 'Builder-Version': '1' });
    res.raw.end(req.method === 'HEAD' ? undefined : 'OK');
  };
  return [
    { method: 'GET', path: '/_ping', handle: ping },
    { method: 'HEAD', path: '/_ping', handle: ping },
    {
      method: 'GET',
      path: '/version',
      handle(_req, res) {
        const version = huskVersion();
        res.json({
          Platform: { Name: 'husk' },
          Components: [{ Name: 'Engine', Version: version, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: 'linux', Arch: goArch(), KernelVersion: kernelVersion() } }],
          Version: version,
          ApiVersion: API_VERSION,
          MinAPIVersion: MIN_API_VERSION,
          GitCommit: 'husk',
          GoVersion: `node ${process.version}`,
          Os: 'linux',
          Arch: goArch(),
          KernelVersion: kernelVersion(),
          BuildTime: ctx.started.toISOString(),
        });
      },
    },
    {
      method: 'GET',
      path: '/info',
      handle(_req, res) {
        res.json({
          ID: hostId(ctx),
          Name: os.hostname(),
          ServerVersion: huskVersion(),
          OperatingSystem: osName(),
          OSType: 'linux',
          OSVersion: '',
          Architecture: os.machine(),
          KernelVersion: kernelVersion(),
          NCPU: os.cpus().length,
          MemTotal: os.totalmem(),
          DockerRootDir: ctx.o.dataRoot,
          Driver: 'overlay2',
          DriverStatus: [['Backing Filesystem', 'husk image store'], ['Store', ctx.o.store]],
          Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null', 'macvlan', 'ipvlan'], Authorization: null, Log: ['json-file'] },
          LoggingDriver: 'json-file',
          CgroupDriver: 'cgroupfs',
          CgroupVersion: cgroupVersion(),
          DefaultRuntime: 'husk',
          Runtimes: { husk: { path: 'husk' } },
          SecurityOptions: ['name=seccomp,profile=builtin'],
          IndexServerAddress: 'https://index.docker.io/v1/',
          RegistryConfig: { InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
          Labels: [],
          ExperimentalBuild: false,
          LiveRestoreEnabled: true,
          Isolation: '',
          InitBinary: 'docker-init',
          ContainerdCommit: { ID: '', Expected: '' },
          RuncCommit: { ID: 'husk', Expected: 'husk' },
          InitCommit: { ID: '', Expected: '' },
          HttpProxy: '', HttpsProxy: '', NoProxy: '',
          SystemTime: new Date().toISOString(),
          Warnings: null,
          ...(extra.info?.() ?? { Containers: 0, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0, Images: 0 }),
        });
      },
    },
  ];
}

/** Go's names for the architecture, which the CLI prints. */
export function goArch(): string {
  const arch = process.arch as string;
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    // no os-release
  }
  return 'Linux';
}

/** A stable id for this daemon, made once. */
function hostId(ctx: DaemonContext): string {
  const file = `${ctx.o.dataRoot}/engine-id`;
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const id = require('crypto').randomUUID();
    fs.writeFileSync(file, id + '\n');
    return id;
  }
}
