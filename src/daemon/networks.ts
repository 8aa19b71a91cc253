// Docker's networks over husk's CNI networks (src/network/): `bridge` is husk's default network
// `husk`, a user network is NAME.conflist in the CNI directory, `host` and `none` are the
// modes that use no CNI network. What CNI has no place for (labels, the creation time, the id
// Docker clients look networks up by) is kept beside, in the data root's networks/NAME.json.
//
// Names: Docker has an embedded DNS server on user networks. husk has none; instead the daemon
// keeps the hosts file of every container on a network listing the others (their names and
// aliases), rewritten whenever one joins or leaves (syncHosts). A client then reaches a server
// by its Compose service name, as with Docker.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { writeFileAtomic } from '../host/atomicWrite';
import { attachedTo, listRecords, type AttachRecord } from '../network/attach';
import { listNetworks, resultAddresses, type NetworkList } from '../network/cni';
import { createNetwork, removeNetwork, DEFAULT_SUBNET } from '../network/networks';
import { configDirOf, DEFAULT_NETWORK } from '../network/options';
import { ApiError, badRequest, checkFields, conflict, filtersParam, labelsMatch, notFound, type Route } from './api';
import type { DaemonContext } from './context';
import { readRecord } from './records';

/** What the daemon keeps of a network that CNI does not. */
interface NetworkMeta {
  Id: string;
  Created: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Attachable: boolean;
}

export interface ResolvedNetwork {
  /** The name clients see (`bridge`, `host`, `none`, or the user network's). */
  name: string;
  id: string;
  /** The CNI network's name, or the mode that has none. */
  cni: string | 'host' | 'none';
}

const PREDEFINED = ['bridge', 'host', 'none'];

/** Docker's ids are 64 hex digits; a network's is derived from its name, so that the same
 * network keeps its id whoever lists it. */
export function networkId(name: string): string {
  return createHash('sha256').update(`husk network ${name}`).digest('hex');
}

function configDir(ctx: DaemonContext): string {
  return path.resolve(configDirOf(ctx.o.cniConfigDir));
}

function metaDir(ctx: DaemonContext): string {
  return path.join(ctx.o.dataRoot, 'networks');
}

function readMeta(ctx: DaemonContext, name: string): NetworkMeta {
  try {
    return JSON.parse(fs.readFileSync(path.join(metaDir(ctx), `${name}.json`), 'utf8')) as NetworkMeta;
  } catch {
    return { Id: networkId(name), Created: new Date(0).toISOString(), Labels: {}, Options: {}, Attachable: false };
  }
}

function writeMeta(ctx: DaemonContext, name: string, meta: NetworkMeta): void {
  fs.mkdirSync(metaDir(ctx), { recursive: true, mode: 0o700 });
  writeFileAtomic(path.join(metaDir(ctx), `${name}.json`), JSON.stringify(meta) + '\n');
}

/** The user networks of the CNI directory (not the default one, which is `bridge`). */
function userNetworks(ctx: DaemonContext): NetworkList[] {
  return listNetworks(configDir(ctx)).networks.filter((n) => n.name !== DEFAULT_NETWORK);
}

/** Every network by the name clients see: the three predefined ones, then the user networks. */
function allNames(ctx: DaemonContext): string[] {
  return [...PREDEFINED, ...userNetworks(ctx).map((n) => n.name)];
}

/** A network by name, full id or unique id prefix, as Docker finds one. */
export function resolveNetwork(ctx: DaemonContext, ref: string): ResolvedNetwork {
  const names = allNames(ctx);
  const byName = names.find((n) => n === ref);
  const found = byName ?? (() => {
    const matches = /^[0-9a-f]+$/.test(ref) ? names.filter((n) => networkId(n).startsWith(ref)) : [];
    if (matches.length > 1) throw badRequest(`network ${ref} is ambiguous (${matches.length} matches found based on ID prefix)`);
    return matches[0];
  })();
  if (!found) throw notFound(`network ${ref} not found`);
  return { name: found, id: networkId(found), cni: found === 'bridge' ? DEFAULT_NETWORK : found };
}

