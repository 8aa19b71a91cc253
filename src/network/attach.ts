// Attaching a container to a CNI network, and detaching it: what the createRuntime hook
// (`husk network attach`) and the poststop hook (`husk network detach`) of a networked bundle do.
//
// attach, with the container's init already in its new (empty) network namespace:
//   1. under a lock on the records directory: the published ports are checked (against the
//      other attachments made from this network namespace, then by binding each one here),
//      and a record is written, RECORDS_DIR/<attach id>.json, naming everything the later
//      steps will make. It is written FIRST, so whatever happens next, a record says what to undo;
//   2. the init's network namespace is pinned: bind-mounted at /run/netns/husk-<attach id>,
//      where `ip netns` shows it. The pin keeps it alive after the init dies, so that DEL can
//      still reach the veth and the bridge plugin can undo its masquerade rules;
//   3. CNI ADD (interface eth0, the attach id as CNI_CONTAINERID, the port mappings as the
//      portMappings capability), and the result is saved in the record;
//   4. the address goes into the bundle's hosts file (bind-mounted at /etc/hosts), in place.
// A failure anywhere undoes what was done: DEL, unpin, record removed.
//
// detach finds the records of the container (id, bundle, and this network namespace), runs DEL
// with the saved result, unpins and removes the record. sweep does the same for every record
// made from this network namespace whose container init is gone (SIGKILLed, or its husk killed
// half-way): `husk image run --net`, `husk image prune` and `husk network prune` call it.
//
// While one husk works on a record it holds flock(2) on <attach id>.lock; another husk that
// cannot take that lock leaves the record alone. A record with no result whose lock is free
// was left by a husk killed while attaching.
import { randomBytes, createHash } from 'crypto';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { log } from '../host/log';
import { parseProcStat, readProcStat, runsAs } from '../host/procfs';
import { sleep } from '../host/sleep';
import { trace } from '../host/trace';
import { writeFileAtomic } from '../host/atomicWrite';
import { isMountPoint } from '../host/mountinfo';
import { native } from '../native';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  findPlugin,
  parseNetwork,
  pluginVersions,
  resultAddresses,
  type CniResult,
  type NetworkList,
  type PortMapping,
  type RuntimeConf,
} from './cni';
import { ensureNetwork } from './networks';
import { formatPublish, type AttachOptions } from './options';

export const RECORDS_DIR = '/var/lib/cni/husk';
export const PIN_DIR = '/run/netns';
const IFNAME = 'eth0';
const RECORD_VERSION = 1;
// mount(2) flags (linux/constants.ts has them all, but networks sit beside linux, not above it).
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_SHARED = 1 << 20;
const MNT_DETACH = 2;

/** What husk keeps of one attachment, in RECORDS_DIR/<attachId>.json. */
export interface AttachRecord {
  version: number;
  attachId: string;
  containerId: string;
  bundle: string;
  /** The container's init and its start time (in clock ticks since boot, /proc/PID/stat). */
  pid: number;
  startTime: number;
  /** The network namespace husk ran in (the "host" side of the attachment). */
  hostNetns: { dev: number; ino: number };
  /** The bind mount that keeps the container's network namespace while attached. */
  pin: string;
  network: { name: string; file: string; raw: Record<string, unknown> };
  configDir: string;
  pluginDirs: string[];
  ports: PortMapping[];
  hostname?: string;
  hostsFile?: string;
  /** The interface inside the container (records from before it was kept: eth0). */
  ifName?: string;
  /** The ADD result: present once ADD succeeded. */
  result?: CniResult;
  /** While ADD runs: the result of the last plugin that succeeded (what DEL gets if husk is
   * killed before the end: the firewall plugin, for one, finds its rules by the address). */
  partial?: CniResult;
  created: string;
}

/** The container as the OCI state given to a hook says it. */
export interface HookState {
  id: string;
  pid?: number;
  bundle: string;
}

function recordFile(attachId: string): string {
  return path.join(RECORDS_DIR, `${attachId}.json`);
}

function lockFile(attachId: string): string {
  return path.join(RECORDS_DIR, `${attachId}.lock`);
}

function say(line: string) {
  trace('husk', `network: ${line}`, { kind: 'network', line });
}

// ---------------------------------------------------------------------------------------------
// Records and their locks

