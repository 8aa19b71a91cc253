// `husk image run`: docker run in one command. Find the image in the store (or pull it), make
// a container id and a bundle under <store>/containers/<id> (overlay rootfs with its own
// writable layer), then hand it to the same run() as `husk run`: create, start, wait.
//
// The overlay mount belongs to the container's lifetime:
//  - foreground with --rm: the container is deleted when it exits, then the bundle (mount,
//    writable layer) is removed here;
//  - otherwise (kept after exit, or -d): config.json carries a poststop hook running
//    `husk image unbundle`, so `husk delete` removes the bundle, whoever runs it;
//  - -d --rm: a small reaper process waits for the container to stop and deletes it;
//  - a failure anywhere before the container exists undoes the bundle at once.
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { HuskError } from '../errors';
import { log } from '../host/log';
import { Store } from '../runtime/store';
import { validateId } from '../runtime/ids';
import type { Hooks } from '../spec/types';
import { createBundle, loadImage, processesRootedIn, removeBundle, type LoadedImage } from './bundle';
import { resourcesFromRunFlags, type ResourceFlags } from './convert';
import { findImage } from './images';
import { parsePlatform, formatPlatform } from './manifest';
import { createProgress } from './progress';
import { pull } from './pull';
import { parseSource } from './source';
import { ImageStore } from './store';
import { isMountPoint } from '../host/mountinfo';
import { sleep } from '../host/sleep';
import { HUSK_BIN } from '../host/huskBin';
import { containerNetwork, type ContainerNetwork, type NetworkFlags } from '../network/options';

export interface ImageRunOptions extends ResourceFlags, NetworkFlags {
  root: string;
  store: string;
  image: string;
  cmd: string[];
  name?: string;
  rm?: boolean;
  detach?: boolean;
  tty?: boolean;
  env?: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  platform?: string;
  pull?: string;
  quiet?: boolean;
  readOnly?: boolean;
  hostname?: string;
  consoleSocket?: string;
  insecureRegistry?: string[];
  systemdCgroup?: boolean;
  trace?: boolean;
  /** The caller's global flags, for the calls husk makes later on its behalf. */
  globalArgs?: string[];
}

/** The image from the store, unless it is missing or --pull always says to pull it anyway. */
export function storedImage(store: ImageStore, text: string, o: { pull?: string; platform?: string }): LoadedImage | undefined {
  const policy = o.pull ?? 'missing';
  if (!['missing', 'always', 'never'].includes(policy)) throw new HuskError(`--pull ${JSON.stringify(policy)}: expected missing, always or never`);
  if (policy === 'always' || !store.exists()) return undefined;
  const platform = o.platform ? parsePlatform(o.platform) : undefined;
  const found = findImage(store, text);
  if (found && (!platform || found.ref.platform === formatPlatform(platform))) return loadImage(store, found.names[0], found.ref);
  return undefined;
}

/** The image from the store, pulled first when missing (or always, with --pull always). */
export async function findOrPull(store: ImageStore, text: string, o: { pull?: string; platform?: string; quiet?: boolean; insecureRegistry?: string[] }): Promise<LoadedImage> {
  const stored = storedImage(store, text, o);
  if (stored) return stored;
  const policy = o.pull ?? 'missing';
  const platform = o.platform ? parsePlatform(o.platform) : undefined;
  if (policy === 'never') throw new HuskError(`no image ${JSON.stringify(text)} in the store ${store.dir} (and --pull never)`);
  const source = parseSource(text);
  const progress = createProgress(o.quiet ? 'quiet' : 'auto');
  const pulled = await pull(store, source, { platform, progress, insecure: o.insecureRegistry });
  return loadImage(store, pulled.names[0], pulled.ref);
}

/**
 * The network flags checked, and with a CNI network, the network and its plugins found, before
 * anything is pulled or made: an unknown network, a configuration that does not parse or a
 * missing plugin fails here. The default network `husk` is written on its first use.
 */
export function networkOf(flags: NetworkFlags): ContainerNetwork {
  return findNetwork(containerNetwork(flags));
}

function findNetwork(net: ContainerNetwork): ContainerNetwork {
  if (typeof net.network === 'object') {
    const { ensureNetwork } = require('../network/networks') as typeof import('../network/networks');
    const { findPlugin } = require('../network/cni') as typeof import('../network/cni');
    const { attach } = net.network;
    const list = ensureNetwork(attach.configDir, attach.network);
    for (const plugin of list.plugins) findPlugin(plugin.type, attach.pluginDirs);
  }
  return net;
}

function newContainerId(): string {
  return randomBytes(16).toString('hex');
}

