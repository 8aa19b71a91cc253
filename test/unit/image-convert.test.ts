// Image config -> config.json (image-spec conversion.md) and docker run's flags.
import { describe, expect, it } from 'vitest';
import { annotationsFor, DEFAULT_PATH, imageToSpec, mergeEnv, parseMemory, processArgs, resolveUser, resourcesFromRunFlags } from '../../src/image/convert';
import type { ImageConfig } from '../../src/image/manifest';
import { bundleHooks, containerResolvConf, hostsFileText, parseResolvConf } from '../../src/image/bundle';
import { HUSK_BIN } from '../../src/host/huskBin';
import { parseAttachArgs } from '../../src/network/options';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n# comment\nbroken line\nbob:x:1001:100::/home/bob:/bin/sh\n';
const GROUP = 'root:x:0:\nusers:x:100:\nalice:x:1000:\nwheel:x:10:alice,bob\nstaff:x:50:alice\n';

function image(config: ImageConfig['config'] = {}, extra: Partial<ImageConfig> = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config, ...extra };
}

describe('Config.User', () => {
  it.each([
    [undefined, { uid: 0, gid: 0, home: '/root' }],
    ['alice', { uid: 1000, gid: 1000, additionalGids: [10, 50], home: '/home/alice' }],
    ['bob', { uid: 1001, gid: 100, additionalGids: [10], home: '/home/bob' }],
    ['1000', { uid: 1000, gid: 1000, home: '/home/alice' }],
    ['4242', { uid: 4242, gid: 0 }],
    ['alice:staff', { uid: 1000, gid: 50, home: '/home/alice' }],
    ['alice:7', { uid: 1000, gid: 7, home: '/home/alice' }],
    ['4242:4343', { uid: 4242, gid: 4343 }],
  ])('%s', (user, expected) => {
    expect(resolveUser(user, PASSWD, GROUP)).toEqual(expected);
  });

  it('refuses names the image does not have', () => {
    expect(() => resolveUser('mallory', PASSWD, GROUP)).toThrow('user "mallory" is not in the image\'s /etc/passwd');
    expect(() => resolveUser('alice:nogroup', PASSWD, GROUP)).toThrow('group "nogroup" is not in the image\'s /etc/group');
    expect(() => resolveUser('alice', undefined, undefined)).toThrow('(the image has no /etc/passwd)');
    expect(() => resolveUser('4294967295', PASSWD, GROUP)).toThrow('out of range');
    expect(() => resolveUser(':0', PASSWD, GROUP)).toThrow('the user name is empty');
  });
});