export function listRecords(): AttachRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(RECORDS_DIR);
  } catch {
    return [];
  }
  const out: AttachRecord[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{32}\.json$/.test(name)) continue;
    const record = readRecord(name.slice(0, 32));
    if (record) out.push(record);
  }
  return out;
}

function readRecord(attachId: string): AttachRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(recordFile(attachId), 'utf8')) as AttachRecord;
    return r && r.attachId === attachId ? r : undefined;
  } catch {
    return undefined;
  }
}

function saveRecord(r: AttachRecord) {
  writeFileAtomic(recordFile(r.attachId), JSON.stringify(r, null, 2) + '\n', 0o600);
}

/** The attachments to a network (of this configuration directory), from any namespace. */
export function attachedTo(network: string, configDir: string): AttachRecord[] {
  const dir = path.resolve(configDir);
  return listRecords().filter((r) => r.network.name === network && path.resolve(r.configDir) === dir);
}

/** flock(2) on a file, taken without waiting: the fd, or undefined when another holds it. */
function tryLock(file: string): number | undefined {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    // Locked, and still the file at that path (not one a sweep removed meanwhile).
    if (native.flock(fd, 'ex', true) && fs.fstatSync(fd).ino === inodeAt(file)) return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  fs.closeSync(fd);
  return undefined;
}

function inodeAt(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** flock(2), waiting for it without blocking the event loop (the warm server runs many calls). */
async function lock(file: string, what: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    const fd = tryLock(file);
    if (fd !== undefined) return fd;
    if (Date.now() > deadline) throw new HuskError(`${what}: still locked by another husk after 60 s (${file})`);
    await sleep(wait);
  }
}

function unlock(fd: number) {
  fs.closeSync(fd);
}

/** This process's network namespace, as the kernel names it (device and inode of its nsfs). */
function ownNetns(): { dev: number; ino: number } {
  const st = fs.statSync('/proc/self/ns/net');
  return { dev: st.dev, ino: st.ino };
}

