// Opening an image source (source.ts names them) as one interface: the top manifest or
// index, manifests by descriptor, and blobs as streams. Archives are unpacked (with the same
// hostile-safe unpacker as layers) into a private directory under the store's tmp/, which
// close() removes.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import { HuskError, reason } from '../errors';
import { native } from '../native';
import { algorithmOf, checkDigest, digestOf, hexOf } from './digest';
import { MEDIA, parseManifestDocument, type Descriptor, type Index, type Manifest } from './manifest';
import { formatReference, parseReference, type Reference } from './reference';
import { RegistryClient, type RegistryOptions } from './registry';
import type { SourceSpec } from './source';
import { sourceName } from './source';
import type { ImageStore } from './store';
import { resolveInRoot } from '../host/rootfs';
import { unpackLayer } from './unpack';
import { sniffFile } from './compression';

export interface TopDocument {
  data: Buffer;
  mediaType?: string;
  digest: string;
}

export interface OpenedSource {
  /** For messages: the source as the user named it. */
  describe: string;
  /** Names to record the image under (the source's own, plus RepoTags and the like). */
  names: string[];
  top(): Promise<TopDocument>;
  manifest(desc: Descriptor): Promise<Buffer>;
  blob(desc: Descriptor, offset: number): Promise<{ stream: Readable; offset: number }>;
  close(): void;
}

function readLimited(file: string, what: string, max = 16 * 1024 * 1024): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new HuskError(`${what}: ${reason(err)}`);
  }
  if (!st.isFile()) throw new HuskError(`${what}: not a regular file`);
  if (st.size > max) throw new HuskError(`${what}: ${st.size} bytes, more than husk reads for a manifest (${max})`);
  return fs.readFileSync(file);
}

function verified(data: Buffer, desc: Descriptor, what: string): Buffer {
  if (data.length !== desc.size) throw new HuskError(`${what}: size ${data.length} bytes, but its descriptor gives ${desc.size}`);
  const actual = digestOf(data, algorithmOf(desc.digest));
  if (actual !== desc.digest) throw new HuskError(`${what}: digest mismatch: got ${actual}, expected ${desc.digest}`);
  return data;
}

// ------------------------------------------------------------------------------ registry

function registrySource(spec: Extract<SourceSpec, { kind: 'registry' }>, opts: RegistryOptions): OpenedSource {
  const ref = spec.ref;
  const client = new RegistryClient(ref.registry, ref.repository, opts);
  const describe = formatReference(ref);
  return {
    describe,
    names: [sourceName(spec)],
    async top() {
      const got = await client.getManifest(ref.digest ?? ref.tag!, describe);
      if (ref.digest && got.digest !== ref.digest) {
        throw new HuskError(`${describe}: digest mismatch: the registry sent a manifest with digest ${got.digest}`);
      }
      return got;
    },
    async manifest(desc) {
      const got = await client.getManifest(desc.digest, `${describe}: manifest ${desc.digest}`);
      return verified(got.data, desc, `${describe}: manifest ${desc.digest}`);
    },
    blob(desc, offset) {
      return client.getBlob(desc.digest, offset, `${describe}: blob ${desc.digest}`);
    },
    close() {},
  };
}

// ------------------------------------------------------------------------------ OCI layout

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

function layoutBlobPath(dir: string, digest: string): string {
  // The digest was checked against the digest grammar: no "/" or ".." can be in it.
  return path.join(dir, 'blobs', algorithmOf(digest), hexOf(digest));
}

function readIndexJson(dir: string, what: string): Index {
  const layout = path.join(dir, 'oci-layout');
  if (!fs.existsSync(layout)) throw new HuskError(`${what}: ${dir} is not an OCI image layout (no oci-layout file)`);
  const doc = parseManifestDocument(readLimited(path.join(dir, 'index.json'), `${what}: index.json`), MEDIA.ociIndex, `${what}: index.json`);
  if (doc.kind !== 'index') throw new HuskError(`${what}: index.json is not an index`);
  return doc.index;
}

