// What a container asks of its network, as `husk image run` and `husk image bundle` take it on
// the command line and as the createRuntime hook (`husk network attach ...`) carries it in
// config.json: the network, the published ports, the names for /etc/hosts, and where the CNI
// configurations and plugins are.
import { isIPv4, isIPv6 } from 'net';
import * as path from 'path';
import { HuskError } from '../errors';
import { DEFAULT_PLUGIN_DIRS, ID_PATTERN, type PortMapping } from './cni';

export const DEFAULT_CONFIG_DIR = '/etc/cni/net.d';

/** The network `--net bridge` means: written into the configuration directory on first use. */
export const DEFAULT_NETWORK = 'husk';

export interface AttachOptions {
  /** The network's name in the configuration directory (`bridge` already turned into `husk`). */
  network: string;
  ports: PortMapping[];
  /** The container's hostname, written with its address into the hosts file. */
  hostname?: string;
  /** The bundle's hosts file (bind-mounted at /etc/hosts), to which attach adds the address. */
  hostsFile?: string;
  configDir: string;
  pluginDirs: string[];
  /** The interface inside the container (default eth0; a second network's is eth1...). */
  ifName?: string;
}

/** --cni-config-dir, else $HUSK_CNI_CONFIG_DIR, else /etc/cni/net.d. */
export function configDirOf(flag?: string): string {
  return flag || process.env.HUSK_CNI_CONFIG_DIR || DEFAULT_CONFIG_DIR;
}

/** --cni-plugin-dir (repeatable), else $HUSK_CNI_PLUGIN_DIR (a colon list), else /usr/lib/cni, /opt/cni/bin. */
export function pluginDirsOf(flags?: string[]): string[] {
  if (flags?.length) return flags;
  const env = process.env.HUSK_CNI_PLUGIN_DIR;
  if (env) return env.split(':').filter(Boolean);
  return DEFAULT_PLUGIN_DIRS;
}

/** The words after `husk network attach` in the hook: what parseAttachArgs reads back. */
export function attachArgs(o: AttachOptions): string[] {
  const args = ['--net', o.network, '--cni-config-dir', o.configDir];
  for (const dir of o.pluginDirs) args.push('--cni-plugin-dir', dir);
  for (const p of o.ports) args.push('-p', formatPublish(p));
  if (o.hostname !== undefined) args.push('--hostname', o.hostname);
  if (o.hostsFile !== undefined) args.push('--hosts', o.hostsFile);
  if (o.ifName !== undefined) args.push('--ifname', o.ifName);
  return args;
}

export function parseAttachArgs(args: string[]): AttachOptions {
  const o: AttachOptions = { network: '', ports: [], configDir: '', pluginDirs: [] };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = args[i + 1];
    if (value === undefined) throw new HuskError(`${flag} needs a value`);
    i++;
    switch (flag) {
      case '--net': o.network = value; break;
      case '--cni-config-dir': o.configDir = value; break;
      case '--cni-plugin-dir': o.pluginDirs.push(value); break;
      case '-p': o.ports.push(parsePublish(value)); break;
      case '--hostname': o.hostname = value; break;
      case '--hosts': o.hostsFile = value; break;
      case '--ifname':
        if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(value)) throw new HuskError(`--ifname ${JSON.stringify(value)}: an interface name of 1 to 15 letters, digits, _ . -`);
        o.ifName = value;
        break;
      default: throw new HuskError(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
  if (!o.network) throw new HuskError('--net is required');
  o.configDir = configDirOf(o.configDir);
  o.pluginDirs = pluginDirsOf(o.pluginDirs);
  return o;
}

const PORT_RANGE = /^\d+-\d+$/;

function publishPort(text: string, what: 'host' | 'container', bad: (why: string) => HuskError): number {
  if (PORT_RANGE.test(text)) throw bad('port ranges are not supported: publish each port with its own -p');
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    const hint = what === 'host' && (isIPv4(text) || isIPv6(text)) ? ' (with an IP, give IP:HOST:CONTAINER)' : '';
    throw bad(`${what} port ${JSON.stringify(text)} is not a number from 1 to 65535${hint}`);
  }
  return Number(text);
}