describe('process', () => {
  it('appends Cmd to Entrypoint; a command replaces Cmd; --entrypoint drops Cmd', () => {
    const c = { Entrypoint: ['/entry', '-x'], Cmd: ['serve'] };
    expect(processArgs(c, {})).toEqual(['/entry', '-x', 'serve']);
    expect(processArgs(c, { cmd: ['other'] })).toEqual(['/entry', '-x', 'other']);
    expect(processArgs(c, { entrypoint: ['/sh'] })).toEqual(['/sh']);
    expect(processArgs(c, { entrypoint: ['/sh'], cmd: ['-c', 'x'] })).toEqual(['/sh', '-c', 'x']);
    expect(processArgs({ Cmd: ['a'], Entrypoint: null }, {})).toEqual(['a']);
    expect(() => processArgs({}, {})).toThrow('the image has no Entrypoint or Cmd');
  });

  it('merges the environment: image first, then defaults it lacks, then -e', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4'])).toEqual(['A=1', 'B=3', 'C=4']);
    const spec = imageToSpec(image({ Cmd: ['x'], Env: ['A=1', 'PATH=/opt'] }), { env: ['A=2', 'FROM_HOST', 'MISSING'], hostEnv: { FROM_HOST: 'h' }, hostname: 'h1', passwd: PASSWD });
    expect(spec.process!.env).toEqual(['A=2', 'PATH=/opt', 'HOSTNAME=h1', 'HOME=/root', 'FROM_HOST=h']);
    const noPath = imageToSpec(image({ Cmd: ['x'] }), { terminal: true });
    expect(noPath.process!.env).toEqual([DEFAULT_PATH, 'HOSTNAME=husk', 'TERM=xterm']);
    expect(() => imageToSpec(image({ Cmd: ['x'] }), { env: ['=x'] })).toThrow('the variable name is empty');
  });

  it('takes WorkingDir, a -w override, and refuses a relative one', () => {
    expect(imageToSpec(image({ Cmd: ['x'], WorkingDir: '/srv' })).process!.cwd).toBe('/srv');
    expect(imageToSpec(image({ Cmd: ['x'], WorkingDir: '/srv' }), { workdir: '/tmp' }).process!.cwd).toBe('/tmp');
    expect(imageToSpec(image({ Cmd: ['x'] })).process!.cwd).toBe('/');
    expect(() => imageToSpec(image({ Cmd: ['x'], WorkingDir: 'srv' }))).toThrow('working directory "srv" is not an absolute path');
  });

  it('gives a writable rootfs, Docker\'s capabilities, a network namespace unless --net host', () => {
    const spec = imageToSpec(image({ Cmd: ['x'] }));
    expect(spec.root).toEqual({ path: 'rootfs', readonly: false });
    expect(spec.process!.capabilities!.bounding).toContain('CAP_CHOWN');
    expect(spec.process!.capabilities!.bounding).not.toContain('CAP_SYS_ADMIN');
    expect(spec.linux!.namespaces!.map((n) => n.type)).toContain('network');
    expect(imageToSpec(image({ Cmd: ['x'] }), { network: 'host' }).linux!.namespaces!.map((n) => n.type)).not.toContain('network');
    expect(imageToSpec(image({ Cmd: ['x'] }), { readonlyRootfs: true }).root!.readonly).toBe(true);
  });
});

describe('annotations', () => {
  it('maps the implicit fields, and Labels win over them', () => {
    const a = annotationsFor(
      image(
        { StopSignal: 'SIGQUIT', ExposedPorts: { '80/tcp': {}, '53/udp': {} }, Volumes: { '/data': {} }, Labels: { 'org.opencontainers.image.os': 'from-label', 'x.y': 'z' } },
        { author: 'me', created: '2024-01-01T00:00:00Z', variant: 'v8', architecture: 'arm64' },
      ),
    );
    expect(a).toEqual({
      'org.opencontainers.image.os': 'from-label',
      'org.opencontainers.image.architecture': 'arm64',
      'org.opencontainers.image.variant': 'v8',
      'org.opencontainers.image.author': 'me',
      'org.opencontainers.image.created': '2024-01-01T00:00:00Z',
      'org.opencontainers.image.stopSignal': 'SIGQUIT',
      'org.opencontainers.image.exposedPorts': '80/tcp,53/udp',
      'io.husk.image.volumes': '/data',
      'x.y': 'z',
    });
  });
});

describe('resources', () => {
  it('parses Docker sizes', () => {
    expect(parseMemory('512m', '--memory')).toBe(512 * 1024 * 1024);
    expect(parseMemory('1G', '--memory')).toBe(1024 ** 3);
    expect(parseMemory('1.5g', '--memory')).toBe(1.5 * 1024 ** 3);
    expect(parseMemory('64mb', '--memory')).toBe(64 * 1024 * 1024);
    expect(parseMemory('4096', '--memory')).toBe(4096);
    expect(() => parseMemory('lots', '--memory')).toThrow('--memory "lots": expected a size such as 512m or 2g');
  });

  it('maps --memory, --memory-swap, --pids-limit and --cpus to linux.resources', () => {
    expect(resourcesFromRunFlags({})).toBeUndefined();
    expect(resourcesFromRunFlags({ memory: '64m', memorySwap: '128m', pidsLimit: '20', cpus: '1.5' })).toEqual({
      memory: { limit: 64 * 1024 * 1024, swap: 128 * 1024 * 1024 },
      pids: { limit: 20 },
      cpu: { quota: 150000, period: 100000 },
    });
    expect(resourcesFromRunFlags({ memory: '64m', memorySwap: '-1' })).toEqual({ memory: { limit: 64 * 1024 * 1024, swap: -1 } });
    expect(resourcesFromRunFlags({ pidsLimit: '-1' })).toBeUndefined();
    expect(() => resourcesFromRunFlags({ memory: '1m' })).toThrow('the minimum is 6m');
    expect(() => resourcesFromRunFlags({ memorySwap: '1g' })).toThrow('--memory-swap needs --memory');
    expect(() => resourcesFromRunFlags({ memory: '1g', memorySwap: '512m' })).toThrow('must be at least --memory');
    expect(() => resourcesFromRunFlags({ cpus: '0' })).toThrow('expected a positive number');
    expect(() => resourcesFromRunFlags({ pidsLimit: '2.5' })).toThrow('not an integer');
  });
});

