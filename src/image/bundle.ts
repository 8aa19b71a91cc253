// Image -> bundle: a directory with config.json and rootfs/, ready for `husk run` (or runc).
//
// The rootfs is an overlayfs mount made on the host: the image's layers (from the store, top
// first) as lowerdirs, a fresh upperdir and workdir in the bundle (bundle/overlay/). It is
// made with the new mount API, one `lowerdir+` per layer, so images with dozens (hundreds) of
// layers are not limited by the one page a mount(2) option string may fill; the layers are
// named by their short links under <store>/l, which keeps mountinfo readable. With
// --copy the rootfs is a plain directory: the layers applied in order (whiteouts applied),
// for hosts without overlayfs.
//
// Every overlay bundle is registered in <store>/mounts/ before it is mounted (so a crash
// leaves a registration without a mount, which prune clears, never a mount nobody knows):
// that is how `husk image remove` knows an image is in use, and how prune keeps its layers.
// unbundle() unmounts and removes what bundle() made; it refuses while a process still has
// its root in the rootfs.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { log } from '../host/log';
import { trace } from '../host/trace';
import type { Hook, Hooks, Mount, Spec } from '../spec/types';
import { ANNOTATIONS, imageToSpec, type ConvertOptions } from './convert';
import { parseImageConfig, parseManifestDocument, type ImageConfig, type Manifest } from './manifest';
import type { ImageRef, ImageStore } from './store';
import { isMountPoint, readMountInfo } from '../host/mountinfo';
import * as sys from './sys';
import { readFileInRoot } from '../host/rootfs';
import { RootedTree } from './tree';
import { unpackLayer } from './unpack';
import { processesWhere } from '../host/procfs';
import { HUSK_BIN } from '../host/huskBin';
import { attachArgs, type HostEntry, type NetworkMode } from '../network/options';

export interface Registration {
  bundle: string;
  rootfs: string;
  image: { name: string; digest: string; config: string };
  layers: string[];
  /** For `husk image run` containers: the container id and the runtime's state root. */
  container?: { id: string; root: string };
  created: string;
}

export function registrationKey(bundle: string): string {
  return createHash('sha256').update(path.resolve(bundle)).digest('hex').slice(0, 32);
}

export function registrationPath(store: ImageStore, bundle: string): string {
  return path.join(store.mounts, `${registrationKey(bundle)}.json`);
}

export function readRegistrations(store: ImageStore): { file: string; reg: Registration }[] {
  const out: { file: string; reg: Registration }[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(store.mounts);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(store.mounts, name);
    try {
      out.push({ file, reg: JSON.parse(fs.readFileSync(file, 'utf8')) as Registration });
    } catch {
      // being written, or garbage: ignored (prune removes it once it is old)
    }
  }
  return out;
}

/** Processes whose root directory is the mount at `rootfs` (same device as its root). */
export function processesRootedIn(rootfs: string): number[] {
  let dev: number;
  try {
    dev = fs.statSync(rootfs).dev;
  } catch {
    return [];
  }
  return processesWhere((pid) => fs.statSync(`/proc/${pid}/root`).dev === dev);
}

/** Registrations whose rootfs is still mounted: their layers are in use. */
export function liveRegistrations(store: ImageStore): { file: string; reg: Registration }[] {
  const mounted = new Set(readMountInfo().map((m) => m.mountPoint));
  return readRegistrations(store).filter(({ reg }) => mounted.has(reg.rootfs));
}

export interface LoadedImage {
  name: string;
  ref: ImageRef;
  manifest: Manifest;
  config: ImageConfig;
}

export function loadImage(store: ImageStore, name: string, ref: ImageRef): LoadedImage {
  const doc = parseManifestDocument(store.readBlob(ref.digest), undefined, `${name}: manifest`);
  if (doc.kind !== 'manifest') throw new HuskError(`${name}: the stored manifest ${ref.digest} is an index`);
  const config = parseImageConfig(store.readBlob(ref.config), `${name}: config`);
  return { name, ref, manifest: doc.manifest, config };
}

