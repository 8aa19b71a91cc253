// The networks husk writes, in temporary configuration directories: the default network on
// first use, `husk network create` (bridge, macvlan, ipvlan; subnets, gateways, bridge names),
// what `ls` shows of a network, and `rm`. No root and no network: nothing here runs a plugin.
import * as fs from 'fs';
import { createRequire, syncBuiltinESMExports } from 'module';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HuskError } from '../../src/errors';
import { listNetworks, parseNetwork } from '../../src/network/cni';
import { createNetwork, DEFAULT_SUBNET, ensureNetwork, networkName, networkSummary, removeNetwork } from '../../src/network/networks';

let dir: string;

beforeEach(() => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'husk-networks-')), 'net.d');
});

afterEach(() => {
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

const read = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
/** Runs fn with `before(to)` called just before each fs.linkSync of networks.ts: the moment
 * another husk call writing the same directory could come in between. */
function withLinkHook(before: (to: fs.PathLike) => void, fn: () => void): void {
  // The fs networks.ts sees: the CommonJS exports, copied to its ESM view by the sync.
  const cjs = createRequire(__filename)('fs') as typeof fs;
  const link = cjs.linkSync;
  cjs.linkSync = (from, to) => {
    before(to);
    return link(from, to);
  };
  syncBuiltinESMExports();
  try {
    fn();
  } finally {
    cjs.linkSync = link;
    syncBuiltinESMExports();
  }
}

const failure = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HuskError);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('the default network', () => {
  it('is written on first use as husk.conflist, 0644, and loads', () => {
    const list = ensureNetwork(dir, 'husk');
    const file = path.join(dir, 'husk.conflist');
    expect(list.file).toBe(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(dir)).toEqual(['husk.conflist']);
    const parsed = parseNetwork(fs.readFileSync(file, 'utf8'), file);
    expect(parsed.name).toBe('husk');
    expect(parsed.disableCheck).toBe(true);
    expect(parsed.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
    expect(read(file)).toEqual({
      cniVersion: '1.0.0', name: 'husk', disableCheck: true,
      plugins: [
        {
          type: 'bridge', bridge: 'husk0', isGateway: true, ipMasq: true, hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: '10.73.0.0/16', gateway: '10.73.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'firewall' },
        { type: 'tuning' },
      ],
    });
    expect(DEFAULT_SUBNET).toBe('10.73.0.0/16');
  });

  it('is what `bridge` means', () => {
    expect(networkName('bridge')).toBe('husk');
    expect(networkName('other')).toBe('other');
    expect(ensureNetwork(dir, 'bridge').name).toBe('husk');
  });

  it('is written once: a second use loads the file as it is', () => {
    ensureNetwork(dir, 'husk');
    const file = path.join(dir, 'husk.conflist');
    const edited = read(file);
    edited.plugins[0].bridge = 'mybridge';
    fs.writeFileSync(file, JSON.stringify(edited));
    const before = fs.statSync(file).ino;
    expect(ensureNetwork(dir, 'husk').plugins[0].bridge).toBe('mybridge');
    expect(fs.statSync(file).ino).toBe(before);
  });

  it('never replaces a husk.conflist that appeared meanwhile (here: one that does not parse)', () => {
    // What a second writer sees when the first linked its file after the second listed the
    // directory: the name exists, and the existing file is the one loaded.
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'husk.conflist'), '{"name": "husk", ');
    expect(failure(() => ensureNetwork(dir, 'husk'))).toMatch(/husk\.conflist: not valid JSON/);
    expect(fs.readFileSync(path.join(dir, 'husk.conflist'), 'utf8')).toBe('{"name": "husk", ');
    expect(fs.readdirSync(dir)).toEqual(['husk.conflist']);
  });

  it('is not written when another file of the directory has the name', () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '10-mine.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'husk', type: 'bridge' }));
    expect(ensureNetwork(dir, 'husk').file).toBe(path.join(dir, '10-mine.conf'));
    expect(fs.readdirSync(dir)).toEqual(['10-mine.conf']);
  });

  it('is the only one written: another name must exist', () => {
    expect(failure(() => ensureNetwork(dir, 'other'))).toBe(`no network "other" in ${dir} (no networks there)`);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('loses to a writer that linked its file first: loads that one, leaves no temporary file', () => {
    // Another call writes husk.conflist between this one's look at the directory and its link.
    const theirs = { cniVersion: '1.0.0', name: 'husk', plugins: [{ type: 'bridge', bridge: 'theirs0' }] };
    let calls = 0;
    withLinkHook((to) => {
      calls++;
      fs.writeFileSync(to, JSON.stringify(theirs));
    }, () => expect(ensureNetwork(dir, 'husk').plugins[0].bridge).toBe('theirs0'));
    expect(calls).toBe(1);
    expect(read(path.join(dir, 'husk.conflist'))).toEqual(theirs);
    expect(fs.readdirSync(dir)).toEqual(['husk.conflist']);
  });
});

describe('createNetwork', () => {
  it('writes a bridge network like the default one, on the first free 10.74.N.0/24', () => {
    const list = createNetwork(dir, { name: 'web' });
    expect(list.file).toBe(path.join(dir, 'web.conflist'));
    expect(fs.statSync(list.file).mode & 0o777).toBe(0o644);
    expect(list.disableCheck).toBe(true);
    expect(list.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
    expect(list.plugins[0]).toEqual({
      type: 'bridge', bridge: 'husk-web', isGateway: true, ipMasq: true, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.74.0.0/24', gateway: '10.74.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
    });
    expect(parseNetwork(fs.readFileSync(list.file, 'utf8'), list.file).name).toBe('web');
  });

  it('takes a subnet and a gateway', () => {
    const list = createNetwork(dir, { name: 'lab', subnet: '192.168.77.0/24', gateway: '192.168.77.254' });
    expect((list.plugins[0].ipam as any).ranges).toEqual([[{ subnet: '192.168.77.0/24', gateway: '192.168.77.254' }]]);
  });

  it('internal: no masquerading and no default route', () => {
    const p = createNetwork(dir, { name: 'closed', internal: true }).plugins[0];
    expect(p.ipMasq).toBe(false);
    expect((p.ipam as any).routes).toBeUndefined();
  });

  it('macvlan and ipvlan hang from a parent that exists, without portmap', () => {
    const mv = createNetwork(dir, { name: 'mv', driver: 'macvlan', parent: 'lo', subnet: '10.9.0.0/24' });
    expect(mv.plugins).toEqual([{
      type: 'macvlan', master: 'lo', mode: 'bridge',
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.9.0.0/24', gateway: '10.9.0.1' }]], routes: [{ dst: '0.0.0.0/0' }] },
    }]);
    expect(mv.disableCheck).toBe(false);
    const iv = createNetwork(dir, { name: 'iv', driver: 'ipvlan', parent: 'lo' });
    expect(iv.plugins.map((p) => [p.type, p.master, p.mode])).toEqual([['ipvlan', 'lo', 'l2']]);
    expect((iv.plugins[0].ipam as any).ranges[0][0].subnet).toBe('10.74.0.0/24');
  });

  it.each([
    [{ driver: 'macvlan' as const }, 'the macvlan driver needs a parent interface (--parent)'],
    [{ driver: 'ipvlan' as const, parent: 'husknosuch0' }, 'parent interface "husknosuch0" does not exist (no /sys/class/net/husknosuch0)'],
    [{ driver: 'macvlan' as const, parent: '../lo' }, 'parent interface "../lo" is not an interface name'],
    [{ parent: 'lo' }, 'a parent interface is only for the macvlan and ipvlan drivers'],
    [{ driver: 'vxlan' as any }, 'driver "vxlan": not one of bridge, macvlan, ipvlan'],
  ])('refuses the driver options %j', (o, message) => {
    expect(failure(() => createNetwork(dir, { name: 'n', ...o }))).toBe(message);
    expect(fs.existsSync(path.join(dir, 'n.conflist'))).toBe(false);
  });

  it.each([
    ['10.1.2.0', 'not an IPv4 subnet like 10.74.0.0/24 (no /PREFIX)'],
    ['10.1.2.0/24/8', 'not an IPv4 subnet like 10.74.0.0/24 (no /PREFIX)'],
    ['10.1.2/24', '"10.1.2" is not 4 numbers separated by dots'],
    ['10.1.2.0.0/24', '"10.1.2.0.0" is not 4 numbers separated by dots'],
    ['10.1.x.0/24', '"x" is not a number from 0 to 255'],
    ['10.1.-2.0/24', '"-2" is not a number from 0 to 255'],
    ['10.1.256.0/24', '256 is not a number from 0 to 255'],
    ['10.01.2.0/24', '"01" has a leading zero'],
    ['10.1.2.0/33', 'prefix "33" is not a number from 0 to 32'],
    ['10.1.2.0/', 'prefix "" is not a number from 0 to 32'],
    ['10.1.2.0/08', 'prefix "08" is not a number from 0 to 32'],
    ['10.1.2.3/24', 'host bits are set (the network is 10.1.2.0/24)'],
    ['10.1.2.0/16', 'host bits are set (the network is 10.1.0.0/16)'],
    ['fd00::/64', 'IPv6 subnets are not supported: an IPv4 subnet like 10.74.0.0/24'],
  ])('refuses the subnet %s', (subnet, why) => {
    expect(failure(() => createNetwork(dir, { name: 'n', subnet }))).toBe(`subnet ${JSON.stringify(subnet)}: ${why}`);
    expect(fs.existsSync(path.join(dir, 'n.conflist'))).toBe(false);
  });

  it('refuses a subnet with no room for a container', () => {
    expect(failure(() => createNetwork(dir, { name: 'n', subnet: '10.1.2.0/31' }))).toBe('subnet 10.1.2.0/31 has no room for a gateway and a container: at most /30');
    expect(createNetwork(dir, { name: 'n', subnet: '10.1.2.0/30' }).name).toBe('n');
  });

  it.each([
    ['10.5.1.1', 'gateway 10.5.1.1 is not in the subnet 10.5.0.0/24'],
    ['10.4.255.255', 'gateway 10.4.255.255 is not in the subnet 10.5.0.0/24'],
    ['10.5.0.0', 'gateway 10.5.0.0 is the network address of 10.5.0.0/24'],
    ['10.5.0.255', 'gateway 10.5.0.255 is the broadcast address of 10.5.0.0/24'],
    ['10.5.0', 'gateway "10.5.0": not an IPv4 address like 10.74.0.1'],
    ['10.5.0.01', 'gateway "10.5.0.01": not an IPv4 address like 10.74.0.1'],
  ])('refuses the gateway %s', (gateway, message) => {
    expect(failure(() => createNetwork(dir, { name: 'n', subnet: '10.5.0.0/24', gateway }))).toBe(message);
  });

  it.each([
    ['bad name', 'network name "bad name": only letters, digits, _ . - and a letter or digit first'],
    ['-x', 'network name "-x": only letters, digits, _ . - and a letter or digit first'],
    ['a/b', 'network name "a/b": only letters, digits, _ . - and a letter or digit first'],
    ['', 'network name "": only letters, digits, _ . - and a letter or digit first'],
    ['bridge', 'network name "bridge" is reserved (it means the default network "husk")'],
    ['host', 'network name "host" is reserved (--net host uses no network)'],
    ['none', 'network name "none" is reserved (--net none uses no network)'],
    ['n'.repeat(247), 'network name is 247 characters long: at most 246'],
  ])('refuses the name %j', (name, message) => {
    expect(failure(() => createNetwork(dir, { name }))).toBe(message);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('refuses a name the directory has, naming its file', () => {
    createNetwork(dir, { name: 'web' });
    expect(failure(() => createNetwork(dir, { name: 'web', subnet: '10.99.0.0/24' }))).toBe(`network "web" already exists: ${path.join(dir, 'web.conflist')}`);
    fs.writeFileSync(path.join(dir, '50-other.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'other', type: 'bridge' }));
    expect(failure(() => createNetwork(dir, { name: 'other' }))).toBe(`network "other" already exists: ${path.join(dir, '50-other.conf')}`);
  });

  it('refuses to replace a NAME.conflist that holds another network', () => {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'web.conflist');
    fs.writeFileSync(file, JSON.stringify({ cniVersion: '1.0.0', name: 'notweb', plugins: [{ type: 'bridge' }] }));
    expect(failure(() => createNetwork(dir, { name: 'web' }))).toBe(`network "web": ${file} already exists`);
    expect(read(file).name).toBe('notweb');
  });

  it('picks a subnet that overlaps no network of the directory (nor the default one)', () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'old.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'old', type: 'bridge', ipam: { type: 'host-local', subnet: '10.74.0.0/23' } }));
    createNetwork(dir, { name: 'mine', subnet: '10.74.3.0/24' });
    const auto = createNetwork(dir, { name: 'auto' });
    expect(networkSummary(auto).subnets).toEqual(['10.74.2.0/24']);
    expect(networkSummary(createNetwork(dir, { name: 'auto2' })).subnets).toEqual(['10.74.4.0/24']);
    expect(failure(() => createNetwork(dir, { name: 'x', subnet: '10.74.0.128/25' }))).toBe(`subnet 10.74.0.128/25 overlaps 10.74.0.0/23 of network "old" (${path.join(dir, 'old.conf')})`);
    expect(failure(() => createNetwork(dir, { name: 'x', subnet: '10.73.5.0/24' }))).toBe('subnet 10.73.5.0/24 overlaps 10.73.0.0/16 of network "husk"');
  });

  it('says when every automatic subnet is taken', () => {
    createNetwork(dir, { name: 'big', subnet: '10.74.0.0/16' });
    expect(failure(() => createNetwork(dir, { name: 'n' }))).toBe('every subnet 10.74.N.0/24 is taken by a network of the directory: give one');
  });

  it('takes its file back when a create at the same time chose an overlapping subnet or the same bridge', () => {
    fs.mkdirSync(dir, { recursive: true });
    const other = path.join(dir, 'other.conflist');
    withLinkHook(() => {
      fs.writeFileSync(other, JSON.stringify({ cniVersion: '1.0.0', name: 'other', plugins: [{ type: 'bridge', bridge: 'b1', ipam: { type: 'host-local', subnet: '10.74.0.0/24' } }] }));
    }, () => {
      expect(failure(() => createNetwork(dir, { name: 'web' }))).toBe(`network "other" (${other}) was created at the same time with an overlapping subnet 10.74.0.0/24: try again`);
    });
    expect(fs.readdirSync(dir)).toEqual(['other.conflist']);
    fs.rmSync(other);
    withLinkHook(() => {
      fs.writeFileSync(other, JSON.stringify({ cniVersion: '1.0.0', name: 'other', plugins: [{ type: 'bridge', bridge: 'husk-web' }] }));
    }, () => {
      expect(failure(() => createNetwork(dir, { name: 'web' }))).toBe('another network was created at the same time with bridge husk-web: try again');
    });
    expect(fs.readdirSync(dir)).toEqual(['other.conflist']);
  });

  it('names bridges husk-NAME, at most 15 characters, and never two alike', () => {
    const bridge = (name: string) => createNetwork(dir, { name }).plugins[0].bridge as string;
    expect(bridge('a')).toBe('husk-a');
    expect(bridge('averyveryverylongname')).toBe('husk-averyveryv');
    expect(bridge('averyveryverylongname2')).toBe('husk-averyvery1');
    expect(bridge('averyveryverylongname3')).toBe('husk-averyvery2');
    // A bridge another network names itself, and one the default network uses.
    fs.writeFileSync(path.join(dir, 'x.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'bridge', bridge: 'husk-taken' }] }));
    expect(bridge('taken')).toBe('husk-taken1');
  });
});

describe('networkSummary and removeNetwork', () => {
  it('summarise a network: the first plugin, the subnets of either form', () => {
    const web = createNetwork(dir, { name: 'web', subnet: '10.20.0.0/16' });
    expect(networkSummary(web)).toEqual({ name: 'web', driver: 'bridge', subnets: ['10.20.0.0/16'], file: web.file });
    fs.writeFileSync(path.join(dir, 'two.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'two',
      plugins: [{ type: 'ptp', ipam: { type: 'host-local', ranges: [[{ subnet: '10.30.0.0/24' }, { subnet: '10.30.1.0/24' }], [{ subnet: 'fd00::/64' }]] } }],
    }));
    fs.writeFileSync(path.join(dir, 'old.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'old', type: 'bridge', ipam: { type: 'host-local', subnet: '10.40.0.0/24' } }));
    fs.writeFileSync(path.join(dir, 'lo.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'lo', type: 'loopback' }));
    const byName = Object.fromEntries(listNetworks(dir).networks.map((n) => [n.name, networkSummary(n)]));
    expect(byName.two).toMatchObject({ driver: 'ptp', subnets: ['10.30.0.0/24', '10.30.1.0/24', 'fd00::/64'] });
    expect(byName.old).toMatchObject({ driver: 'bridge', subnets: ['10.40.0.0/24'] });
    expect(byName.lo).toMatchObject({ driver: 'loopback', subnets: [] });
  });

  it('removes the file of the network, and `bridge` means husk', () => {
    createNetwork(dir, { name: 'web' });
    fs.writeFileSync(path.join(dir, '10-old.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'old', type: 'bridge' }));
    removeNetwork(dir, 'old');
    expect(fs.readdirSync(dir).sort()).toEqual(['web.conflist']);
    ensureNetwork(dir, 'husk');
    removeNetwork(dir, 'bridge');
    expect(fs.readdirSync(dir)).toEqual(['web.conflist']);
  });

  it('refuses an unknown name, saying what the directory has', () => {
    createNetwork(dir, { name: 'web' });
    expect(failure(() => removeNetwork(dir, 'nope'))).toBe(`no network "nope" in ${dir} (networks there: web)`);
    expect(fs.readdirSync(dir)).toEqual(['web.conflist']);
  });
});
