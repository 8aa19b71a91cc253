// The networks husk writes into a CNI configuration directory: the default network `husk`
// (what `--net bridge` means), written on first use, and those of `husk network create`; and
// what `husk network ls`, `inspect` and `rm` read back. A network is one NAME.conflist file.
//
// Two husk calls may write at the same time (two containers started at once, each the first
// to use the default network; two creates). A file is written under a temporary name (whose
// extension, .tmp, is one no CNI reader loads) and then hard-linked to its real name: link()
// fails with EEXIST rather than replace a file, so the first writer's file stays whole and the
// second learns that it lost.
import * as fs from 'fs';
import * as path from 'path';
import { threadId } from 'worker_threads';
import { HuskError, reason } from '../errors';
import { attachedTo } from './attach';
import { ID_PATTERN, listNetworks, loadNetwork, type NetworkList, type PluginConf } from './cni';
import { DEFAULT_NETWORK } from './options';

/**
 * The default network's subnet. 10.73.0.0/16 stays clear of the ranges other engines take on
 * the same host (Docker's bridges: 172.17.0.0/16 to 172.31.0.0/16; Podman's: 10.88.0.0/16) and
 * of those home and office routers hand out (192.168.0.0/16, and 10.0.0.0/24 or 10.1.0.0/24
 * for those that use 10/8), so that a container's address never hides a machine of the LAN.
 */
export const DEFAULT_SUBNET = '10.73.0.0/16';
const DEFAULT_GATEWAY = '10.73.0.1';
const DEFAULT_BRIDGE = 'husk0';

/** Where `husk network create` picks a subnet when none is given: the first free N of 10.74.N.0/24
 * (beside the default network's 10.73.0.0/16, for the same reasons). */
const AUTOMATIC_SUBNETS = { first: '10.74.0.0', prefix: 24, count: 256, text: '10.74.N.0/24' };

const CNI_VERSION = '1.0.0';

/** `--net bridge` is the default network, as in Docker. */
const ALIASES: Record<string, string> = { bridge: DEFAULT_NETWORK };

/** Names a network may not have: `bridge` is the default network's alias; `host` and `none`
 * are the network modes that use no CNI network at all. */
const RESERVED = ['bridge', 'host', 'none'];

/** IFNAMSIZ - 1: the longest interface name the kernel takes. */
const IFNAME_MAX = 15;

/** NAME_MAX less ".conflist": the longest name whose file can exist. */
const NAME_MAX = 255 - '.conflist'.length;

const SYS_CLASS_NET = '/sys/class/net';

/** host-local's default dataDir: one directory of leases per network name. */
const HOST_LOCAL_DIR = '/var/lib/cni/networks';

export type NetworkDriver = 'bridge' | 'macvlan' | 'ipvlan';
export const DRIVERS: NetworkDriver[] = ['bridge', 'macvlan', 'ipvlan'];

export interface NetworkOptions {
  name: string;
  /** An IPv4 CIDR; default: the first 10.74.N.0/24 that no network of the directory overlaps. */
  subnet?: string;
  /** Default: the subnet's first host address. */
  gateway?: string;
  /** Default: bridge. */
  driver?: NetworkDriver;
  /** macvlan and ipvlan: the host interface the containers' interfaces hang from. */
  parent?: string;
  /** No way out of the subnet: no masquerading and no default route in the containers. */
  internal?: boolean;
  /** Bridge: no traffic from other bridges' containers (the firewall plugin's ingressPolicy
   *  same-bridge), as Docker isolates its networks from each other. */
  isolated?: boolean;
}

export interface NetworkSummary {
  name: string;
  /** The first plugin's type. */
  driver: string;
  subnets: string[];
  file: string;
}

/** The network a name means (`bridge` is `husk`). */
export function networkName(name: string): string {
  return ALIASES[name] ?? name;
}

/** The default network, as ensureNetwork writes it. disableCheck: Debian's portmap (1.1.1)
 * fails CHECK on a network without IPv6 (see cni.ts). */