export interface BundleOptions extends Omit<ConvertOptions, 'passwd' | 'group' | 'rootfsPath' | 'network'> {
  /** A plain directory instead of an overlay mount. */
  copy?: boolean;
  hooks?: Hooks;
  /**
   * 'none' (the default): a network namespace with loopback only; 'host': the host's; attach:
   * a namespace of its own that the createRuntime hook attaches to a CNI network (its
   * hostname and hostsFile are the bundle's, set here).
   */
  network?: NetworkMode;
  /** --dns: the nameservers of the container's resolv.conf (instead of the host's). */
  dns?: string[];
  /** --add-host: lines of the container's /etc/hosts. */
  addHosts?: HostEntry[];
  /**
   * Write /etc/hosts, /etc/hostname and /etc/resolv.conf for the container (docker run does).
   * They are written anyway with a CNI network, --dns or --add-host.
   */
  networkFiles?: boolean;
  container?: { id: string; root: string };
}

export interface Bundle {
  dir: string;
  rootfs: string;
  spec: Spec;
  overlay: boolean;
}

function checkMountPath(p: string, what: string) {
  if (/[,:\\\n]/.test(p)) throw new HuskError(`${what} ${p}: overlay mount options cannot hold ",", ":" or "\\" in a path`);
}

/** The lowerdir list (short link names, top layer first), each layer once. */
export function lowerDirs(store: ImageStore, image: LoadedImage): string[] {
  const diffIDs = image.config.rootfs.diff_ids;
  const seen = new Set<string>();
  const links: string[] = [];
  for (let i = diffIDs.length - 1; i >= 0; i--) {
    if (seen.has(diffIDs[i])) continue;
    seen.add(diffIDs[i]);
    const meta = store.layerMeta(diffIDs[i]);
    if (!meta) throw new HuskError(`${image.name}: layer ${diffIDs[i]} is not in the store (pull the image again)`);
    links.push(meta.link);
  }
  return links;
}

/** lstat of a path inside a layer, only through real directories (never a symlink). */
function lstatInLayer(diff: string, rel: string): fs.Stats | undefined {
  let dir = diff;
  const parts = rel.split('/');
  for (let i = 0; i < parts.length; i++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(`${dir}/${parts[i]}`);
    } catch {
      return undefined;
    }
    if (i === parts.length - 1) return st;
    if (!st.isDirectory()) return undefined;
    dir = `${dir}/${parts[i]}`;
  }
  return undefined;
}

/**
 * A layer that has a directory only as the parent of its entries (no entry of its own) gave it
 * default attributes. In the merged view those would hide the owner, mode and times a lower
 * layer gave the directory (Docker's overlay2 shows the defaults; a flattened unpack, such as
 * umoci's or --copy, keeps the lower ones). husk keeps the lower ones: they are set again
 * through the mount, which copies the directory up into the container's writable layer.
 */
function restoreImplicitDirs(store: ImageStore, image: LoadedImage, rootfs: string) {
  const diffIDs = [...new Set(image.config.rootfs.diff_ids)];
  const metas = diffIDs.map((d) => store.layerMeta(d)!);
  const implicit = metas.map((m) => new Set(m.implicitDirs ?? []));
  const diffs = diffIDs.map((d) => path.join(store.layerDir(d), 'diff'));
  const candidates = [...new Set(metas.flatMap((m) => m.implicitDirs ?? []))].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const rel of candidates) {
    let top = diffs.length - 1;
    while (top >= 0 && !lstatInLayer(diffs[top], rel)) top--;
    if (top < 0 || !implicit[top].has(rel)) continue;
    let source: fs.Stats | undefined;
    for (let k = top - 1; k >= 0; k--) {
      const st = lstatInLayer(diffs[k], rel);
      if (!st) continue;
      if (!st.isDirectory()) break; // a whiteout or a file: the directory is new above it
      if (!implicit[k].has(rel)) {
        source = st;
        break;
      }
      if (sys.lgetxattr(path.join(diffs[k], rel), 'trusted.overlay.opaque')?.toString() === 'y') break;
    }
    if (!source) continue;
    const parts = rel.split('/');
    const dir = new RootedTree(rootfs).resolveDir(parts.slice(0, -1), false);
    if (dir === undefined) continue;
    const target = path.join(rootfs, dir, parts[parts.length - 1]);
    if (!fs.lstatSync(target, { throwIfNoEntry: false })?.isDirectory()) continue;
    fs.lchownSync(target, source.uid, source.gid);
    fs.chmodSync(target, source.mode & 0o7777);
    fs.lutimesSync(target, source.atime, source.mtime);
    trace('husk', `lchown/chmod/lutimes ${JSON.stringify(target)}: the attributes a lower layer gave it (copy-up)`,
      { kind: 'copyUpAttributes', target });
  }
}

