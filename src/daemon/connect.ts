// `docker network connect` and `disconnect`: a container joins or leaves a network besides the
// one it was created on. A running container is attached at once (CNI ADD into its network
// namespace, on the next free interface: eth1, eth2...); a container not running yet gets the
// attach hook in its config.json, so the runtime attaches it at start like its first network.
// Either way the record lists the network, and the hosts files of the network's containers
// learn its names.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { HUSK_BIN } from '../host/huskBin';
import { attach, detachFrom } from '../network/attach';
import { attachArgs, configDirOf, parseAttachArgs, pluginDirsOf, type AttachOptions } from '../network/options';
import type { Spec } from '../spec/types';
import { ApiError, badRequest, checkFields, type Route } from './api';
import type { DaemonContext } from './context';
import { isRunning, networkSettings, networksOf } from './lifecycle';
import { clearHosts, resolveNetwork, syncHosts } from './networks';
import { findRecord, readRecord, writeRecord, type ContainerRecord } from './records';

const CONNECT_FIELDS = ['Container', 'EndpointConfig'];
const ENDPOINT_FIELDS = ['IPAMConfig', 'Links', 'Aliases', 'NetworkID', 'EndpointID', 'Gateway', 'IPAddress', 'IPPrefixLen', 'IPv6Gateway', 'GlobalIPv6Address', 'GlobalIPv6PrefixLen', 'MacAddress', 'DriverOpts', 'DNSNames', 'GwPriority'];
const DISCONNECT_FIELDS = ['Container', 'Force'];

function configPath(r: ContainerRecord): string {
  return path.join(r.husk.bundle, 'config.json');
}

/** The bundle's createRuntime attach hooks, as AttachOptions, with the rest of its spec. */
function attachHooks(r: ContainerRecord): { spec: Spec; hooks: { index: number; o: AttachOptions }[] } {
  const spec = JSON.parse(fs.readFileSync(configPath(r), 'utf8')) as Spec;
  const hooks: { index: number; o: AttachOptions }[] = [];
  (spec.hooks?.createRuntime ?? []).forEach((h, index) => {
    const args = h.args ?? [];
    if (args[1] === 'network' && args[2] === 'attach') hooks.push({ index, o: parseAttachArgs(args.slice(3)) });
  });
  return { spec, hooks };
}

/** The first interface name eth1, eth2... no network of the container has. */
function freeInterface(r: ContainerRecord): string {
  const taken = new Set(['eth0', ...(r.husk.connected ?? []).map((c) => c.ifName)]);
  for (let n = 1; ; n++) if (!taken.has(`eth${n}`)) return `eth${n}`;
}

function aliasesOf(endpoint: Record<string, unknown>): string[] | undefined {
  const a = endpoint.Aliases;
  if (a === undefined || a === null) return undefined;
  if (!Array.isArray(a) || a.some((x) => typeof x !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(x))) throw badRequest('EndpointConfig.Aliases must be a list of host names');
  return a as string[];
}

