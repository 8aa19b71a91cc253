// Pulling an image into the store: resolve the top manifest (or index, then the manifest for
// the platform), fetch the config, then every layer blob (three at a time, as Docker does),
// unpacking each while it downloads; finally record the image's names. Everything fetched
// is checked against its digest and size while it streams (store.ts).
import { once } from 'events';
import * as fs from 'fs';
import { PassThrough } from 'stream';
import { HuskError } from '../errors';
import { shortDigest } from './digest';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parseImageConfig,
  parseManifestDocument,
  platformMatches,
  selectPlatform,
  type Descriptor,
  type ImageConfig,
  type Manifest,
  type Platform,
} from './manifest';
import { createProgress, type Progress } from './progress';
import type { RegistryOptions } from './registry';
import { sourceName, type SourceSpec } from './source';
import { openSource, type OpenedSource } from './sources';
import type { ImageRef, ImageStore } from './store';
import { unpackLayer, unpackLayerStream, type UnpackResult } from './unpack';

/** The options of a pull; `signal` (RegistryOptions) stops a download from any source. */
export interface PullOptions extends RegistryOptions {
  platform?: Platform;
  progress?: Progress;
  /** How many layers are fetched at once (default 3). */
  concurrency?: number;
}

export interface PulledImage {
  names: string[];
  ref: ImageRef;
  manifest: Manifest;
  config: ImageConfig;
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (err) {
        if (failed === undefined) failed = err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/** Downloads a layer blob into the store while unpacking the same bytes into `dir`. */
async function downloadAndUnpack(store: ImageStore, source: OpenedSource, desc: Descriptor, diffID: string, dir: string, what: string, progress: Progress, signal?: AbortSignal): Promise<UnpackResult> {
  const tee = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  // The unpack destroys its input when it fails; late writes must not turn into an 'error'.
  tee.on('error', () => undefined);
  const unpacking = unpackLayerStream(tee, dir, { mode: 'overlay', what, diffID });
  let failure: unknown;
  unpacking.catch((err) => (failure = err));
  const unpackFailed = unpacking.then(() => new Promise<never>(() => undefined));
  unpackFailed.catch(() => undefined);
  let fed = 0;
  let blob: string;
  try {
    blob = await store.ingestBlob(desc, (offset) => source.blob(desc, offset), what, {
      signal,
      onBytes: (n) => progress.update(desc.digest, n),
      async onChunk(chunk) {
        // Once the unpack has failed, the rest is only downloaded to check the digest: a
        // corrupt blob is reported as the digest mismatch it is, not as a broken tar.
        fed += chunk.length;
        if (failure !== undefined || tee.destroyed) return;
        if (!tee.write(chunk)) await Promise.race([once(tee, 'drain'), unpackFailed]).catch(() => undefined);
      },
    });
  } catch (err) {
    tee.destroy();
    await unpacking.catch(() => undefined);
    throw err;
  }
  progress.update(desc.digest, desc.size, 'downloaded');
  progress.update(desc.digest, fed, 'unpacking');
  if (tee.destroyed) return unpacking;
  if (fed === 0 && desc.size > 0) {
    // Another pull downloaded it meanwhile (or resumed a partial one): unpack the file.
    fs.createReadStream(blob, { highWaterMark: 1024 * 1024 }).pipe(tee);
  } else {
    tee.end();
  }
  return unpacking;
}

export async function pull(store: ImageStore, spec: SourceSpec, opts: PullOptions = {}): Promise<PulledImage> {
  store.init();
  const progress = opts.progress ?? createProgress('quiet');
  const want = opts.platform ?? hostPlatform();
  const held = await store.lockStore('sh', () => progress.line('waiting for the image store (a prune or remove is running)'));
  const source = await openSource(store, spec, opts).catch((err) => {
    held.release();
    throw err;
  });
  try {
    store.cleanTmp(false, 60_000);
    const describe = source.describe;
    const top = await source.top();
    let doc = parseManifestDocument(top.data, top.mediaType, describe);
    store.putBlob(top.digest, top.data, describe);
    let indexDigest: string | undefined;
    let manifestDigest = top.digest;
    if (doc.kind === 'index') {
      indexDigest = top.digest;
      const desc = selectPlatform(doc.index, want, describe);
      const data = await source.manifest(desc);
      doc = parseManifestDocument(data, desc.mediaType, `${describe}: manifest ${desc.digest}`);
      if (doc.kind !== 'manifest') throw new HuskError(`${describe}: manifest ${desc.digest} for ${formatPlatform(want)} is itself an index`);
      store.putBlob(desc.digest, data, describe);
      manifestDigest = desc.digest;
    }
    const manifest = doc.manifest;
    await store.ingestBlob(manifest.config, (offset) => source.blob(manifest.config, offset), `${describe}: config ${manifest.config.digest}`);
    const config = parseImageConfig(store.readBlob(manifest.config.digest), `${describe}: config`);
    const platform = normalizePlatform({ os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', variant: config.variant });
    if (!indexDigest && opts.platform && !platformMatches(want, platform)) {
      throw new HuskError(`${describe}: the image is for ${formatPlatform(platform)}, not ${formatPlatform(want)}`);
    }
    const diffIDs = config.rootfs.diff_ids;
    if (diffIDs.length !== manifest.layers.length) {
      throw new HuskError(`${describe}: the manifest has ${manifest.layers.length} layers but the config names ${diffIDs.length} diff_ids`);
    }
    // The same layer may appear twice in one image: fetch and unpack it once.
    const unique = new Map<string, { desc: Descriptor; diffID: string }>();
    manifest.layers.forEach((desc, i) => unique.set(diffIDs[i], { desc, diffID: diffIDs[i] }));
    const layers = [...unique.values()];
    for (const { desc } of layers) progress.item(desc.digest, shortDigest(desc.digest), desc.size);
    // Layers already unpacked are told at once, before any download starts (as Docker does).
    for (const { desc, diffID } of layers) if (store.layerMeta(diffID)) progress.update(desc.digest, desc.size, 'exists');
    await eachLimited(layers, opts.concurrency ?? 3, async ({ desc, diffID }) => {
      const what = `${describe}: layer ${desc.digest}`;
      if (store.layerMeta(diffID)) {
        progress.update(desc.digest, desc.size, 'exists');
        return;
      }
      const meta = (r: UnpackResult) => ({ tarSize: r.tarSize, contentSize: r.contentSize, entries: r.entries, ...(r.implicitDirs.length ? { implicitDirs: r.implicitDirs } : {}) });
      try {
        progress.update(desc.digest, 0, 'downloading');
        if (store.hasBlob(desc.digest, desc.size) || store.hasPartial(desc.digest)) {
          // In the store already, or a download to resume: fetch, then unpack the file.
          const blob = await store.ingestBlob(desc, (offset) => source.blob(desc, offset), what, { signal: opts.signal, onBytes: (n) => progress.update(desc.digest, n) });
          progress.update(desc.digest, desc.size, 'downloaded');
          progress.update(desc.digest, 0, 'unpacking');
          await store.ensureLayer(diffID, async (dir) => meta(await unpackLayer(blob, dir, { mode: 'overlay', what, diffID, onProgress: (n) => progress.update(desc.digest, n) })));
        } else {
          // A fresh download is unpacked as it arrives; the layer is committed only once the
          // blob's digest and the layer's diffID both checked out.
          await store.ensureLayer(diffID, async (dir) => meta(await downloadAndUnpack(store, source, desc, diffID, dir, what, progress, opts.signal)));
        }
        progress.update(desc.digest, desc.size, 'done');
      } catch (err) {
        progress.update(desc.digest, 0, 'failed');
        throw err;
      }
    });
    progress.end();
    const ref: ImageRef = {
      digest: manifestDigest,
      ...(indexDigest ? { index: indexDigest } : {}),
      config: manifest.config.digest,
      platform: formatPlatform(platform),
      source: sourceName(spec),
      pulled: new Date().toISOString(),
    };
    const names = [...new Set(source.names)];
    await store.updateRefs((refs) => {
      for (const name of names) refs.images[name] = ref;
    });
    return { names, ref, manifest, config };
  } catch (err) {
    progress.end();
    throw err;
  } finally {
    source.close();
    held.release();
  }
}