function sameNetns(a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Whether the record's container init still runs: the same pid and start time, not a zombie. */
function initAlive(r: AttachRecord): boolean {
  return runsAs(r.pid, r.startTime);
}

// ---------------------------------------------------------------------------------------------
// Pins: /run/netns/husk-<attach id>

/** /run/netns as iproute2 makes it: a mount point of its own, shared, so that a pin removed
 * here is removed from the mount namespaces that were copied while it existed. */
function preparePinDir() {
  fs.mkdirSync(PIN_DIR, { recursive: true, mode: 0o755 });
  const shared = () => native.mount(null, PIN_DIR, null, MS_SHARED | MS_REC, null);
  try {
    shared();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL' || isMountPoint(PIN_DIR)) throw err;
    native.mount(PIN_DIR, PIN_DIR, null, MS_BIND | MS_REC, null);
    say(`mount("${PIN_DIR}", "${PIN_DIR}", MS_BIND|MS_REC): a mount point of its own, as \`ip netns\` makes it`);
    shared();
  }
}

function pin(r: AttachRecord) {
  preparePinDir();
  fs.writeFileSync(r.pin, '', { flag: 'wx', mode: 0 });
  try {
    native.mount(`/proc/${r.pid}/ns/net`, r.pin, null, MS_BIND, null);
  } catch (err) {
    fs.rmSync(r.pin, { force: true });
    throw new HuskError(`cannot pin the network namespace of process ${r.pid} at ${r.pin}: ${reason(err)}`);
  }
  say(`mount("/proc/${r.pid}/ns/net", "${r.pin}", MS_BIND): the container's network namespace now outlives its processes until detach`);
}

function unpin(r: AttachRecord) {
  try {
    native.umount2(r.pin, MNT_DETACH);
    say(`umount2("${r.pin}", MNT_DETACH): the pin is gone, the namespace dies with its last user`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
  }
  fs.rmSync(r.pin, { force: true });
}

function pinned(r: AttachRecord): boolean {
  return fs.existsSync(r.pin) && isMountPoint(r.pin);
}

// ---------------------------------------------------------------------------------------------
// Ports

function overlaps(a: PortMapping, b: PortMapping): boolean {
  if (a.hostPort !== b.hostPort || a.protocol !== b.protocol) return false;
  return !a.hostIP || !b.hostIP || isAny(a.hostIP) || isAny(b.hostIP) || a.hostIP === b.hostIP;
}

function isAny(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

/** Binds the port here, to see whether a process of this network namespace has it. */
function bindTest(p: PortMapping): Promise<string | undefined> {
  const host = p.hostIP || '0.0.0.0';
  const where = `${host.includes(':') ? `[${host}]` : host}:${p.hostPort}/${p.protocol}`;
  const why = (err: NodeJS.ErrnoException) =>
    err.code === 'EADDRINUSE' ? `host port ${where} is already in use`
      : err.code === 'EADDRNOTAVAIL' ? `${host} is not an address of this host (-p ${formatPublish(p)})`
        : `cannot bind ${where}: ${reason(err)}`;
  return new Promise((resolve) => {
    if (p.protocol === 'udp') {
      const sock = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      sock.once('error', (err) => {
        sock.close();
        resolve(why(err));
      });
      sock.bind(p.hostPort, host, () => sock.close(() => resolve(undefined)));
    } else {
      const server = net.createServer();
      server.once('error', (err) => resolve(why(err)));
      server.listen({ port: p.hostPort, host, exclusive: true }, () => server.close(() => resolve(undefined)));
    }
  });
}

/** Refuses ports another attachment from this namespace publishes, or a process here holds. */
async function checkPorts(ports: PortMapping[], here: { dev: number; ino: number }) {
  for (const other of listRecords()) {
    if (!sameNetns(other.hostNetns, here)) continue;
    for (const p of ports) {
      const taken = other.ports.find((q) => overlaps(p, q));
      if (taken) {
        const where = `${taken.hostIP ? `${taken.hostIP}:` : ''}${taken.hostPort}/${taken.protocol}`;
        throw new HuskError(`host port ${where} is already published by container ${JSON.stringify(other.containerId)}`);
      }
    }
  }
  for (const p of ports) {
    const problem = await bindTest(p);
    if (problem) throw new HuskError(problem);
  }
}

// ---------------------------------------------------------------------------------------------
// Versions: asked once per set of plugin files

const VERSIONS_FILE = path.join(RECORDS_DIR, 'versions-checked');

/** Version negotiation (cni.ts pluginVersions), skipped when these very plugin files already
 * said yes to this cniVersion: every container start would otherwise run each plugin once more. */
async function negotiate(list: NetworkList, pluginDirs: string[]) {
  const types = new Set<string>();
  for (const p of list.plugins) {
    types.add(p.type);
    const ipam = p.ipam as { type?: unknown } | undefined;
    if (ipam && typeof ipam.type === 'string') types.add(ipam.type);
  }
  const files = [...types].sort().map((t) => {
    const file = findPlugin(t, pluginDirs);
    const st = fs.statSync(file);
    return `${file}:${st.size}:${st.mtimeMs}:${st.ino}`;
  });
  const key = createHash('sha256').update([list.cniVersion, ...files].join('\n')).digest('hex').slice(0, 32);
  let known: string[] = [];
  try {
    known = fs.readFileSync(VERSIONS_FILE, 'utf8').split('\n');
  } catch {
    // none yet
  }
  if (known.includes(key)) return;
  await pluginVersions(list, pluginDirs);
  writeFileAtomic(VERSIONS_FILE, [...known.filter(Boolean).slice(-63), key].join('\n') + '\n', 0o600);
}

// ---------------------------------------------------------------------------------------------
// attach, detach, sweep

function runtimeConf(r: AttachRecord, netns: string): RuntimeConf {
  return { containerId: r.attachId, netns, ifName: r.ifName ?? IFNAME, capabilityArgs: { portMappings: r.ports } };
}

function networkOf(r: AttachRecord): NetworkList {
  return parseNetwork(JSON.stringify(r.network.raw), r.network.file);
}

export async function attach(o: AttachOptions, state: HookState): Promise<void> {
  if (!state.pid) throw new HuskError(`network attach: the state of container ${JSON.stringify(state.id)} has no pid (run it as a createRuntime hook)`);
  const initStat = readProcStat(state.pid);
  if (initStat === undefined) throw new HuskError(`network attach: process ${state.pid} of container ${JSON.stringify(state.id)} does not exist`);
  const list = ensureNetwork(o.configDir, o.network);
  for (const p of list.plugins) {
    try {
      findPlugin(p.type, o.pluginDirs);
    } catch (err) {
      throw new HuskError(`network "${list.name}": ${reason(err)}`);
    }
  }
  await sweep();
  fs.mkdirSync(RECORDS_DIR, { recursive: true, mode: 0o700 });
  const here = ownNetns();
  const attachId = randomBytes(16).toString('hex');
  const record: AttachRecord = {
    version: RECORD_VERSION,
    attachId,
    containerId: state.id,
    bundle: path.resolve(state.bundle),
    pid: state.pid,
    startTime: parseProcStat(initStat).startTime,
    hostNetns: here,
    pin: path.join(PIN_DIR, `husk-${attachId}`),
    network: { name: list.name, file: list.file, raw: list.raw },
    configDir: path.resolve(o.configDir),
    pluginDirs: o.pluginDirs,
    ports: o.ports,
    hostname: o.hostname,
    hostsFile: o.hostsFile,
    ...(o.ifName ? { ifName: o.ifName } : {}),
    created: new Date().toISOString(),
  };

  // The record's own lock, held until the attachment is complete (or undone).
  const held = await lock(lockFile(attachId), `network attach of ${state.id}`);
  try {
    const all = await lock(path.join(RECORDS_DIR, '.lock'), `network attach of ${state.id}`);
    try {
      await checkPorts(o.ports, here);
      saveRecord(record);
    } finally {
      unlock(all);
    }
    say(`record ${recordFile(attachId)}: container ${state.id} (init ${state.pid}) on network "${list.name}"${o.ports.length ? `, ports ${o.ports.map(formatPublish).join(' ')}` : ''}`);
    try {
      await negotiate(list, o.pluginDirs);
      pin(record);
      say(`CNI ADD: network "${list.name}" (${list.file}), interface ${record.ifName ?? IFNAME}, netns ${record.pin}`);
      record.result = await addNetworkList(list, runtimeConf(record, record.pin), o.pluginDirs, (partial) => {
        record.partial = partial;
        saveRecord(record);
      });
      delete record.partial;
      saveRecord(record);
      const address = firstAddress(record.result, record.ifName);
      if (o.hostsFile && address) addToHosts(o.hostsFile, address, o.hostname);
      say(`attached: ${address ?? 'no address'}`);
    } catch (err) {
      await undo(record, list, true).catch((e) => log.warn(`undoing the network of ${state.id}: ${reason(e)}`));
      throw err;
    }
  } finally {
    unlock(held);
  }
}

/** The container's address (IPv4 first) on its interface, without its prefix length. */
function firstAddress(result: CniResult, ifName = IFNAME): string | undefined {
  const addresses = resultAddresses(result, ifName).map((a) => a.split('/')[0]);
  return addresses.find((a) => !a.includes(':')) ?? addresses[0];
}

/** "ADDRESS<TAB>HOSTNAME" in the hosts file, written in place: it is bind-mounted at the
 * container's /etc/hosts, and a new file would not be seen there. */
function addToHosts(file: string, address: string, hostname: string | undefined) {
  if (!hostname) return;
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  const kept = lines.filter((l) => {
    const [ip, ...names] = l.trim().split(/\s+/);
    return !(ip === '127.0.1.1' && names.includes(hostname));
  });
  kept.push(`${address}\t${hostname}`);
  fs.writeFileSync(file, kept.join('\n') + '\n');
  say(`${file}: ${address}\t${hostname}`);
}

/**
 * DEL (while the pin still holds the namespace), unpin, and the record goes. When DEL fails,
 * the record and the pin stay, so that a later prune can try again; except when undoing an
 * attach that failed (`bestEffort`): the user hears of the ADD failure, and a plugin that
 * refused to ADD with its configuration usually refuses to DEL with it too, every time.
 */
async function undo(r: AttachRecord, list = networkOf(r), bestEffort = false) {
  const netns = pinned(r) ? r.pin : '';
  say(`CNI DEL: network "${list.name}", attachment ${r.attachId}${netns ? '' : ' (its namespace is gone)'}`);
  try {
    await delNetworkList(list, runtimeConf(r, netns), r.result ?? r.partial, r.pluginDirs);
  } catch (err) {
    if (!bestEffort) throw err;
    log.debug(`undoing the attachment of ${r.containerId}: ${reason(err)}`);
  }
  unpin(r);
  fs.rmSync(recordFile(r.attachId), { force: true });
  say(`detached container ${r.containerId} from network "${list.name}"`);
}

/**
 * Detaches one record while holding its lock: waiting for it (detach), or only when no other
 * husk is working on it (sweep). `still` is asked again once the lock is held. The lock file
 * goes with the record.
 */
async function release(attachId: string, still: (r: AttachRecord) => boolean, wait?: string): Promise<AttachRecord | undefined> {
  const fd = wait ? await lock(lockFile(attachId), wait) : tryLock(lockFile(attachId));
  if (fd === undefined) return undefined;
  try {
    const r = readRecord(attachId);
    if (!r || !still(r)) return undefined;
    await undo(r);
    return r;
  } finally {
    if (!fs.existsSync(recordFile(attachId))) fs.rmSync(lockFile(attachId), { force: true });
    unlock(fd);
  }
}

export async function detach(state: HookState): Promise<void> {
  const here = ownNetns();
  const bundle = path.resolve(state.bundle);
  const mine = (r: AttachRecord) => r.containerId === state.id && r.bundle === bundle && sameNetns(r.hostNetns, here);
  for (const r of listRecords().filter(mine)) await release(r.attachId, mine, `network detach of ${state.id}`);
}

/** Detaches the container from one network (`docker network disconnect`); false when it was
 * not attached to it from this network namespace. */
export async function detachFrom(state: HookState, network: string): Promise<boolean> {
  const here = ownNetns();
  const bundle = path.resolve(state.bundle);
  const mine = (r: AttachRecord) => r.containerId === state.id && r.bundle === bundle && r.network.name === network && sameNetns(r.hostNetns, here);
  const records = listRecords().filter(mine);
  for (const r of records) await release(r.attachId, mine, `network detach of ${state.id}`);
  return records.length > 0;
}

/**
 * CNI CHECK of a container's attachments made from this network namespace: each plugin says
 * whether what it set up is still there. One line a network; an error when one is not.
 */
export async function check(containerId: string): Promise<string[]> {
  const here = ownNetns();
  const mine = listRecords().filter((r) => r.containerId === containerId && sameNetns(r.hostNetns, here));
  if (!mine.length) throw new HuskError(`container ${JSON.stringify(containerId)} is attached to no network (from this network namespace)`);
  const lines: string[] = [];
  for (const r of mine) {
    const list = networkOf(r);
    if (!r.result || !pinned(r)) throw new HuskError(`network "${list.name}": the attachment of ${containerId} is not complete (its container is gone, or its husk died while attaching: \`husk network prune\`)`);
    if (list.disableCheck) {
      lines.push(`${list.name}: not checked (its configuration says disableCheck)`);
      continue;
    }
    await checkNetworkList(list, runtimeConf(r, r.pin), r.result, r.pluginDirs);
    lines.push(`${list.name}: ok (${firstAddress(r.result, r.ifName) ?? 'no address'})`);
  }
  return lines;
}

/** Detaches every attachment made from this network namespace whose container init is gone,
 * or whose husk died while attaching; returns the container ids released. Lock files left
 * without a record are removed. */
export async function sweep(): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(RECORDS_DIR);
  } catch {
    return [];
  }
  const here = ownNetns();
  const released: string[] = [];
  const failures: string[] = [];
  const abandoned = (r: AttachRecord) => sameNetns(r.hostNetns, here) && (!initAlive(r) || r.result === undefined);
  for (const name of names) {
    const m = /^([0-9a-f]{32})\.(json|lock)$/.exec(name);
    if (!m) continue;
    const attachId = m[1];
    if (m[2] === 'lock') {
      if (!names.includes(`${attachId}.json`)) await release(attachId, () => false).catch(() => undefined);
      continue;
    }
    const r = readRecord(attachId);
    if (!r || !abandoned(r)) continue;
    try {
      const done = await release(attachId, abandoned);
      if (done) released.push(done.containerId);
    } catch (err) {
      failures.push(`${r.containerId}: ${reason(err)}`);
    }
  }
  for (const f of failures) log.warn(`releasing the network of ${f}`);
  return released;
}