/** What a resolv.conf says: its nameservers, its search list (the last search or domain line wins, as in resolv.conf(5)) and its options. */
export function parseResolvConf(text: string): { nameservers: string[]; search: string[]; options: string[] } {
  const out = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const line of text.split('\n')) {
    const words = line.replace(/[#;].*/, '').trim().split(/\s+/).filter(Boolean);
    if (words[0] === 'nameserver' && words[1]) out.nameservers.push(words[1]);
    else if (words[0] === 'search' || words[0] === 'domain') out.search = words.slice(1);
    else if (words[0] === 'options') out.options.push(...words.slice(1).filter((o) => !out.options.includes(o)));
  }
  return out;
}

const isLoopback = (ip: string) => ip.startsWith('127.') || ip === '::1';

/**
 * The container's resolv.conf in a network namespace of its own, as Docker and Podman write it
 * (search, nameservers, options): the --dns servers, else the host's minus loopback resolvers,
 * which a namespace of its own cannot reach (systemd-resolved's 127.0.0.53). The search list and
 * options are the host's.
 */
export function containerResolvConf(hostText: string, dns: string[]): string {
  const host = parseResolvConf(hostText);
  const nameservers = dns.length ? dns : host.nameservers.filter((ip) => !isLoopback(ip));
  const lines = [
    ...(host.search.length ? [`search ${host.search.join(' ')}`] : []),
    ...nameservers.map((ip) => `nameserver ${ip}`),
    ...(host.options.length ? [`options ${host.options.join(' ')}`] : []),
  ];
  return lines.map((l) => `${l}\n`).join('');
}

/** The host's resolv.conf; systemd-resolved's list of the real servers when the host's has only its stub (as Docker reads it). */
function hostResolvConf(): string {
  const text = readHostFile('/etc/resolv.conf') ?? '';
  const { nameservers } = parseResolvConf(text);
  if (nameservers.length && nameservers.every(isLoopback)) {
    const upstream = readHostFile('/run/systemd/resolve/resolv.conf');
    if (upstream !== undefined) return upstream;
  }
  return text;
}

/**
 * The container's /etc/hosts. With a CNI network it has no line for the hostname yet: the
 * attach hook adds "ADDRESS\tHOSTNAME" once the network gave the address.
 */
export function hostsFileText(hostname: string, network: NetworkMode, addHosts: HostEntry[], hostHosts: string | undefined): string {
  let text = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
  if (network === 'host' && hostHosts !== undefined) text = hostHosts.endsWith('\n') || hostHosts === '' ? hostHosts : `${hostHosts}\n`;
  else if (typeof network !== 'object') text += `127.0.1.1\t${hostname}\n`;
  for (const h of addHosts) text += `${h.ip}\t${h.name}\n`;
  return text;
}

function readHostFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function writeNetworkFiles(dir: string, hostname: string, o: Pick<BundleOptions, 'network' | 'dns' | 'addHosts'>): Mount[] {
  const network = o.network ?? 'none';
  const hosts = path.join(dir, 'hosts');
  const hostnameFile = path.join(dir, 'hostname');
  const resolv = path.join(dir, 'resolv.conf');
  fs.writeFileSync(hosts, hostsFileText(hostname, network, o.addHosts ?? [], network === 'host' ? readHostFile('/etc/hosts') : undefined), { mode: 0o644 });
  fs.writeFileSync(hostnameFile, `${hostname}\n`, { mode: 0o644 });
  let resolvText: string;
  if (network === 'host') {
    // The host's file as it is (its loopback resolvers are reachable there), unless --dns.
    const host = readHostFile('/etc/resolv.conf') ?? '';
    resolvText = o.dns?.length ? containerResolvConf(host, o.dns) : host;
  } else {
    resolvText = containerResolvConf(hostResolvConf(), o.dns ?? []);
  }
  fs.writeFileSync(resolv, resolvText, { mode: 0o644 });
  const bind = (source: string, destination: string): Mount => ({ destination, type: 'bind', source, options: ['rbind', 'rprivate'] });
  return [bind(resolv, '/etc/resolv.conf'), bind(hostnameFile, '/etc/hostname'), bind(hosts, '/etc/hosts')];
}

/**
 * The hooks of config.json: with a CNI network, `husk network attach` as the createRuntime
 * hook (the container's namespace exists, its process has not started) and `husk network
 * detach` as the first poststop hook, before the caller's (image run's unbundle: the network
 * is released before the rootfs goes).
 */
export function bundleHooks(network: NetworkMode, hostname: string, hostsFile: string, extra: Hooks | undefined): Hooks | undefined {
  if (typeof network !== 'object') return extra;
  const attach = { ...network.attach, hostname, hostsFile };
  const createRuntime: Hook[] = [{ path: HUSK_BIN, args: [HUSK_BIN, 'network', 'attach', ...attachArgs(attach)] }];
  const poststop: Hook[] = [{ path: HUSK_BIN, args: [HUSK_BIN, 'network', 'detach'] }];
  return {
    ...(extra ?? {}),
    createRuntime: [...createRuntime, ...(extra?.createRuntime ?? [])],
    poststop: [...poststop, ...(extra?.poststop ?? [])],
  };
}

/**
 * Makes a bundle in `dir` (created; it must not exist or be empty). On failure everything it
 * made is undone: no mount, no registration, no directory.
 */
export async function createBundle(store: ImageStore, image: LoadedImage, dir: string, o: BundleOptions): Promise<Bundle> {
  const bundle = path.resolve(dir);
  const created: string[] = [];
  let createdDir = false;
  if (fs.existsSync(bundle)) {
    if (!fs.statSync(bundle).isDirectory()) throw new HuskError(`bundle directory ${bundle} exists and is not a directory`);
    if (fs.readdirSync(bundle).length) throw new HuskError(`bundle directory ${bundle} is not empty`);
  } else {
    fs.mkdirSync(bundle, { recursive: true, mode: 0o711 });
    createdDir = true;
  }
  const rootfs = path.join(bundle, 'rootfs');
  const regFile = registrationPath(store, bundle);
  let mounted = false;
  let registered = false;
  const held = await store.lockStore('sh');
  try {
    fs.mkdirSync(rootfs, 0o755);
    created.push(rootfs);
    if (o.copy) {
      const layers = image.manifest.layers;
      for (let i = 0; i < layers.length; i++) {
        const blob = store.blobPath(layers[i].digest);
        if (!store.hasBlob(layers[i].digest)) throw new HuskError(`${image.name}: layer blob ${layers[i].digest} is not in the store (pull the image again)`);
        await unpackLayer(blob, rootfs, { mode: 'flatten', what: `${image.name}: layer ${layers[i].digest}`, diffID: image.config.rootfs.diff_ids[i] });
      }
    } else {
      const lowers = lowerDirs(store, image);
      const overlay = path.join(bundle, 'overlay');
      const upper = path.join(overlay, 'upper');
      const work = path.join(overlay, 'work');
      for (const d of [overlay, upper, work]) {
        fs.mkdirSync(d, 0o755);
        created.push(d);
      }
      checkMountPath(upper, 'upperdir');
      const reg: Registration = {
        bundle,
        rootfs,
        image: { name: image.name, digest: image.ref.digest, config: image.ref.config },
        layers: [...new Set(image.config.rootfs.diff_ids)],
        ...(o.container ? { container: o.container } : {}),
        created: new Date().toISOString(),
      };
      fs.writeFileSync(regFile, JSON.stringify(reg, null, 2) + '\n', { mode: 0o600 });
      registered = true;
      sys.mountOverlay(rootfs, lowers.map((l) => path.join(store.links, l)), upper, work);
      mounted = true;
      restoreImplicitDirs(store, image, rootfs);
    }
    const hostname = o.hostname ?? 'husk';
    const network = o.network ?? 'none';
    const mounts = [...(o.mounts ?? [])];
    if (o.networkFiles || typeof network === 'object' || o.dns?.length || o.addHosts?.length) mounts.push(...writeNetworkFiles(bundle, hostname, o));
    const spec = imageToSpec(image.config, {
      ...o,
      hostname,
      network: network === 'host' ? 'host' : 'none',
      mounts,
      passwd: readFileInRoot(rootfs, '/etc/passwd'),
      group: readFileInRoot(rootfs, '/etc/group'),
      annotations: { ...(o.annotations ?? {}), [ANNOTATIONS.imageName]: image.name, [ANNOTATIONS.imageDigest]: image.ref.digest },
    });
    const hooks = bundleHooks(network, hostname, path.join(bundle, 'hosts'), o.hooks);
    if (hooks) spec.hooks = hooks;
    fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2) + '\n');
    return { dir: bundle, rootfs, spec, overlay: !o.copy };
  } catch (err) {
    if (mounted) {
      try {
        sys.unmount(rootfs);
      } catch (e) {
        log.warn(`undoing the bundle: ${reason(e)}`);
        sys.unmount(rootfs, true);
      }
    }
    if (registered) fs.rmSync(regFile, { force: true });
    if (createdDir) fs.rmSync(bundle, { recursive: true, force: true });
    else for (const f of [...created.reverse(), path.join(bundle, 'config.json'), ...['hosts', 'hostname', 'resolv.conf'].map((n) => path.join(bundle, n))]) fs.rmSync(f, { recursive: true, force: true });
    throw err;
  } finally {
    held.release();
  }
}

