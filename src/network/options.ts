// What a container asks of its network, as `husk image run` and `husk image bundle` take it on
// the command line and as the createRuntime hook (`husk network attach ...`) carries it in
// config.json: the network, the published ports, the names for /etc/hosts, and where the CNI
// configurations and plugins are.
import { HuskError } from '../errors';
import { DEFAULT_PLUGIN_DIRS, type PortMapping } from './cni';

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
  return args;
}

export function parseAttachArgs(args: string[]): AttachOptions {
  const o: AttachOptions = { network: '', ports: [], configDir: '', pluginDirs: [] };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = args[i + 1];
    if (value === undefined) throw new HuskError(`network attach: ${flag} needs a value`);
    i++;
    switch (flag) {
      case '--net': o.network = value; break;
      case '--cni-config-dir': o.configDir = value; break;
      case '--cni-plugin-dir': o.pluginDirs.push(value); break;
      case '-p': o.ports.push(parsePublish(value)); break;
      case '--hostname': o.hostname = value; break;
      case '--hosts': o.hostsFile = value; break;
      default: throw new HuskError(`network attach: unknown flag ${JSON.stringify(flag)}`);
    }
  }
  if (!o.network) throw new HuskError('network attach: --net is required');
  o.configDir = configDirOf(o.configDir);
  o.pluginDirs = pluginDirsOf(o.pluginDirs);
  return o;
}

/** -p [IP:]HOST:CONTAINER[/tcp|/udp] (Docker's form, with both ports given). */
export function parsePublish(text: string): PortMapping {
  throw new HuskError(`-p ${JSON.stringify(text)}: not implemented yet`);
}

/** The -p text of a mapping (parsePublish's inverse). */
export function formatPublish(p: PortMapping): string {
  const ip = p.hostIP ? (p.hostIP.includes(':') ? `[${p.hostIP}]:` : `${p.hostIP}:`) : '';
  return `${ip}${p.hostPort}:${p.containerPort}/${p.protocol}`;
}

/** --add-host NAME:IP */
export function parseAddHost(text: string): { name: string; ip: string } {
  throw new HuskError(`--add-host ${JSON.stringify(text)}: not implemented yet`);
}