/** The subnet and gateway of a network's IPAM, as Docker's IPAM.Config shows them. */
function ipamConfig(list: NetworkList | undefined, name: string): { Subnet: string; Gateway?: string }[] {
  if (!list) return name === 'bridge' ? [{ Subnet: DEFAULT_SUBNET, Gateway: DEFAULT_SUBNET.replace(/0\/16$/, '1') }] : [];
  const out: { Subnet: string; Gateway?: string }[] = [];
  for (const plugin of list.plugins) {
    const ipam = plugin.ipam as { ranges?: { subnet?: string; gateway?: string }[][]; subnet?: string; gateway?: string } | undefined;
    for (const set of ipam?.ranges ?? []) for (const r of set) if (r.subnet) out.push({ Subnet: r.subnet, ...(r.gateway ? { Gateway: r.gateway } : {}) });
    if (ipam?.subnet) out.push({ Subnet: ipam.subnet, ...(ipam.gateway ? { Gateway: ipam.gateway } : {}) });
  }
  return out;
}

/** The interface and address of an attachment, from its CNI result. */
function endpointOf(r: AttachRecord): { mac: string; ipv4: string; ipv6: string } {
  const result = r.result ?? {};
  const addresses = resultAddresses(result);
  const interfaces = (Array.isArray(result.interfaces) ? result.interfaces : []) as { name?: string; mac?: string; sandbox?: string }[];
  const inside = interfaces.find((i) => i.sandbox) ?? interfaces[0];
  // Docker's network inspect shows ADDRESS/PREFIX; the hosts files want the address alone.
  return {
    mac: inside?.mac ?? '',
    ipv4: addresses.find((a) => !a.includes(':')) ?? '',
    ipv6: addresses.find((a) => a.includes(':')) ?? '',
  };
}

/** A container's name from the daemon's record (without its leading slash). */
function containerName(ctx: DaemonContext, id: string): string | undefined {
  return readRecord(ctx, id)?.Name.replace(/^\//, '');
}

function inspect(ctx: DaemonContext, name: string, lists = userNetworks(ctx)) {
  const list = name === 'bridge' ? listNetworks(configDir(ctx)).networks.find((n) => n.name === DEFAULT_NETWORK) : lists.find((n) => n.name === name);
  const meta = readMeta(ctx, name);
  const cni = name === 'bridge' ? DEFAULT_NETWORK : name;
  const containers: Record<string, unknown> = {};
  if (name !== 'host' && name !== 'none') {
    for (const r of attachedTo(cni, configDir(ctx))) {
      if (!r.result) continue;
      const e = endpointOf(r);
      containers[r.containerId] = { Name: containerName(ctx, r.containerId) ?? r.containerId, EndpointID: r.attachId, MacAddress: e.mac, IPv4Address: e.ipv4, IPv6Address: e.ipv6 };
    }
  }
  const driver = name === 'host' ? 'host' : name === 'none' ? 'null' : list?.plugins[0]?.type ?? 'bridge';
  const internal = Boolean(list && list.plugins[0]?.type === 'bridge' && list.plugins[0].ipMasq === false);
  return {
    Name: name,
    Id: meta.Id,
    Created: meta.Created,
    Scope: 'local',
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: ipamConfig(list, name) },
    Internal: internal,
    Attachable: meta.Attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: { ...meta.Options, ...(list ? { 'husk.cni.conflist': list.file } : {}) },
    Labels: meta.Labels,
  };
}

const CREATE_FIELDS = ['Name', 'CheckDuplicate', 'Driver', 'Scope', 'Internal', 'Attachable', 'Ingress', 'ConfigOnly', 'ConfigFrom', 'IPAM', 'EnableIPv6', 'Options', 'Labels'];
const IPAM_FIELDS = ['Driver', 'Config', 'Options'];
const IPAM_CONFIG_FIELDS = ['Subnet', 'IPRange', 'Gateway', 'AuxiliaryAddresses'];
const LIST_FILTERS = ['dangling', 'driver', 'id', 'label', 'name', 'scope', 'type'];

/** A HuskError from the network layer as Docker's status: in use 409, exists 409, else 400. */
function asApiError(err: unknown): never {
  if (err instanceof ApiError) throw err;
  const message = reason(err);
  if (/already exists|in use|overlaps/.test(message)) throw conflict(message);
  if (err instanceof HuskError) throw badRequest(message);
  throw err;
}