async function connect(ctx: DaemonContext, networkRef: string, body: Record<string, unknown>): Promise<void> {
  const n = resolveNetwork(ctx, networkRef);
  if (typeof body.Container !== 'string') throw badRequest('network connect: Container is required');
  const r = findRecord(ctx, body.Container);
  const mode = String(r.HostConfig.NetworkMode ?? 'bridge');
  if (n.cni === 'host' || n.cni === 'none' || mode === 'host' || mode === 'none' || mode.startsWith('container:')) {
    throw badRequest('container sharing network namespace with another container or host cannot be connected to any other network');
  }
  if (networksOf(r).includes(n.cni)) throw new ApiError(403, `endpoint with name ${r.Name.slice(1)} already exists in network ${n.name}`);
  const endpoint = checkFields(body.EndpointConfig, 'EndpointConfig', ENDPOINT_FIELDS);
  const ipam = endpoint.IPAMConfig as Record<string, unknown> | null | undefined;
  if (ipam && Object.values(ipam).some((v) => v)) throw badRequest('EndpointConfig.IPAMConfig: husk does not support fixed addresses yet');
  const aliases = aliasesOf(endpoint);
  const ifName = freeInterface(r);
  const o: AttachOptions = {
    network: n.cni, ports: [], configDir: path.resolve(configDirOf(ctx.o.cniConfigDir)), pluginDirs: pluginDirsOf(ctx.o.cniPluginDirs),
    hostname: String(r.Config.Hostname ?? ''), hostsFile: r.HostsPath, ifName,
  };
  // The hook first: a container that starts later (or again) is attached by it.
  const { spec } = attachHooks(r);
  spec.hooks = { ...(spec.hooks ?? {}), createRuntime: [...(spec.hooks?.createRuntime ?? []), { path: HUSK_BIN, args: [HUSK_BIN, 'network', 'attach', ...attachArgs(o)] }] };
  if (!spec.hooks.poststop?.some((h) => h.args?.[1] === 'network' && h.args?.[2] === 'detach')) {
    spec.hooks.poststop = [{ path: HUSK_BIN, args: [HUSK_BIN, 'network', 'detach'] }, ...(spec.hooks.poststop ?? [])];
  }
  const before = fs.readFileSync(configPath(r), 'utf8');
  fs.writeFileSync(configPath(r), JSON.stringify(spec, null, 2) + '\n');
  try {
    if (isRunning(r)) await attach(o, { id: r.Id, pid: r.State.Pid, bundle: r.husk.bundle });
  } catch (err) {
    fs.writeFileSync(configPath(r), before);
    throw badRequest(`network connect: ${reason(err)}`);
  }
  const now = readRecord(ctx, r.Id) ?? r;
  now.husk.connected = [...(now.husk.connected ?? []), { name: n.name, cni: n.cni, aliases, ifName }];
  now.NetworkSettings = networkSettings(ctx, now);
  writeRecord(ctx, now);
  syncHosts(ctx, n.cni);
  ctx.events.emit('network', 'connect', n.id, { container: r.Id, name: n.name, type: 'bridge' });
}

async function disconnect(ctx: DaemonContext, networkRef: string, body: Record<string, unknown>): Promise<void> {
  const n = resolveNetwork(ctx, networkRef);
  if (typeof body.Container !== 'string') throw badRequest('network disconnect: Container is required');
  const r = findRecord(ctx, body.Container);
  if (!networksOf(r).includes(n.cni)) {
    if (body.Force) return;
    throw badRequest(`container ${r.Id} is not connected to network ${n.name}`);
  }
  // Its hook goes, so that a later start does not attach it again.
  const { spec, hooks } = attachHooks(r);
  const drop = new Set(hooks.filter((h) => h.o.network === n.cni).map((h) => h.index));
  if (spec.hooks?.createRuntime) spec.hooks.createRuntime = spec.hooks.createRuntime.filter((_, i) => !drop.has(i));
  fs.writeFileSync(configPath(r), JSON.stringify(spec, null, 2) + '\n');
  if (isRunning(r)) {
    try {
      await detachFrom({ id: r.Id, pid: r.State.Pid, bundle: r.husk.bundle }, n.cni);
    } catch (err) {
      throw new ApiError(500, `network disconnect: ${err instanceof HuskError ? err.message : reason(err)}`);
    }
  }
  const now = readRecord(ctx, r.Id) ?? r;
  if (now.husk.network === n.cni) {
    now.husk.network = undefined;
    now.HostConfig.NetworkMode = 'none';
  }
  now.husk.connected = (now.husk.connected ?? []).filter((c) => c.cni !== n.cni);
  now.NetworkSettings = networkSettings(ctx, now);
  writeRecord(ctx, now);
  clearHosts(r.HostsPath, n.cni);
  syncHosts(ctx, n.cni);
  ctx.events.emit('network', 'disconnect', n.id, { container: r.Id, name: n.name, type: 'bridge' });
}

export function routes(ctx: DaemonContext): Route[] {
  return [
    {
      method: 'POST',
      path: '/networks/{id}/connect',
      async handle(req, res) {
        await connect(ctx, req.params.id, checkFields(await req.json({}), 'network connect', CONNECT_FIELDS));
        res.empty(200);
      },
    },
    {
      method: 'POST',
      path: '/networks/{id}/disconnect',
      async handle(req, res) {
        await disconnect(ctx, req.params.id, checkFields(await req.json({}), 'network disconnect', DISCONNECT_FIELDS));
        res.empty(200);
      },
    },
  ];
}