/**
 * -p [IP:]HOST:CONTAINER[/tcp|/udp]: Docker's form, with both ports given (husk picks no
 * random host port), one port each (no ranges), an IPv6 address in brackets ([::1]:8080:80).
 */
export function parsePublish(text: string): PortMapping {
  const bad = (why: string) => new HuskError(`-p ${JSON.stringify(text)}: ${why}`);
  let rest = text;
  let protocol: PortMapping['protocol'] = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto === 'sctp') throw bad('sctp is not supported (tcp or udp)');
    if (proto !== 'tcp' && proto !== 'udp') throw bad(`unknown protocol ${JSON.stringify(rest.slice(slash + 1))} (tcp or udp)`);
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  let hostIP: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw bad('the IPv6 address has no closing "]"');
    hostIP = rest.slice(1, close);
    if (!isIPv6(hostIP) || hostIP.includes('%')) throw bad(`${JSON.stringify(hostIP)} is not an IPv6 address`);
    if (rest[close + 1] !== ':') throw bad('expected ":" after the IPv6 address ([IP]:HOST:CONTAINER)');
    rest = rest.slice(close + 2);
  }
  const parts = rest.split(':');
  if (hostIP === undefined && parts.length === 3) {
    hostIP = parts.shift()!;
    if (hostIP === '') throw bad('the host IP is empty (leave it out to publish on every address)');
    if (isIPv6(hostIP)) throw bad('an IPv6 address must be in brackets ([IP]:HOST:CONTAINER)');
    if (!isIPv4(hostIP)) throw bad(`${JSON.stringify(hostIP)} is not an IP address`);
  }
  if (parts.length > 2) throw bad(hostIP === undefined && isIPv6(parts.slice(0, -2).join(':')) ? 'an IPv6 address must be in brackets ([IP]:HOST:CONTAINER)' : 'expected [IP:]HOST:CONTAINER[/tcp|/udp]');
  if (parts.length < 2 || parts[0] === '') {
    throw bad('a host port is needed ([IP:]HOST:CONTAINER, such as -p 8080:80)');
  }
  if (parts[1] === '') throw bad('the container port is empty ([IP:]HOST:CONTAINER)');
  const hostPort = publishPort(parts[0], 'host', bad);
  const containerPort = publishPort(parts[1], 'container', bad);
  return { hostPort, containerPort, protocol, ...(hostIP !== undefined ? { hostIP } : {}) };
}

/** The -p text of a mapping (parsePublish's inverse). */
export function formatPublish(p: PortMapping): string {
  const ip = p.hostIP ? (p.hostIP.includes(':') ? `[${p.hostIP}]:` : `${p.hostIP}:`) : '';
  return `${ip}${p.hostPort}:${p.containerPort}/${p.protocol}`;
}

/** An address in one spelling (::0:1 and ::1 are the same), '' for every address. */
function canonicalIP(ip: string | undefined): string {
  if (!ip || ip === '0.0.0.0' || ip === '::') return '';
  return isIPv6(ip) ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/**
 * Two -p that would bind the same host port: same protocol and port, and the same address or
 * one of them on every address. Throws for the second of them.
 */
export function checkPublishConflicts(ports: PortMapping[]): void {
  for (let i = 0; i < ports.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = ports[j];
      const b = ports[i];
      if (a.protocol !== b.protocol || a.hostPort !== b.hostPort) continue;
      const ipA = canonicalIP(a.hostIP);
      const ipB = canonicalIP(b.hostIP);
      if (ipA === '' || ipB === '' || ipA === ipB) {
        throw new HuskError(`-p ${JSON.stringify(formatPublish(b))}: host port ${b.hostPort}/${b.protocol} is already published by -p ${JSON.stringify(formatPublish(a))}`);
      }
    }
  }
}