function create(ctx: DaemonContext, body: Record<string, unknown>): { Id: string; Warning: string } {
  const name = body.Name;
  if (typeof name !== 'string' || !name) throw badRequest('network create: Name is required');
  if (PREDEFINED.includes(name)) throw new ApiError(403, `operation is not permitted on predefined ${name} network `);
  if (allNames(ctx).includes(name)) throw conflict(`network with name ${name} already exists`);
  const driver = (body.Driver as string | undefined) || 'bridge';
  if (!['bridge', 'macvlan', 'ipvlan'].includes(driver)) throw badRequest(`network create: driver ${JSON.stringify(driver)}: husk has bridge, macvlan and ipvlan`);
  if (body.EnableIPv6) throw badRequest('network create: husk\'s networks are IPv4 only (EnableIPv6)');
  if (body.Ingress || body.ConfigOnly || (body.ConfigFrom as { Network?: string } | undefined)?.Network) throw badRequest('network create: swarm networks (Ingress, ConfigOnly, ConfigFrom) need a swarm, which husk does not have');
  if (body.Scope && body.Scope !== 'local') throw badRequest(`network create: scope ${JSON.stringify(body.Scope)}: husk has local networks only`);
  const ipam = checkFields(body.IPAM, 'network create: IPAM', IPAM_FIELDS);
  if (ipam.Driver && ipam.Driver !== 'default') throw badRequest(`network create: IPAM driver ${JSON.stringify(ipam.Driver)}: husk has the default one`);
  const configs = (ipam.Config ?? []) as unknown[];
  if (!Array.isArray(configs) || configs.length > 1) throw badRequest('network create: IPAM.Config: husk takes one subnet per network');
  const config = checkFields(configs[0], 'network create: IPAM.Config[0]', IPAM_CONFIG_FIELDS);
  if (config.IPRange || (config.AuxiliaryAddresses && Object.keys(config.AuxiliaryAddresses as object).length)) throw badRequest('network create: IPAM.Config[0]: husk does not support IPRange or AuxiliaryAddresses yet');
  const options = (body.Options ?? {}) as Record<string, string>;
  const known = ['parent', 'com.docker.network.bridge.name', 'com.docker.network.driver.mtu'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw badRequest(`network create: option ${JSON.stringify(key)} is not supported by husk`);
  }
  try {
    createNetwork(configDir(ctx), {
      name,
      subnet: config.Subnet as string | undefined,
      gateway: config.Gateway as string | undefined,
      driver: driver as 'bridge' | 'macvlan' | 'ipvlan',
      parent: driver === 'bridge' ? undefined : options.parent,
      internal: Boolean(body.Internal),
      // Docker's networks do not reach each other.
      isolated: true,
    });
  } catch (err) {
    asApiError(err);
  }
  const meta: NetworkMeta = {
    Id: networkId(name),
    Created: new Date().toISOString(),
    Labels: (body.Labels ?? {}) as Record<string, string>,
    Options: options,
    Attachable: Boolean(body.Attachable),
  };
  writeMeta(ctx, name, meta);
  ctx.events.emit('network', 'create', meta.Id, { name, type: driver });
  return { Id: meta.Id, Warning: '' };
}