function defaultNetwork(): Record<string, unknown> {
  return {
    cniVersion: CNI_VERSION,
    name: DEFAULT_NETWORK,
    disableCheck: true,
    plugins: bridgePlugins(DEFAULT_BRIDGE, DEFAULT_SUBNET, DEFAULT_GATEWAY, false),
  };
}

/** A bridge with the host as gateway and NAT out, published ports, the firewall plugin's
 * rules for the containers' addresses, and sysctls/interface settings if a caller asks. */
function bridgePlugins(bridge: string, subnet: string, gateway: string, internal: boolean, isolated = false): PluginConf[] {
  return [
    { type: 'bridge', bridge, isGateway: true, ipMasq: !internal, hairpinMode: true, ipam: hostLocal(subnet, gateway, internal) },
    { type: 'portmap', capabilities: { portMappings: true } },
    isolated ? { type: 'firewall', ingressPolicy: 'same-bridge' } : { type: 'firewall' },
    { type: 'tuning' },
  ];
}

function hostLocal(subnet: string, gateway: string, internal: boolean): Record<string, unknown> {
  const ipam: Record<string, unknown> = { type: 'host-local', ranges: [[{ subnet, gateway }]] };
  if (!internal) ipam.routes = [{ dst: '0.0.0.0/0' }];
  return ipam;
}

/**
 * The network NAME of configDir (`bridge` meaning `husk`). The default network `husk` is
 * written first, as configDir/husk.conflist, when the directory has no network of that name.
 */
export function ensureNetwork(configDir: string, name: string): NetworkList {
  name = networkName(name);
  if (name === DEFAULT_NETWORK && !listNetworks(configDir).networks.some((n) => n.name === name)) {
    // Another call may write it at the same time: whichever links first wins, and both load it.
    writeNewFile(configDir, `${DEFAULT_NETWORK}.conflist`, defaultNetwork());
  }
  return loadNetwork(configDir, name);
}

/** Writes configDir/NAME.conflist for a new network and returns it as loaded. */
export function createNetwork(configDir: string, o: NetworkOptions): NetworkList {
  const name = o.name;
  if (!ID_PATTERN.test(name)) throw new HuskError(`network name ${JSON.stringify(name)}: only letters, digits, _ . - and a letter or digit first`);
  if (name.length > NAME_MAX) throw new HuskError(`network name is ${name.length} characters long: at most ${NAME_MAX}`);
  if (RESERVED.includes(name)) {
    throw new HuskError(`network name "${name}" is reserved (${name === 'bridge' ? `it means the default network "${DEFAULT_NETWORK}"` : `--net ${name} uses no network`})`);
  }
  const driver = o.driver ?? 'bridge';
  if (!DRIVERS.includes(driver)) throw new HuskError(`driver ${JSON.stringify(driver)}: not one of ${DRIVERS.join(', ')}`);
  if (driver === 'bridge' && o.parent !== undefined) throw new HuskError('a parent interface is only for the macvlan and ipvlan drivers');
  if (driver !== 'bridge') {
    if (o.parent === undefined) throw new HuskError(`the ${driver} driver needs a parent interface (--parent)`);
    checkParent(o.parent);
  }

  const { networks } = listNetworks(configDir);
  const existing = networks.find((n) => n.name === name);
  if (existing) throw new HuskError(`network "${name}" already exists: ${existing.file}`);

  const taken = takenSubnets(networks, name);
  let subnet: Ipv4Net;
  if (o.subnet !== undefined) {
    subnet = parseSubnet(o.subnet);
    const other = taken.find((t) => overlaps(t.net, subnet));
    if (other) throw new HuskError(`subnet ${formatNet(subnet)} overlaps ${formatNet(other.net)} of network "${other.network}"${other.file ? ` (${other.file})` : ''}`);
  } else {
    subnet = freeSubnet(taken);
  }
  if (subnet.prefix > 30) throw new HuskError(`subnet ${formatNet(subnet)} has no room for a gateway and a container: at most /30`);
  const gateway = o.gateway === undefined ? subnet.base + 1 : parseGateway(o.gateway, subnet);

  const ranges = formatNet(subnet);
  const gw = formatIpv4(gateway);
  const list: Record<string, unknown> = { cniVersion: CNI_VERSION, name };
  if (driver === 'bridge') {
    const bridge = bridgeName(name, networks);
    // portmap's CHECK fails without IPv6 on Debian's plugins (see cni.ts).
    list.disableCheck = true;
    list.plugins = bridgePlugins(bridge, ranges, gw, o.internal ?? false, o.isolated ?? false);
  } else {
    const mode = driver === 'macvlan' ? 'bridge' : 'l2';
    list.plugins = [{ type: driver, master: o.parent, mode, ipam: hostLocal(ranges, gw, o.internal ?? false) }];
  }

  const file = writeNewFile(configDir, `${name}.conflist`, list);
  if (!file) throw new HuskError(`network "${name}": ${path.join(configDir, `${name}.conflist`)} already exists`);
  // A create that ran at the same time may have chosen the same subnet or bridge: whichever
  // sees the other after writing takes its file back (both may, never neither).
  try {
    clashAfterWrite(configDir, name, file, subnet);
  } catch (err) {
    fs.rmSync(file, { force: true });
    throw err;
  }
  return loadNetwork(configDir, name);
}