/** Picks the image of an OCI layout: by tag (ref.name, or a containerd image name), or the only one. */
function pickFromLayout(index: Index, tag: string | undefined, ref: Reference | undefined, what: string): Descriptor | 'index' {
  const tags = index.manifests.map((m) => m.annotations?.[REF_NAME]).filter((t): t is string => Boolean(t));
  if (tag !== undefined || ref) {
    const wanted = ref ? formatReference(ref) : undefined;
    const found = index.manifests.find((m) => {
      const a = m.annotations ?? {};
      if (tag !== undefined && a[REF_NAME] === tag) return true;
      if (wanted && a[CONTAINERD_NAME]) {
        try {
          return formatReference(parseReference(a[CONTAINERD_NAME])) === wanted;
        } catch {
          return false;
        }
      }
      return false;
    });
    if (found) return found;
    throw new HuskError(`${what}: no image named ${JSON.stringify(tag ?? wanted)} in the layout${tags.length ? ` (it has: ${tags.join(', ')})` : ''}`);
  }
  if (index.manifests.length === 1) return index.manifests[0];
  if (!index.manifests.length) throw new HuskError(`${what}: the layout's index.json lists no image`);
  if (index.manifests.every((m) => m.platform) && new Set(tags).size <= 1) return 'index';
  throw new HuskError(`${what}: the layout holds ${index.manifests.length} images: name one${tags.length ? ` (${tags.join(', ')})` : ''}`);
}

function layoutSource(dir: string, tag: string | undefined, ref: Reference | undefined, describe: string, names: string[], close: () => void): OpenedSource {
  const index = readIndexJson(dir, describe);
  const picked = pickFromLayout(index, tag, ref, describe);
  const extra = picked !== 'index' && picked.annotations?.[CONTAINERD_NAME];
  if (extra) {
    try {
      names.push(formatReference(parseReference(extra)));
    } catch {
      // not a reference: not recorded
    }
  }
  return {
    describe,
    names,
    async top() {
      if (picked === 'index') {
        const data = readLimited(path.join(dir, 'index.json'), `${describe}: index.json`);
        return { data, mediaType: MEDIA.ociIndex, digest: digestOf(data) };
      }
      const data = verified(readLimited(layoutBlobPath(dir, picked.digest), `${describe}: manifest ${picked.digest}`), picked, `${describe}: manifest ${picked.digest}`);
      return { data, mediaType: picked.mediaType, digest: picked.digest };
    },
    async manifest(desc) {
      return verified(readLimited(layoutBlobPath(dir, desc.digest), `${describe}: manifest ${desc.digest}`), desc, `${describe}: manifest ${desc.digest}`);
    },
    async blob(desc, offset) {
      const file = layoutBlobPath(dir, desc.digest);
      if (!fs.existsSync(file)) throw new HuskError(`${describe}: blob ${desc.digest} is missing from the layout`);
      return { stream: fs.createReadStream(file, { start: offset, highWaterMark: 1024 * 1024 }), offset };
    },
    close,
  };
}

// ------------------------------------------------------------------------------ archives

/** Unpacks an archive into a private, locked directory under the store's tmp/. */
async function unpackArchive(store: ImageStore, file: string, what: string): Promise<{ dir: string; close: () => void }> {
  if (!fs.existsSync(file)) throw new HuskError(`${what}: ${file} does not exist`);
  const dir = fs.mkdtempSync(path.join(store.tmp, 'archive-'));
  const fd = fs.openSync(dir, 'r');
  native.flock(fd, 'ex', true);
  const close = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.closeSync(fd);
  };
  try {
    await unpackLayer(file, dir, { mode: 'flatten', what, sameOwner: false });
  } catch (err) {
    close();
    throw err;
  }
  return { dir, close };
}

interface DockerArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

