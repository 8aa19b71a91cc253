// What a container asks of its network: -p, --add-host, --dns, --net, and the hook's words.
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import {
  checkHostname,
  attachArgs, checkPublishConflicts, containerNetwork, DEFAULT_NETWORK, formatPublish, parseAddHost, parseAttachArgs, parseDns, parsePublish,
  type AttachOptions,
} from '../../src/network/options';

describe('-p [IP:]HOST:CONTAINER[/PROTO]', () => {
  it.each([
    ['8080:80', { hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['8080:80/tcp', { hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['53:53/udp', { hostPort: 53, containerPort: 53, protocol: 'udp' }],
    ['53:53/UDP', { hostPort: 53, containerPort: 53, protocol: 'udp' }],
    ['127.0.0.1:8080:80', { hostIP: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['0.0.0.0:1:65535/udp', { hostIP: '0.0.0.0', hostPort: 1, containerPort: 65535, protocol: 'udp' }],
    ['[::1]:8080:80', { hostIP: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    ['[fd00::1:2]:8443:443/tcp', { hostIP: 'fd00::1:2', hostPort: 8443, containerPort: 443, protocol: 'tcp' }],
  ])('%s', (text, expected) => {
    expect(parsePublish(text)).toEqual(expected);
  });

  it.each([
    ['80', 'a host port is needed'],
    [':80', 'a host port is needed'],
    ['127.0.0.1::80', 'a host port is needed'],
    ['80:', 'the container port is empty'],
    ['8000-8010:80', 'port ranges are not supported'],
    ['80:8000-8010', 'port ranges are not supported'],
    ['0:80', 'host port "0" is not a number from 1 to 65535'],
    ['65536:80', 'host port "65536" is not a number from 1 to 65535'],
    ['0x50:80', 'host port "0x50" is not a number'],
    ['80:1e2', 'container port "1e2" is not a number'],
    ['80:-1', 'container port "-1" is not a number'],
    ['127.0.0.1:80', '(with an IP, give IP:HOST:CONTAINER)'],
    ['80:80/sctp', 'sctp is not supported'],
    ['80:80/icmp', 'unknown protocol "icmp"'],
    ['80:80/', 'unknown protocol ""'],
    ['::1:8080:80', 'an IPv6 address must be in brackets'],
    ['[::1:8080:80', 'no closing "]"'],
    ['[::1]8080:80', 'expected ":" after the IPv6 address'],
    ['[1.2.3.4]:8080:80', '"1.2.3.4" is not an IPv6 address'],
    ['[fe80::1%eth0]:8080:80', 'is not an IPv6 address'],
    ['1.2.3:8080:80', '"1.2.3" is not an IP address'],
    ['localhost:8080:80', '"localhost" is not an IP address'],
    [':8080:80', 'the host IP is empty'],
    ['1:2:3:4', 'expected [IP:]HOST:CONTAINER'],
  ])('%s is refused', (text, why) => {
    let message = '';
    try {
      parsePublish(text);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(why);
    expect(message.startsWith(`-p ${JSON.stringify(text)}: `)).toBe(true);
    expect(message).not.toContain('\n');
  });

  it('formats what it parses', () => {
    for (const text of ['8080:80/tcp', '53:53/udp', '127.0.0.1:8080:80/tcp', '[::1]:8080:80/udp']) expect(formatPublish(parsePublish(text))).toBe(text);
  });

  it('refuses the same host port twice', () => {
    const check = (...texts: string[]) => () => checkPublishConflicts(texts.map(parsePublish));
    expect(check('8080:80', '8080:81')).toThrow('-p "8080:81/tcp": host port 8080/tcp is already published by -p "8080:80/tcp"');
    expect(check('127.0.0.1:8080:80', '8080:81')).toThrow('already published');
    expect(check('0.0.0.0:8080:80', '127.0.0.1:8080:81')).toThrow('already published');
    expect(check('[::1]:8080:80', '[0:0::1]:8080:81')).toThrow('already published');
    expect(check('8080:80', '8080:80/udp')).not.toThrow();
    expect(check('127.0.0.1:8080:80', '127.0.0.2:8080:80')).not.toThrow();
    expect(check('8080:80', '8081:80')).not.toThrow();
  });
});

describe('--add-host NAME:IP', () => {
  it.each([
    ['db:10.0.0.5', { name: 'db', ip: '10.0.0.5' }],
    ['db=10.0.0.5', { name: 'db', ip: '10.0.0.5' }],
    ['db.example.com:10.0.0.5', { name: 'db.example.com', ip: '10.0.0.5' }],
    ['host:::1', { name: 'host', ip: '::1' }],
    ['host=::1', { name: 'host', ip: '::1' }],
    ['host:fd00::5', { name: 'host', ip: 'fd00::5' }],
    ['host:[fd00::5]', { name: 'host', ip: 'fd00::5' }],
    ['a-b.c1:1.2.3.4', { name: 'a-b.c1', ip: '1.2.3.4' }],
  ])('%s', (text, expected) => {
    expect(parseAddHost(text)).toEqual(expected);
  });

  it.each([
    ['db', 'expected NAME:IP'],
    [':1.2.3.4', 'the host name is empty'],
    ['db:', 'the IP address is empty'],
    ['db:nope', '"nope" is not an IP address'],
    ['db:1.2.3.256', 'is not an IP address'],
    ['d_b:1.2.3.4', '"d_b" is not a host name'],
    ['-db:1.2.3.4', 'is not a host name'],
    ['db:host-gateway', 'host-gateway is not supported'],
  ])('%s is refused', (text, why) => {
    expect(() => parseAddHost(text)).toThrow(`--add-host ${JSON.stringify(text)}: `);
    expect(() => parseAddHost(text)).toThrow(why);
  });
});

describe('--dns', () => {
  it('takes IPv4 and IPv6 addresses only', () => {
    expect(parseDns('1.1.1.1')).toBe('1.1.1.1');
    expect(parseDns('2606:4700:4700::1111')).toBe('2606:4700:4700::1111');
    expect(() => parseDns('dns.example')).toThrow('--dns "dns.example": not an IP address');
  });
});

describe('--net and the flags that go with it', () => {
  it('none and host need no CNI', () => {
    expect(containerNetwork({})).toEqual({ network: 'none', dns: [], addHosts: [] });
    expect(containerNetwork({ network: 'host', dns: ['1.1.1.1'], addHost: ['db:10.0.0.5'] })).toEqual({
      network: 'host', dns: ['1.1.1.1'], addHosts: [{ name: 'db', ip: '10.0.0.5' }],
    });
  });

  it('refuses -p without a network', () => {
    expect(() => containerNetwork({ network: 'none', publish: ['80:80'] })).toThrow('-p needs a network: --net bridge or a network name');
    expect(() => containerNetwork({ network: 'host', publish: ['80:80'] })).toThrow('-p needs a network');
    expect(containerNetwork({ network: 'host', cniConfigDir: '/x', cniPluginDir: ['/y'] }).network).toBe('host');
  });

  it('bridge is the network husk, with absolute directories', () => {
    const n = containerNetwork({ network: 'bridge', publish: ['8080:80'], cniConfigDir: 'conf', cniPluginDir: ['plugins', '/opt/cni/bin'] });
    expect(n.network).toEqual({
      attach: { network: DEFAULT_NETWORK, ports: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], configDir: path.resolve('conf'), pluginDirs: [path.resolve('plugins'), '/opt/cni/bin'] },
    });
    const named = containerNetwork({ network: 'my-net.1' }).network as { attach: AttachOptions };
    expect(named.attach.network).toBe('my-net.1');
  });

  it.each(['nope!', '-x', '', '.net', 'a/b'])('refuses --net %j', (mode) => {
    expect(() => containerNetwork({ network: mode })).toThrow(`--net ${JSON.stringify(mode)}: expected none, host, bridge or a network name`);
  });

  it('refuses the same host port twice', () => {
    expect(() => containerNetwork({ network: 'bridge', publish: ['80:80', '80:81'] })).toThrow('already published');
  });
});

describe('the attach hook\'s words', () => {
  it('round trip', () => {
    const o: AttachOptions = {
      network: 'husk',
      ports: [parsePublish('8080:80'), parsePublish('[::1]:5353:53/udp'), parsePublish('127.0.0.1:9000:9000')],
      hostname: 'web',
      hostsFile: '/var/lib/husk/containers/abc/hosts',
      configDir: '/etc/cni/net.d',
      pluginDirs: ['/usr/lib/cni', '/opt/cni/bin'],
    };
    expect(parseAttachArgs(attachArgs(o))).toEqual(o);
    const bare: AttachOptions = { network: 'other', ports: [], configDir: '/tmp/conf', pluginDirs: ['/tmp/plugins'] };
    expect(parseAttachArgs(attachArgs(bare))).toEqual(bare);
  });

  it('refuses what it does not know', () => {
    expect(() => parseAttachArgs(['--net'])).toThrow('--net needs a value');
    expect(() => parseAttachArgs(['--bogus', 'x'])).toThrow('unknown flag "--bogus"');
    expect(() => parseAttachArgs(['-p', '80:80'])).toThrow('--net is required');
  });
});

describe('checkHostname', () => {
  it('takes host names', () => {
    for (const name of ['web', 'web-1', 'a.b.example', 'x'.repeat(63), '1abc']) expect(() => checkHostname(name)).not.toThrow();
  });
  it('refuses what would not be one name in /etc/hosts', () => {
    for (const name of ['', 'a b', 'a\tb', 'a\nb', '-a', 'a-', 'a..b', 'x'.repeat(64), 'a_b', `${'a.'.repeat(127)}a`]) {
      expect(() => checkHostname(name), JSON.stringify(name)).toThrow(/^--hostname .*: expected a host name/);
    }
  });
});