/** Removes the network's file; refused while containers are attached to it. */
export function removeNetwork(configDir: string, name: string): void {
  name = networkName(name);
  const list = loadNetwork(configDir, name);
  const users = attachedTo(name, configDir);
  if (users.length) {
    const ids = [...new Set(users.map((r) => r.containerId))];
    throw new HuskError(`network "${name}" is in use by container${ids.length > 1 ? 's' : ''} ${ids.join(', ')}`);
  }
  try {
    fs.unlinkSync(list.file);
  } catch (err) {
    throw new HuskError(`network "${name}": cannot remove ${list.file}: ${reason(err)}`);
  }
  removeLeaseDir(list);
}

/** host-local keeps a network's leases in /var/lib/cni/networks/NAME (unless the config names
 *  another dataDir) and never removes the directory: once the network is gone and it holds no
 *  lease (only its lock and last_reserved_ip files), it goes with it. */
function removeLeaseDir(list: NetworkList): void {
  const usesDefaultDir = list.plugins.some((p) => isObject(p.ipam) && p.ipam.type === 'host-local' && p.ipam.dataDir === undefined);
  if (!usesDefaultDir) return;
  const dir = path.join(HOST_LOCAL_DIR, list.name);
  try {
    if (!fs.readdirSync(dir).every((f) => f === 'lock' || f.startsWith('last_reserved_ip'))) return;
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // no such directory: nothing was ever leased
  }
}

/** What `husk network ls` shows of a network. */
export function networkSummary(list: NetworkList): NetworkSummary {
  return { name: list.name, driver: list.plugins[0].type, subnets: subnetsOf(list), file: list.file };
}

/** The subnets of a network's host-local style IPAM: `ranges: [[{subnet}]]` (spec 0.3.0 on)
 * or `subnet` (the older form), of every plugin that has an "ipam". */
function subnetsOf(list: NetworkList): string[] {
  const out: string[] = [];
  for (const plugin of list.plugins) {
    const ipam = plugin.ipam;
    if (!isObject(ipam)) continue;
    if (Array.isArray(ipam.ranges)) {
      for (const set of ipam.ranges) {
        if (!Array.isArray(set)) continue;
        for (const range of set) if (isObject(range) && typeof range.subnet === 'string') out.push(range.subnet);
      }
    }
    if (typeof ipam.subnet === 'string') out.push(ipam.subnet);
  }
  return [...new Set(out)];
}

// ---------------------------------------------------------------------------------------------
// Writing a file that must not replace another

let written = 0;

/** Writes JSON as dir/base (mode 0644) unless that file exists; returns its path, or undefined
 * when it existed. */