function remove(ctx: DaemonContext, ref: string): void {
  const n = resolveNetwork(ctx, ref);
  if (PREDEFINED.includes(n.name)) throw new ApiError(403, `${n.name} is a pre-defined network and cannot be removed`);
  if (attachedTo(n.cni, configDir(ctx)).length) throw conflict(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
  try {
    removeNetwork(configDir(ctx), n.cni);
  } catch (err) {
    asApiError(err);
  }
  fs.rmSync(path.join(metaDir(ctx), `${n.name}.json`), { force: true });
  ctx.events.emit('network', 'destroy', n.id, { name: n.name, type: 'bridge' });
}

export function routes(ctx: DaemonContext): Route[] {
  return [
    {
      method: 'GET',
      path: '/networks',
      handle(req, res) {
        const filters = filtersParam(req.query, LIST_FILTERS);
        const lists = userNetworks(ctx);
        const shown = allNames(ctx).map((n) => inspect(ctx, n, lists)).filter((n) => {
          const any = (name: string, test: (v: string) => boolean) => !filters.has(name) || filters.get(name)!.some(test);
          return any('name', (v) => n.Name.includes(v))
            && any('id', (v) => n.Id.startsWith(v))
            && any('driver', (v) => v === n.Driver)
            && any('scope', (v) => v === 'local')
            && any('type', (v) => (v === 'builtin') === PREDEFINED.includes(n.Name))
            && any('dangling', (v) => (v === 'true' || v === '1') === (Object.keys(n.Containers).length === 0 && !PREDEFINED.includes(n.Name)))
            && (!filters.has('label') || labelsMatch(n.Labels, filters.get('label')!));
        });
        res.json(shown);
      },
    },
    {
      method: 'GET',
      path: '/networks/{id}',
      handle(req, res) {
        res.json(inspect(ctx, resolveNetwork(ctx, req.params.id).name));
      },
    },
    {
      method: 'POST',
      path: '/networks/create',
      async handle(req, res) {
        const body = checkFields(await req.json({}), 'network create', CREATE_FIELDS);
        res.json(create(ctx, body), 201);
      },
    },
    {
      method: 'DELETE',
      path: '/networks/{id}',
      handle(req, res) {
        remove(ctx, req.params.id);
        res.empty(204);
      },
    },
    {
      method: 'POST',
      path: '/networks/prune',
      handle(req, res) {
        const filters = filtersParam(req.query, ['label', 'label!', 'until']);
        const deleted: string[] = [];
        for (const list of userNetworks(ctx)) {
          const meta = readMeta(ctx, list.name);
          if (filters.has('label') && !labelsMatch(meta.Labels, filters.get('label')!)) continue;
          if (filters.has('label!') && filters.get('label!')!.some((w) => labelsMatch(meta.Labels, [w]))) continue;
          if (attachedTo(list.name, configDir(ctx)).length) continue;
          remove(ctx, list.name);
          deleted.push(list.name);
        }
        res.json({ NetworksDeleted: deleted });
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Names on a network: the hosts files

/** The block a network owns in a hosts file (a container on two networks has two). */
const begin = (cni: string) => `# husk daemon: the containers on network ${cni}`;
const end = (cni: string) => `# husk daemon: end of network ${cni}`;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The names a container answers to on a network: its name, hostname and aliases. */
function namesOf(ctx: DaemonContext, r: AttachRecord): string[] {
  const names = new Set<string>();
  // Not one of the daemon's containers: no record.
  const record = readRecord(ctx, r.containerId);
  if (record) {
    names.add(record.Name.replace(/^\//, ''));
    for (const net of Object.values(record.NetworkSettings?.Networks ?? {}) as { Aliases?: string[] | null }[]) for (const alias of net.Aliases ?? []) names.add(alias);
  }
  if (r.hostname) names.add(r.hostname);
  return [...names];
}

/** Removes the network's block from a hosts file (its container left the network). */
export function clearHosts(hostsFile: string, cni: string): void {
  try {
    const text = fs.readFileSync(hostsFile, 'utf8');
    const kept = text.replace(new RegExp(`${escape(begin(cni))}\\n[\\s\\S]*?${escape(end(cni))}\\n`), '');
    if (kept !== text) fs.writeFileSync(hostsFile, kept);
  } catch {
    // the container is gone
  }
}

/**
 * Rewrites, in place, the hosts file of every container attached to the CNI network `cni` so
 * that it lists the others by name. In place: the file is bind-mounted at /etc/hosts.
 */
export function syncHosts(ctx: DaemonContext, cni: string): void {
  const records = listRecords().filter((r) => r.network.name === cni && r.result && path.resolve(r.configDir) === configDir(ctx));
  const entries = records.map((r) => ({ r, ip: endpointOf(r).ipv4.split('/')[0], names: namesOf(ctx, r) })).filter((e) => e.ip && e.names.length);
  for (const { r } of entries) {
    if (!r.hostsFile) continue;
    const others = entries.filter((e) => e.r.containerId !== r.containerId).map((e) => `${e.ip}\t${e.names.join(' ')}`);
    try {
      const text = fs.readFileSync(r.hostsFile, 'utf8');
      const kept = text.replace(new RegExp(`${escape(begin(cni))}\\n[\\s\\S]*?${escape(end(cni))}\\n`), '');
      const block = others.length ? `${begin(cni)}\n${others.join('\n')}\n${end(cni)}\n` : '';
      fs.writeFileSync(r.hostsFile, kept + block);
    } catch {
      // the container is going away
    }
  }
}
