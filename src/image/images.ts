// What the store holds, by name: find, list, inspect, remove, prune.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError } from '../errors';
import { liveRegistrations, loadImage, readRegistrations, type LoadedImage } from './bundle';
import { hexOf, isDigest, shortDigest } from './digest';
import { parseManifestDocument, parseImageConfig } from './manifest';
import { DOCKER_HUB, familiarName, parseReference } from './reference';
import { parseSource, sourceName } from './source';
import type { ImageRef, ImageStore } from './store';
import { readMountInfo } from '../host/mountinfo';

export interface Found {
  /** The names that matched (one for a name; every name of the image for a digest). */
  names: string[];
  ref: ImageRef;
}

/** Finds an image by name (any form the user may type), manifest digest or image ID (prefix). */
export function findImage(store: ImageStore, query: string): Found | undefined {
  const refs = store.readRefs().images;
  try {
    const name = sourceName(parseSource(query));
    if (refs[name]) return { names: [name], ref: refs[name] };
  } catch {
    // not a name: maybe a digest
  }
  const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(query);
  if (m) {
    const hits = Object.entries(refs).filter(([, r]) => hexOf(r.digest).startsWith(m[1]) || hexOf(r.config).startsWith(m[1]));
    const digests = new Set(hits.map(([, r]) => r.digest));
    if (digests.size > 1) throw new HuskError(`${query} is ambiguous: it matches ${[...digests].map(shortDigest).join(', ')}`);
    if (hits.length) return { names: hits.map(([n]) => n), ref: hits[0][1] };
  }
  return undefined;
}

export function loadFound(store: ImageStore, found: Found): LoadedImage {
  return loadImage(store, found.names[0], found.ref);
}

/** Repository and tag columns for a stored name. */
export function splitName(name: string): { repository: string; tag: string } {
  const transport = /^(oci|oci-archive|docker-archive):/.exec(name);
  if (transport) {
    const rest = name.slice(transport[0].length);
    const colon = rest.indexOf(':');
    return colon >= 0 ? { repository: `${transport[0]}${rest.slice(0, colon)}`, tag: rest.slice(colon + 1) } : { repository: name, tag: '<none>' };
  }
  try {
    const ref = parseReference(name);
    const repository = ref.registry === DOCKER_HUB ? familiarName(ref) : `${ref.registry}/${ref.repository}`;
    return { repository, tag: ref.tag ?? '<none>' };
  } catch {
    return { repository: name, tag: '<none>' };
  }
}

export interface ImageRow {
  name: string;
  repository: string;
  tag: string;
  digest: string;
  id: string;
  platform: string;
  size: number;
  pulled: string;
}

function imageSize(store: ImageStore, ref: ImageRef): number {
  try {
    const config = parseImageConfig(store.readBlob(ref.config), 'config');
    const seen = new Set<string>();
    let size = 0;
    for (const d of config.rootfs.diff_ids) {
      if (seen.has(d)) continue;
      seen.add(d);
      size += store.layerMeta(d)?.contentSize ?? 0;
    }
    return size;
  } catch {
    return 0;
  }
}

export function listImages(store: ImageStore): ImageRow[] {
  if (!store.exists()) return [];
  const rows: ImageRow[] = [];
  for (const [name, ref] of Object.entries(store.readRefs().images)) {
    const { repository, tag } = splitName(name);
    rows.push({ name, repository, tag, digest: ref.digest, id: ref.config, platform: ref.platform, size: imageSize(store, ref), pulled: ref.pulled });
  }
  return rows.sort((a, b) => (a.pulled < b.pulled ? 1 : a.pulled > b.pulled ? -1 : a.name.localeCompare(b.name)));
}

export function inspectImage(store: ImageStore, query: string) {
  const found = findImage(store, query);
  if (!found) throw new HuskError(`no image ${JSON.stringify(query)} in the store ${store.dir}`);
  const image = loadFound(store, found);
  const all = Object.entries(store.readRefs().images).filter(([, r]) => r.digest === found.ref.digest).map(([n]) => n);
  const diffIDs = image.config.rootfs.diff_ids;
  return {
    names: all,
    digest: found.ref.digest,
    ...(found.ref.index ? { index: found.ref.index } : {}),
    id: found.ref.config,
    platform: found.ref.platform,
    source: found.ref.source,
    pulled: found.ref.pulled,
    size: imageSize(store, found.ref),
    config: image.config,
    layers: image.manifest.layers.map((l, i) => {
      const meta = store.layerMeta(diffIDs[i]);
      return {
        digest: l.digest,
        mediaType: l.mediaType,
        size: l.size,
        diffID: diffIDs[i],
        ...(meta ? { unpackedSize: meta.contentSize, entries: meta.entries, path: path.join(store.layerDir(diffIDs[i]), 'diff') } : {}),
      };
    }),
  };
}

/** Bundles (mounted) that use an image's manifest. */
function usersOf(store: ImageStore, digest: string): string[] {
  return liveRegistrations(store)
    .filter(({ reg }) => reg.image.digest === digest)
    .map(({ reg }) => (reg.container ? `container ${reg.container.id}` : `bundle ${reg.bundle}`));
}

/**
 * Removes names. A digest or image ID removes every name of that image. An image that a
 * mounted bundle or container uses is refused unless forced (then only its names go: its
 * layers stay until nothing uses them). Unused blobs and layers are collected afterwards.
 */