function unbundleHook(store: ImageStore, dir: string): Hooks {
  return { poststop: [{ path: HUSK_BIN, args: [HUSK_BIN, 'image', 'unbundle', '--store', store.dir, dir] }] };
}

/** The unbundle hook done in this process when this process deletes the container (--rm in
 * the foreground): `husk image unbundle --store STORE DIR`. */
function unbundleHere(args: string[]) {
  if (args.length !== 3 || args[0] !== '--store') throw new HuskError(`image unbundle: unexpected hook arguments ${JSON.stringify(args)}`);
  removeBundle(new ImageStore(args[1]), args[2], true);
}

function splitArgs(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  // docker run --entrypoint takes one string: the program (no shell splitting).
  return text === '' ? [] : [text];
}

export async function imageRun(o: ImageRunOptions): Promise<number> {
  const resources = resourcesFromRunFlags(o);
  const net = containerNetwork(o);
  const id = o.name ?? newContainerId();
  validateId(id);
  const state = new Store(o.root);
  if (state.exists(id)) throw new HuskError(`container "${id}" already exists`);
  if (typeof net.network === 'object') {
    // Attachments of containers that were killed (their poststop hook never ran) hold
    // addresses and host ports: released first, so they do not stand in this one's way.
    const { sweep } = require('../network/attach') as typeof import('../network/attach');
    await sweep();
    findNetwork(net);
  }
  const store = new ImageStore(o.store).init();
  const image = await findOrPull(store, o.image, o);
  const dir = path.join(store.containers, id);
  if (fs.existsSync(dir)) {
    // Left by a container whose state is gone (a crash, or a state root wiped at reboot).
    if (isMountPoint(path.join(dir, 'rootfs')) && processesRootedIn(path.join(dir, 'rootfs')).length) {
      throw new HuskError(`${dir} is still in use by a container named ${id} in another state root`);
    }
    removeBundle(store, dir, true);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const foregroundRm = Boolean(o.rm && !o.detach);
  await createBundle(store, image, dir, {
    cmd: o.cmd,
    entrypoint: splitArgs(o.entrypoint),
    env: o.env,
    workdir: o.workdir,
    user: o.user,
    terminal: o.tty,
    hostname: o.hostname ?? id.slice(0, 12),
    network: net.network,
    dns: net.dns,
    addHosts: net.addHosts,
    resources,
    readonlyRootfs: o.readOnly,
    networkFiles: true,
    container: { id, root: path.resolve(o.root) },
    // Every container's delete unbundles, whoever runs it: the foreground husk that removes it
    // (--rm), or a later `husk delete` when this husk was killed first.
    hooks: unbundleHook(store, dir),
  });
  if (foregroundRm) (require('../runtime/hooks') as typeof import('../runtime/hooks')).doOwnHook('image unbundle', unbundleHere);
  const { run } = require('../runtime/create') as typeof import('../runtime/create');
  let code: number;
  try {
    code = await run({
      root: o.root, id, bundle: dir, detach: Boolean(o.detach), keep: !o.rm, consoleSocket: o.consoleSocket, systemdCgroup: o.systemdCgroup,
      globalArgs: o.globalArgs,
    });
  } catch (err) {
    // create() removed the container's state; its bundle goes too (unless the container
    // exists after all, when delete's hook will).
    if (!state.exists(id)) {
      try {
        removeBundle(store, dir, true);
      } catch (e) {
        log.warn(`removing ${dir}: ${(e as Error).message}`);
      }
    }
    throw err;
  }
  if (o.detach) {
    if (o.rm) startReaper(o, store, id);
    process.stdout.write(`${id}\n`);
    return 0;
  }
  if (foregroundRm) removeBundle(store, dir, true);
  return code;
}

/** -d --rm: a detached husk that deletes the container once it has stopped. */
function startReaper(o: ImageRunOptions, store: ImageStore, id: string) {
  const child = spawn(HUSK_BIN, ['--root', o.root, 'image', 'reap', '--store', store.dir, id], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}

/** The reaper's loop: poll the container's status; once stopped, delete it (its hook unbundles). */
export async function reap(root: string, id: string): Promise<void> {
  const { remove } = require('../runtime/container') as typeof import('../runtime/container');
  const state = new Store(root);
  for (;;) {
    if (!state.exists(id)) return;
    let status: string;
    try {
      const record = state.read(id);
      status = state.refresh(record);
    } catch {
      return;
    }
    if (status === 'stopped') {
      await remove(root, id, true).catch(() => undefined);
      return;
    }
    await sleep(200);
  }
}