export interface HostEntry {
  name: string;
  ip: string;
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/**
 * --add-host NAME:IP (or NAME=IP), Docker's. The name has no ':', so the first ':' ends it
 * (host:::1 is host and ::1); an IPv6 address may also be in brackets.
 */
export function parseAddHost(text: string): HostEntry {
  const bad = (why: string) => new HuskError(`--add-host ${JSON.stringify(text)}: ${why}`);
  const eq = text.indexOf('=');
  const colon = text.indexOf(':');
  const at = eq >= 0 && (colon < 0 || eq < colon) ? eq : colon;
  if (at < 0) throw bad('expected NAME:IP');
  const name = text.slice(0, at);
  let ip = text.slice(at + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (name === '') throw bad('the host name is empty (NAME:IP)');
  if (!HOST_NAME.test(name) || name.length > 253) throw bad(`${JSON.stringify(name)} is not a host name (letters, digits, "." and "-")`);
  if (ip === '') throw bad('the IP address is empty (NAME:IP)');
  if (ip === 'host-gateway') throw bad('host-gateway is not supported: give the address');
  if (!isIPv4(ip) && !isIPv6(ip)) throw bad(`${JSON.stringify(ip)} is not an IP address`);
  return { name, ip };
}

/** --dns IP: a nameserver for the container's resolv.conf. */
export function parseDns(text: string): string {
  if (!isIPv4(text) && !isIPv6(text)) throw new HuskError(`--dns ${JSON.stringify(text)}: not an IP address`);
  return text;
}

/** The network a container is on, as the bundle takes it. */
export type NetworkMode = 'none' | 'host' | { attach: AttachOptions };

/** The network flags of `husk image run` and `husk image bundle`, as commander gives them. */
export interface NetworkFlags {
  network?: string;
  /** --hostname: it goes into /etc/hosts, so it is checked here. */
  hostname?: string;
  publish?: string[];
  dns?: string[];
  addHost?: string[];
  cniConfigDir?: string;
  cniPluginDir?: string[];
}

export interface ContainerNetwork {
  network: NetworkMode;
  dns: string[];
  addHosts: HostEntry[];
}

/**
 * The network flags checked and turned into what the bundle needs: --net none, host, bridge
 * (the network `husk`) or a network's name; the configuration and plugin directories as
 * absolute paths (the hook runs from elsewhere). Only reads: whether the network exists is
 * for the caller to check.
 */
/** --hostname: labels of letters, digits and "-" (not first or last), split by ".", at most
 * 253 characters (RFC 1123); anything else would not be one name in /etc/hosts. */
export function checkHostname(name: string): void {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (name.length > 253 || !name.split('.').every((l) => label.test(l))) {
    throw new HuskError(`--hostname ${JSON.stringify(name)}: expected a host name (letters, digits and "-" in labels of up to 63, split by ".")`);
  }
}

export function containerNetwork(f: NetworkFlags): ContainerNetwork {
  const mode = f.network ?? 'none';
  if (f.hostname !== undefined) checkHostname(f.hostname);
  const dns = (f.dns ?? []).map(parseDns);
  const addHosts = (f.addHost ?? []).map(parseAddHost);
  const ports = (f.publish ?? []).map(parsePublish);
  if (mode === 'none' || mode === 'host') {
    // --cni-config-dir and --cni-plugin-dir say where networks are, and mean nothing here: a
    // script may pass them whatever --net it chooses. -p would be lost, so it is refused.
    if (ports.length) throw new HuskError(`-p needs a network: --net bridge or a network name (not --net ${mode})`);
    return { network: mode, dns, addHosts };
  }
  if (!ID_PATTERN.test(mode)) {
    throw new HuskError(`--net ${JSON.stringify(mode)}: expected none, host, bridge or a network name (a letter or digit, then letters, digits, "_", "." or "-")`);
  }
  checkPublishConflicts(ports);
  for (const dir of f.cniPluginDir ?? []) if (dir === '') throw new HuskError('--cni-plugin-dir: the directory is empty');
  if (f.cniConfigDir === '') throw new HuskError('--cni-config-dir: the directory is empty');
  const attach: AttachOptions = {
    network: mode === 'bridge' ? DEFAULT_NETWORK : mode,
    ports,
    configDir: path.resolve(configDirOf(f.cniConfigDir)),
    pluginDirs: pluginDirsOf(f.cniPluginDir).map((d) => path.resolve(d)),
  };
  return { network: { attach }, dns, addHosts };
}