/**
 * Undoes createBundle: unmounts the rootfs, removes the writable layer, the files it wrote and
 * the registration, and the directory itself when nothing else is left in it. Refuses while a
 * process still has its root in the rootfs, unless `force` (which kills nothing: it detaches
 * the mount lazily and leaves those processes their view).
 */
export function removeBundle(store: ImageStore, dir: string, force = false): void {
  const bundle = path.resolve(dir);
  const rootfs = path.join(bundle, 'rootfs');
  const regFile = registrationPath(store, bundle);
  if (isMountPoint(rootfs)) {
    const users = processesRootedIn(rootfs);
    if (users.length && !force) {
      throw new HuskError(`bundle ${bundle}: the rootfs is in use by process${users.length > 1 ? 'es' : ''} ${users.slice(0, 5).join(', ')} (stop the container first)`);
    }
    try {
      sys.unmount(rootfs, users.length > 0);
    } catch (err) {
      if (!force) throw err;
      sys.unmount(rootfs, true);
    }
  } else if (!fs.existsSync(regFile) && !fs.existsSync(path.join(bundle, 'config.json'))) {
    if (!fs.existsSync(bundle)) return;
    throw new HuskError(`${bundle} is not a bundle made by husk image bundle`);
  }
  for (const name of ['overlay', 'rootfs', 'config.json', 'hosts', 'hostname', 'resolv.conf']) {
    fs.rmSync(path.join(bundle, name), { recursive: true, force: true });
  }
  fs.rmSync(regFile, { force: true });
  try {
    fs.rmdirSync(bundle);
  } catch {
    // the user keeps other files there
  }
  trace('husk', `removed bundle ${bundle}`, { kind: 'bundleRemoved', bundle });
}