export async function removeImages(store: ImageStore, queries: string[], force: boolean): Promise<{ untagged: string[]; collected: GcResult }> {
  const held = await store.lockStore('ex');
  try {
    const untagged: string[] = [];
    const plan: string[] = [];
    const refs = store.readRefs().images;
    for (const q of queries) {
      const found = findImage(store, q);
      if (!found) throw new HuskError(`no image ${JSON.stringify(q)} in the store ${store.dir}`);
      const digestQuery = /^(sha256:)?[a-f0-9]{4,64}$/.test(q) && !refs[q];
      const names = digestQuery ? Object.entries(refs).filter(([, r]) => r.digest === found.ref.digest).map(([n]) => n) : found.names;
      const remaining = Object.entries(refs).filter(([n, r]) => r.digest === found.ref.digest && !names.includes(n) && !plan.includes(n));
      if (!remaining.length && !force) {
        const users = usersOf(store, found.ref.digest);
        if (users.length) throw new HuskError(`image ${q} is in use by ${users.join(', ')} (remove those first, or --force)`);
      }
      plan.push(...names);
    }
    await store.updateRefs((r) => {
      for (const n of plan) {
        if (r.images[n]) {
          delete r.images[n];
          untagged.push(n);
        }
      }
    });
    return { untagged, collected: collectGarbage(store) };
  } finally {
    held.release();
  }
}

export interface GcResult {
  blobs: number;
  layers: number;
  bytes: number;
  registrations: number;
  tmp: number;
}

function duBytes(p: string): number {
  let total = 0;
  const walk = (f: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(f);
    } catch {
      return;
    }
    total += st.isFile() ? st.size : 0;
    if (st.isDirectory()) for (const e of fs.readdirSync(f)) walk(path.join(f, e));
  };
  walk(p);
  return total;
}

/**
 * Deletes what no name and no mounted bundle uses: blobs, layers and their links, dangling
 * links, stale registrations, tmp/ leftovers nobody holds. Caller holds the store lock
 * exclusively.
 */
export function collectGarbage(store: ImageStore): GcResult {
  const result: GcResult = { blobs: 0, layers: 0, bytes: 0, registrations: 0, tmp: 0 };
  const keepBlobs = new Set<string>();
  const keepLayers = new Set<string>();
  const keepImage = (digest: string, config: string, index?: string) => {
    keepBlobs.add(digest);
    keepBlobs.add(config);
    if (index) keepBlobs.add(index);
    try {
      const doc = parseManifestDocument(store.readBlob(digest), undefined, 'manifest');
      if (doc.kind === 'manifest') for (const l of doc.manifest.layers) keepBlobs.add(l.digest);
      for (const d of parseImageConfig(store.readBlob(config), 'config').rootfs.diff_ids) keepLayers.add(d);
    } catch {
      // a broken image keeps what it names, nothing more
    }
  };
  for (const ref of Object.values(store.readRefs().images)) keepImage(ref.digest, ref.config, ref.index);
  const mounted = new Set(readMountInfo().map((m) => m.mountPoint));
  for (const { file, reg } of readRegistrations(store)) {
    if (mounted.has(reg.rootfs)) {
      keepBlobs.add(reg.image.digest);
      keepBlobs.add(reg.image.config);
      for (const d of reg.layers) keepLayers.add(d);
    } else {
      fs.rmSync(file, { force: true });
      result.registrations++;
    }
  }
  for (const alg of ['sha256', 'sha512']) {
    const dir = path.join(store.blobs, alg);
    for (const hex of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      const digest = `${alg}:${hex}`;
      if (keepBlobs.has(digest) && isDigest(digest)) continue;
      const file = path.join(dir, hex);
      result.bytes += fs.statSync(file).size;
      fs.rmSync(file, { force: true });
      result.blobs++;
    }
  }
  const layerRoot = path.join(store.layers, 'sha256');
  for (const hex of fs.existsSync(layerRoot) ? fs.readdirSync(layerRoot) : []) {
    const diffID = `sha256:${hex}`;
    if (keepLayers.has(diffID)) continue;
    const dir = path.join(layerRoot, hex);
    const meta = store.layerMeta(diffID);
    result.bytes += meta?.contentSize ?? duBytes(dir);
    if (meta) fs.rmSync(path.join(store.links, meta.link), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    result.layers++;
  }
  for (const link of fs.existsSync(store.links) ? fs.readdirSync(store.links) : []) {
    const file = path.join(store.links, link);
    if (!fs.existsSync(file)) fs.rmSync(file, { force: true });
  }
  result.tmp = store.cleanTmp(true).length;
  return result;
}

/** prune: garbage collection; with `all`, also every image no mounted bundle uses. */
export async function pruneImages(store: ImageStore, all: boolean): Promise<{ untagged: string[]; collected: GcResult }> {
  if (!store.exists()) return { untagged: [], collected: { blobs: 0, layers: 0, bytes: 0, registrations: 0, tmp: 0 } };
  const held = await store.lockStore('ex');
  try {
    const untagged: string[] = [];
    if (all) {
      const used = new Set(liveRegistrations(store).map(({ reg }) => reg.image.digest));
      await store.updateRefs((r) => {
        for (const [n, ref] of Object.entries(r.images)) {
          if (!used.has(ref.digest)) {
            delete r.images[n];
            untagged.push(n);
          }
        }
      });
    }
    return { untagged, collected: collectGarbage(store) };
  } finally {
    held.release();
  }
}