describe('the network files and hooks of a bundle', () => {
  const attach = { network: 'husk', ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }], configDir: '/etc/cni/net.d', pluginDirs: ['/usr/lib/cni'] };

  it('/etc/hosts: the hostname line only without a CNI network (attach writes it there), --add-host lines last', () => {
    const addHosts = [{ name: 'db', ip: '10.0.0.5' }, { name: 'v6', ip: '::1' }];
    expect(hostsFileText('web', 'none', addHosts, undefined)).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb\n10.0.0.5\tdb\n::1\tv6\n');
    expect(hostsFileText('web', { attach }, addHosts, undefined)).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tdb\n::1\tv6\n');
    expect(hostsFileText('web', 'host', addHosts, '127.0.0.1 localhost\n10.1.1.1 hosty')).toBe('127.0.0.1 localhost\n10.1.1.1 hosty\n10.0.0.5\tdb\n::1\tv6\n');
    expect(hostsFileText('web', 'host', [], undefined)).toContain('127.0.1.1\tweb\n');
  });

  it('resolv.conf: --dns replaces the nameservers, the host\'s search and options stay; without it loopback resolvers go', () => {
    const host = '# from the host\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.1\nsearch example.com\noptions edns0 trust-ad ; a comment\n';
    expect(parseResolvConf(host)).toEqual({ nameservers: ['127.0.0.53', '::1', '10.0.0.1'], search: ['example.com'], options: ['edns0', 'trust-ad'] });
    expect(containerResolvConf(host, ['1.1.1.1', '2606:4700:4700::1111'])).toBe('search example.com\nnameserver 1.1.1.1\nnameserver 2606:4700:4700::1111\noptions edns0 trust-ad\n');
    expect(containerResolvConf(host, [])).toBe('search example.com\nnameserver 10.0.0.1\noptions edns0 trust-ad\n');
    expect(containerResolvConf('domain a.example\nsearch b.example c.example\noptions ndots:2\noptions ndots:2 rotate\n', [])).toBe('search b.example c.example\noptions ndots:2 rotate\n');
    expect(containerResolvConf('', [])).toBe('');
  });

  it('hooks: attach as createRuntime, detach as the first poststop, before the caller\'s', () => {
    const unbundle = { poststop: [{ path: '/bin/husk', args: ['/bin/husk', 'image', 'unbundle', '/b'] }] };
    expect(bundleHooks('none', 'web', '/b/hosts', unbundle)).toBe(unbundle);
    expect(bundleHooks('host', 'web', '/b/hosts', undefined)).toBeUndefined();
    const hooks = bundleHooks({ attach }, 'web', '/b/hosts', unbundle)!;
    expect(hooks.createRuntime).toEqual([{
      path: HUSK_BIN,
      args: [HUSK_BIN, 'network', 'attach', '--net', 'husk', '--cni-config-dir', '/etc/cni/net.d', '--cni-plugin-dir', '/usr/lib/cni', '-p', '8080:80/tcp', '--hostname', 'web', '--hosts', '/b/hosts'],
    }]);
    expect(hooks.poststop).toEqual([{ path: HUSK_BIN, args: [HUSK_BIN, 'network', 'detach'] }, ...unbundle.poststop]);
    expect(parseAttachArgs(hooks.createRuntime![0].args!.slice(3))).toEqual({ ...attach, hostname: 'web', hostsFile: '/b/hosts' });
  });
});