/**
 * Mounts a bundle's overlay rootfs again from its registration (after a reboot, or when the
 * daemon unmounted it), keeping its writable layer: the same lowerdirs, upperdir and workdir as
 * createBundle gave it. Returns false when it is mounted already.
 */
export function remountBundle(store: ImageStore, dir: string): boolean {
  const bundle = path.resolve(dir);
  const rootfs = path.join(bundle, 'rootfs');
  if (isMountPoint(rootfs)) return false;
  let reg: Registration;
  try {
    reg = JSON.parse(fs.readFileSync(registrationPath(store, bundle), 'utf8')) as Registration;
  } catch (err) {
    throw new HuskError(`bundle ${bundle}: no registration to mount its rootfs from: ${reason(err)}`);
  }
  // The registration lists each layer once, bottom first; lowerdirs go top first.
  const lowers = [...reg.layers].reverse().map((diffID) => {
    const meta = store.layerMeta(diffID);
    if (!meta) throw new HuskError(`bundle ${bundle}: layer ${diffID} is no longer in the store`);
    return path.join(store.links, meta.link);
  });
  const overlay = path.join(bundle, 'overlay');
  sys.mountOverlay(rootfs, lowers, path.join(overlay, 'upper'), path.join(overlay, 'work'));
  return true;
}

/** Unmounts a bundle's overlay rootfs, keeping the writable layer and the registration
 * (remountBundle mounts it again). Refuses while a process still has its root there. */
export function unmountBundle(dir: string): void {
  const rootfs = path.join(path.resolve(dir), 'rootfs');
  if (!isMountPoint(rootfs)) return;
  const users = processesRootedIn(rootfs);
  if (users.length) throw new HuskError(`${rootfs} is in use by process${users.length > 1 ? 'es' : ''} ${users.slice(0, 5).join(', ')}`);
  sys.unmount(rootfs);
}