function writeNewFile(dir: string, base: string, json: Record<string, unknown>): string | undefined {
  const file = path.join(dir, base);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new HuskError(`cannot make ${dir}: ${reason(err)}`);
  }
  // pid, thread (the warm server runs calls in threads) and a count: unique among writers.
  const tmp = path.join(dir, `.husk-${process.pid}-${threadId}-${written++}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, JSON.stringify(json, null, 2) + '\n');
      fs.fchmodSync(fd, 0o644); // whatever the umask
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(tmp, file);
    return file;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (err as NodeJS.ErrnoException).syscall === 'link') return undefined;
    throw new HuskError(`cannot write ${file}: ${reason(err)}`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** After writing `file`: throws when another network of the directory now overlaps `subnet`
 * or has the same bridge, or an earlier file has taken the name. */
function clashAfterWrite(configDir: string, name: string, file: string, subnet: Ipv4Net): void {
  const { networks, problems } = listNetworks(configDir);
  const mine = networks.find((n) => n.file === file);
  if (!mine) throw new HuskError(`network "${name}": ${problems.find((p) => p.startsWith(file)) ?? `${file} was replaced while it was written`}`);
  const others = networks.filter((n) => n !== mine);
  const other = takenSubnets(others, name).find((t) => overlaps(t.net, subnet) && t.file);
  if (other) throw new HuskError(`network "${other.network}" (${other.file}) was created at the same time with an overlapping subnet ${formatNet(other.net)}: try again`);
  const bridges = bridgesOf(others);
  for (const b of bridgesOf([mine])) {
    if (bridges.has(b)) throw new HuskError(`another network was created at the same time with bridge ${b}: try again`);
  }
}

// ---------------------------------------------------------------------------------------------
// Subnets, gateways, interface names

interface Ipv4Net {
  /** The network address, as a number (0 to 2^32 - 1). */
  base: number;
  prefix: number;
}

interface TakenSubnet {
  net: Ipv4Net;
  network: string;
  file?: string;
}

/** Strictly A.B.C.D, each 0-255 in decimal without leading zeros; undefined otherwise. */
function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function formatNet(net: Ipv4Net): string {
  return `${formatIpv4(net.base)}/${net.prefix}`;
}

const size = (net: Ipv4Net) => 2 ** (32 - net.prefix);
const last = (net: Ipv4Net) => net.base + size(net) - 1;
const overlaps = (a: Ipv4Net, b: Ipv4Net) => a.base <= last(b) && b.base <= last(a);

/** An IPv4 CIDR, A.B.C.D/PREFIX with no host bits set; the error says what is wrong. */
function parseSubnet(text: string): Ipv4Net {
  const bad = (why: string) => new HuskError(`subnet ${JSON.stringify(text)}: ${why}`);
  const m = /^([^/]*)\/([^/]*)$/.exec(text);
  if (!m) throw bad('not an IPv4 subnet like 10.74.0.0/24 (no /PREFIX)');
  const [, address, prefixText] = m;
  if (address.includes(':')) throw bad('IPv6 subnets are not supported: an IPv4 subnet like 10.74.0.0/24');
  const octets = address.split('.');
  if (octets.length !== 4) throw bad(`${JSON.stringify(address)} is not 4 numbers separated by dots`);
  for (const o of octets) {
    if (!/^[0-9]+$/.test(o)) throw bad(`${JSON.stringify(o)} is not a number from 0 to 255`);
    if (o.length > 1 && o.startsWith('0')) throw bad(`${JSON.stringify(o)} has a leading zero`);
    if (Number(o) > 255) throw bad(`${o} is not a number from 0 to 255`);
  }
  if (!/^(0|[1-9][0-9]*)$/.test(prefixText) || Number(prefixText) > 32) throw bad(`prefix ${JSON.stringify(prefixText)} is not a number from 0 to 32`);
  const net: Ipv4Net = { base: parseIpv4(address)!, prefix: Number(prefixText) };
  const hostBits = net.base % size(net);
  if (hostBits !== 0) throw bad(`host bits are set (the network is ${formatIpv4(net.base - hostBits)}/${net.prefix})`);
  return net;
}

/** A gateway address: inside the subnet, and neither its network nor its broadcast address. */
function parseGateway(text: string, subnet: Ipv4Net): number {
  const gw = parseIpv4(text);
  if (gw === undefined) throw new HuskError(`gateway ${JSON.stringify(text)}: not an IPv4 address like 10.74.0.1`);
  if (gw < subnet.base || gw > last(subnet)) throw new HuskError(`gateway ${text} is not in the subnet ${formatNet(subnet)}`);
  if (gw === subnet.base) throw new HuskError(`gateway ${text} is the network address of ${formatNet(subnet)}`);
  if (gw === last(subnet)) throw new HuskError(`gateway ${text} is the broadcast address of ${formatNet(subnet)}`);
  return gw;
}

/** The IPv4 subnets of the directory's networks (others' IPv6 ones never overlap ours), and
 * the default network's while it is not written yet (it will be, on first use). */
function takenSubnets(networks: NetworkList[], creating: string): TakenSubnet[] {
  const taken: TakenSubnet[] = [];
  for (const n of networks) {
    for (const s of subnetsOf(n)) {
      try {
        taken.push({ net: parseSubnet(s), network: n.name, file: n.file });
      } catch {
        // not IPv4, or not one we could ever overlap
      }
    }
  }
  if (creating !== DEFAULT_NETWORK && !networks.some((n) => n.name === DEFAULT_NETWORK)) {
    taken.push({ net: parseSubnet(DEFAULT_SUBNET), network: DEFAULT_NETWORK });
  }
  return taken;
}

function freeSubnet(taken: TakenSubnet[]): Ipv4Net {
  const first = parseIpv4(AUTOMATIC_SUBNETS.first)!;
  for (let n = 0; n < AUTOMATIC_SUBNETS.count; n++) {
    const net: Ipv4Net = { base: first + n * 2 ** (32 - AUTOMATIC_SUBNETS.prefix), prefix: AUTOMATIC_SUBNETS.prefix };
    if (!taken.some((t) => overlaps(t.net, net))) return net;
  }
  throw new HuskError(`every subnet ${AUTOMATIC_SUBNETS.text} is taken by a network of the directory: give one`);
}

/** The bridges the directory's networks use (the bridge plugin's default is cni0). */
function bridgesOf(networks: NetworkList[]): Set<string> {
  const out = new Set<string>();
  for (const n of networks) {
    for (const p of n.plugins) if (p.type === 'bridge') out.add(typeof p.bridge === 'string' ? p.bridge : 'cni0');
  }
  return out;
}

/** husk-NAME, cut to IFNAMSIZ - 1; with a number at the end when a network of the directory
 * or a link of the host already has it (the bridge plugin would take over an existing bridge,
 * with whatever addresses and containers it has). */
function bridgeName(name: string, networks: NetworkList[]): string {
  const taken = bridgesOf(networks);
  let links: string[] = [];
  try {
    links = fs.readdirSync(SYS_CLASS_NET);
  } catch {
    // no sysfs: the networks' bridges are all we know
  }
  for (const l of links) taken.add(l);
  const base = `husk-${name}`.slice(0, IFNAME_MAX);
  if (!taken.has(base)) return base;
  for (let n = 1; n < 1000; n++) {
    const candidate = base.slice(0, IFNAME_MAX - String(n).length) + n;
    if (!taken.has(candidate)) return candidate;
  }
  throw new HuskError(`network "${name}": no free bridge name like ${base}N`);
}

/** A parent interface: a name the kernel could have, and a link that exists. */
function checkParent(parent: string): void {
  if (parent === '' || parent.length > IFNAME_MAX || parent === '.' || parent === '..' || /[/\s:]/.test(parent)) {
    throw new HuskError(`parent interface ${JSON.stringify(parent)} is not an interface name`);
  }
  if (!fs.existsSync(path.join(SYS_CLASS_NET, parent))) throw new HuskError(`parent interface "${parent}" does not exist (no ${SYS_CLASS_NET}/${parent})`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