function dockerArchiveSource(dir: string, spec: Extract<SourceSpec, { kind: 'docker-archive' }>, describe: string, close: () => void): OpenedSource {
  const manifestFile = path.join(dir, 'manifest.json');
  if (!fs.existsSync(manifestFile)) {
    if (fs.existsSync(path.join(dir, 'oci-layout'))) return layoutSource(dir, undefined, spec.ref, describe, [sourceName(spec)], close);
    throw new HuskError(`${describe}: not a docker archive (no manifest.json)`);
  }
  let entries: DockerArchiveEntry[];
  try {
    entries = JSON.parse(readLimited(manifestFile, `${describe}: manifest.json`).toString('utf8'));
    if (!Array.isArray(entries)) throw new Error('not an array');
  } catch (err) {
    throw new HuskError(`${describe}: manifest.json: ${(err as Error).message}`);
  }
  const normalized = (t: string) => {
    try {
      return formatReference(parseReference(t));
    } catch {
      return t;
    }
  };
  let entry: DockerArchiveEntry | undefined;
  const allTags = entries.flatMap((e) => e.RepoTags ?? []);
  if (spec.ref) {
    const wanted = formatReference(spec.ref);
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => normalized(t) === wanted));
    if (!entry) throw new HuskError(`${describe}: no image tagged ${wanted} in the archive${allTags.length ? ` (it has: ${allTags.join(', ')})` : ''}`);
  } else if (spec.index !== undefined) {
    entry = entries[spec.index];
    if (!entry) throw new HuskError(`${describe}: the archive has ${entries.length} images, no @${spec.index}`);
  } else {
    if (entries.length !== 1) throw new HuskError(`${describe}: the archive holds ${entries.length} images: name one (${allTags.join(', ') || '@0, @1, ...'})`);
    entry = entries[0];
  }
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) throw new HuskError(`${describe}: manifest.json: an entry lacks Config or Layers`);
  const member = (name: string) => {
    const abs = resolveInRoot(dir, name);
    if (!abs) throw new HuskError(`${describe}: ${JSON.stringify(name)} is missing from the archive`);
    return abs;
  };
  const configFile = member(entry.Config);
  const configData = readLimited(configFile, `${describe}: ${entry.Config}`);
  const files = new Map<string, string>();
  const configDesc: Descriptor = { mediaType: MEDIA.ociConfig, digest: digestOf(configData), size: configData.length };
  files.set(configDesc.digest, configFile);
  const layers: Descriptor[] = entry.Layers.map((name) => {
    const file = member(name);
    const fromName = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    const digest = fromName ? `sha256:${fromName[1]}` : hashFile(file);
    const compression = sniffFile(file);
    const mediaType = compression === 'gzip' ? MEDIA.ociLayerGzip : compression === 'zstd' ? MEDIA.ociLayerZstd : MEDIA.ociLayerTar;
    files.set(digest, file);
    return { mediaType, digest: checkDigest(digest, `${describe}: layer ${name}`), size: fs.statSync(file).size };
  });
  const manifest: Manifest = { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: configDesc, layers };
  const data = Buffer.from(JSON.stringify(manifest));
  const names = [sourceName(spec), ...(entry.RepoTags ?? []).map(normalized)];
  return {
    describe,
    names,
    async top() {
      return { data, mediaType: MEDIA.ociManifest, digest: digestOf(data) };
    },
    async manifest(desc) {
      throw new HuskError(`${describe}: no manifest ${desc.digest} in a docker archive`);
    },
    async blob(desc, offset) {
      const file = files.get(desc.digest);
      if (!file) throw new HuskError(`${describe}: blob ${desc.digest} is not in the archive`);
      return { stream: fs.createReadStream(file, { start: offset, highWaterMark: 1024 * 1024 }), offset };
    },
    close,
  };
}

function hashFile(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${hash.digest('hex')}`;
}

export async function openSource(store: ImageStore, spec: SourceSpec, opts: RegistryOptions = {}): Promise<OpenedSource> {
  const describe = sourceName(spec);
  switch (spec.kind) {
    case 'registry':
      return registrySource(spec, opts);
    case 'oci':
      if (!fs.statSync(spec.path, { throwIfNoEntry: false })?.isDirectory()) throw new HuskError(`${describe}: ${spec.path} is not a directory`);
      return layoutSource(spec.path, spec.tag, undefined, describe, [describe], () => undefined);
    case 'oci-archive': {
      const { dir, close } = await unpackArchive(store, spec.path, describe);
      try {
        return layoutSource(dir, spec.tag, undefined, describe, [describe], close);
      } catch (err) {
        close();
        throw err;
      }
    }
    case 'docker-archive': {
      const { dir, close } = await unpackArchive(store, spec.path, describe);
      try {
        return dockerArchiveSource(dir, spec, describe, close);
      } catch (err) {
        close();
        throw err;
      }
    }
  }
}
