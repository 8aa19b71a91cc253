// The image store (default /var/lib/husk; HUSK_STORE or --store change it):
//
//   blobs/sha256/<hex>            verified blobs: manifests, indexes, configs, compressed layers
//   layers/sha256/<hex>/diff/     a layer unpacked once, keyed by its diffID (the digest of the
//                                 uncompressed tar), shared read-only by every container
//   layers/sha256/<hex>/meta.json what the unpack found (sizes, entries) and its short link
//   l/<short>                     -> ../layers/sha256/<hex>/diff: short names for overlay's
//                                 lowerdir, as Docker's overlay2 does, so dozens of layers fit
//                                 in the one page of mount options
//   refs.json                     image names -> manifest digests, replaced by rename
//   mounts/<key>.json             bundles whose overlay rootfs uses layers (see bundle.ts)
//   containers/<id>/              bundles of `husk image run` (config.json, rootfs, upper, work)
//   tmp/                          downloads and unpacks in progress
//   lock                          flock: shared by pulls and bundles, exclusive by prune/remove
//
// Crash safety: a blob is downloaded to tmp/ingest-<alg>-<hex>, verified (size and digest),
// and renamed into blobs/; a layer is unpacked into a tmp/layer-* staging directory and
// renamed into layers/ only once complete. So blobs/ and layers/ never hold anything partial:
// a pull killed half-way leaves only tmp/ entries. The download file is locked (flock) while
// written; the next pull that finds it unlocked resumes it (HTTP Range) after re-hashing what
// is there, and staging directories nobody holds are removed. Two pulls of the same blob or
// layer at once: the second waits for the first's lock and then finds the result in place.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import { HuskError, reason } from '../errors';
import { native } from '../native';
import { writeFileAtomic } from '../host/atomicWrite';
import { sleep } from '../host/sleep';
import { trace } from '../host/trace';
import { DigestCounter, algorithmOf, digestOf, hexOf } from './digest';
import type { Descriptor } from './manifest';

export const DEFAULT_STORE = '/var/lib/husk';

function writeAt(fd: number, data: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, data, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * The chunks of a download, gathered into runs of up to `most` bytes: HTTP hands out 16-64 KiB
 * at a time, and each chunk would cost a hash update, a write(2) and a trip through the
 * decompressor, each trip to the libuv pool and back. A run waits for more only while more
 * keeps coming (a chunk within `pause` ms): a download that stalls has all it got on disk.
 */
async function* gathered(stream: Readable, most = 1024 * 1024, pause = 20): AsyncGenerator<Buffer> {
  const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<Buffer>> | undefined;
  let ended = false;
  while (!ended) {
    const first = await (next ?? iterator.next());
    next = undefined;
    if (first.done) return;
    const chunks: Buffer[] = [first.value];
    let size = first.value.length;
    while (size < most) {
      next = iterator.next();
      let timer: NodeJS.Timeout | undefined;
      const more = await Promise.race([next, new Promise<'pause'>((resolve) => (timer = setTimeout(resolve, pause, 'pause')))]);
      clearTimeout(timer);
      if (more === 'pause') break;
      next = undefined;
      if (more.done) {
        ended = true;
        break;
      }
      chunks.push(more.value);
      size += more.value.length;
    }
    yield chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
  }
}

export function storeDir(flag?: string): string {
  return path.resolve(flag || process.env.HUSK_STORE || DEFAULT_STORE);
}

export interface ImageRef {
  /** The manifest's digest (the image for one platform). */
  digest: string;
  /** The index the manifest was picked from, when there was one. */
  index?: string;
  /** The config's digest (Docker's image ID). */
  config: string;
  /** os/arch[/variant]. */
  platform: string;
  /** Where it came from (the source as given, normalized). */
  source: string;
  /** When it was pulled (RFC 3339). */
  pulled: string;
}

export interface RefsFile {
  version: 1;
  images: Record<string, ImageRef>;
}

export interface LayerMeta {
  diffID: string;
  /** The short link name under l/. */
  link: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** Bytes of file content. */
  contentSize: number;
  entries: number;
  /** Directories the layer has only as parents of its entries (see unpack.ts). */
  implicitDirs?: string[];
  created: string;
}

/** An fd and the flock on it; release() closes both. */
export interface Held {
  fd: number;
  release(): void;
}

function lockFd(fd: number, mode: 'ex' | 'sh'): boolean {
  return native.flock(fd, mode, true) !== false;
}

/** Takes a lock without blocking the event loop (polls). */
async function acquire(fd: number, mode: 'ex' | 'sh', onWait?: () => void): Promise<void> {
  let waited = false;
  for (let delay = 5; !lockFd(fd, mode); delay = Math.min(delay * 2, 200)) {
    if (!waited) onWait?.();
    waited = true;
    await sleep(delay);
  }
}

export function shortLinkName(): string {
  // 10 characters of base32: 50 bits, short enough for hundreds of layers in one page.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(10);
  let out = '';
  for (const b of bytes) out += alphabet[b & 31];
  return out;
}

export class ImageStore {
  readonly blobs: string;
  readonly layers: string;
  readonly links: string;
  readonly tmp: string;
  readonly mounts: string;
  readonly containers: string;

  constructor(readonly dir: string) {
    this.blobs = path.join(dir, 'blobs');
    this.layers = path.join(dir, 'layers');
    this.links = path.join(dir, 'l');
    this.tmp = path.join(dir, 'tmp');
    this.mounts = path.join(dir, 'mounts');
    this.containers = path.join(dir, 'containers');
  }

  /** Creates the layout (mode 0700 at the top: layers hold other users' files). */
  init(): this {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      for (const d of [this.blobs, path.join(this.blobs, 'sha256'), path.join(this.blobs, 'sha512'), this.layers, path.join(this.layers, 'sha256'), this.links, this.tmp, this.mounts, this.containers]) {
        fs.mkdirSync(d, { recursive: true, mode: 0o700 });
      }
    } catch (err) {
      throw new HuskError(`image store ${this.dir}: ${reason(err)}`);
    }
    return this;
  }

  exists(): boolean {
    return fs.existsSync(path.join(this.dir, 'blobs'));
  }

  // ------------------------------------------------------------------------ locks

  private openLockFile(file: string): number {
    return fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  }

  /** The store-wide lock: shared while pulling or bundling, exclusive to delete anything. */
  async lockStore(mode: 'ex' | 'sh', onWait?: () => void): Promise<Held> {
    const fd = this.openLockFile(path.join(this.dir, 'lock'));
    await acquire(fd, mode, onWait);
    return { fd, release: () => fs.closeSync(fd) };
  }

  /** A lock on one file (used for refs.json updates and layer unpacks). */
  async lockFile(file: string, onWait?: () => void): Promise<Held> {
    const fd = this.openLockFile(file);
    await acquire(fd, 'ex', onWait);
    return { fd, release: () => fs.closeSync(fd) };
  }

  // ------------------------------------------------------------------------ refs

  readRefs(): RefsFile {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.dir, 'refs.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, images: {} };
      throw new HuskError(`image store ${this.dir}: refs.json: ${reason(err)}`);
    }
    try {
      const doc = JSON.parse(text) as RefsFile;
      if (!doc || typeof doc.images !== 'object') throw new Error('no "images"');
      return doc;
    } catch (err) {
      throw new HuskError(`image store ${this.dir}: refs.json: ${(err as Error).message}`);
    }
  }

  /** Read-modify-write of refs.json under its own lock. */
  async updateRefs(fn: (refs: RefsFile) => void): Promise<void> {
    const held = await this.lockFile(path.join(this.dir, 'refs.lock'));
    try {
      const refs = this.readRefs();
      fn(refs);
      writeFileAtomic(path.join(this.dir, 'refs.json'), JSON.stringify(refs, null, 2) + '\n', 0o600);
    } finally {
      held.release();
    }
  }

  // ------------------------------------------------------------------------ blobs

  blobPath(digest: string): string {
    return path.join(this.blobs, algorithmOf(digest), hexOf(digest));
  }

  hasBlob(digest: string, size?: number): boolean {
    try {
      const st = fs.statSync(this.blobPath(digest));
      return st.isFile() && (size === undefined || st.size === size);
    } catch {
      return false;
    }
  }

  readBlob(digest: string): Buffer {
    try {
      return fs.readFileSync(this.blobPath(digest));
    } catch (err) {
      throw new HuskError(`image store ${this.dir}: blob ${digest}: ${reason(err)}`);
    }
  }

  /** Stores a small blob already in memory after checking its digest. */
  putBlob(digest: string, data: Buffer, what: string) {
    const actual = digestOf(data, algorithmOf(digest));
    if (actual !== digest) throw new HuskError(`${what}: digest mismatch: got ${actual}, expected ${digest}`);
    if (this.hasBlob(digest, data.length)) return;
    writeFileAtomic(this.blobPath(digest), data, 0o600);
  }

  /**
   * Makes sure a blob is in the store: downloads it (resuming a previous partial download)
   * through `open`, checking size and digest as it streams. A mismatch removes the partial
   * file and throws; nothing enters blobs/ unverified.
   */
  async ingestBlob(
    desc: Descriptor,
    open: (offset: number) => Promise<{ stream: Readable; offset: number }>,
    what: string,
    hooks: {
      onWait?: () => void;
      onBytes?: (n: number, resumedFrom: number) => void;
      /** Every byte of a download that starts from 0, in order, as it arrives (to unpack while downloading). */
      onChunk?: (chunk: Buffer) => void | Promise<void>;
      /** Stops the download when aborted (what is on disk stays, for the next pull to resume). */
      signal?: AbortSignal;
    } = {},
  ): Promise<string> {
    const final = this.blobPath(desc.digest);
    if (this.hasBlob(desc.digest, desc.size)) return final;
    const partial = path.join(this.tmp, `ingest-${algorithmOf(desc.digest)}-${hexOf(desc.digest)}`);
    const fd = this.openLockFile(partial);
    try {
      await acquire(fd, 'ex', hooks.onWait);
      // Someone else may have finished it while we waited (and renamed the file we hold).
      if (this.hasBlob(desc.digest, desc.size)) return final;
      if (!fs.existsSync(partial) || fs.fstatSync(fd).ino !== fs.statSync(partial).ino) {
        return this.ingestBlob(desc, open, what, hooks);
      }
      let offset = fs.fstatSync(fd).size;
      if (offset >= desc.size) {
        fs.ftruncateSync(fd, 0);
        offset = 0;
      }
      let counter = new DigestCounter(desc.digest, desc.size, what);
      if (offset > 0) this.hashExisting(fd, offset, counter);
      const { stream, offset: got } = await open(offset);
      if (got !== offset) {
        fs.ftruncateSync(fd, 0);
        offset = 0;
        counter = new DigestCounter(desc.digest, desc.size, what);
      }
      let position = offset;
      const onChunk = offset === 0 ? hooks.onChunk : undefined;
      try {
        for await (const run of gathered(stream)) {
          hooks.signal?.throwIfAborted();
          counter.update(run);
          if (onChunk) await onChunk(run);
          // Written by the threadpool: the main thread meanwhile unpacks what it was handed.
          let off = 0;
          while (off < run.length) off += await writeAt(fd, run, off, run.length - off, position + off);
          position += run.length;
          hooks.onBytes?.(position, offset);
        }
        counter.check();
      } catch (err) {
        stream.destroy();
        if (err instanceof HuskError && /digest mismatch|size|more than/.test(err.message)) {
          // A wrong blob is not resumable: throw its bytes away.
          fs.rmSync(partial, { force: true });
        }
        throw err instanceof HuskError ? err : new HuskError(`${what}: download: ${reason(err)} (the next pull resumes it)`);
      }
      fs.renameSync(partial, final);
      trace('husk', `rename(${JSON.stringify(partial)}, ${JSON.stringify(final)}) = 0 (${desc.size} bytes, ${desc.digest} verified)`,
        { kind: 'blobVerified', digest: desc.digest, size: desc.size });
      return final;
    } finally {
      fs.closeSync(fd);
    }
  }

  private hashExisting(fd: number, size: number, counter: DigestCounter) {
    const buf = Buffer.alloc(1024 * 1024);
    let pos = 0;
    while (pos < size) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (n <= 0) break;
      counter.update(buf.subarray(0, n));
      pos += n;
    }
  }

  // ------------------------------------------------------------------------ layers

  /** A download of this blob was interrupted (a pull resumes it). */
  hasPartial(digest: string): boolean {
    return fs.existsSync(path.join(this.tmp, `ingest-${algorithmOf(digest)}-${hexOf(digest)}`));
  }

  layerDir(diffID: string): string {
    return path.join(this.layers, algorithmOf(diffID), hexOf(diffID));
  }

  layerMeta(diffID: string): LayerMeta | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.layerDir(diffID), 'meta.json'), 'utf8')) as LayerMeta;
    } catch {
      return undefined;
    }
  }

  /**
   * Makes sure a layer is unpacked: `unpack(dir)` fills a staging directory, which is
   * renamed into place only when it succeeded. One unpack per layer at a time.
   */
  async ensureLayer(diffID: string, unpack: (dir: string) => Promise<Omit<LayerMeta, 'link' | 'created' | 'diffID'>>, onWait?: () => void): Promise<LayerMeta> {
    const existing = this.layerMeta(diffID);
    if (existing) return existing;
    const held = await this.lockFile(path.join(this.tmp, `unpack-${hexOf(diffID)}.lock`), onWait);
    try {
      const again = this.layerMeta(diffID);
      if (again) return again;
      const staging = fs.mkdtempSync(path.join(this.tmp, 'layer-'));
      const stagingFd = fs.openSync(staging, 'r');
      native.flock(stagingFd, 'ex', true);
      try {
        const diff = path.join(staging, 'diff');
        fs.mkdirSync(diff, 0o755);
        const result = await unpack(diff);
        const link = shortLinkName();
        const meta: LayerMeta = { diffID, link, ...result, created: new Date().toISOString() };
        fs.writeFileSync(path.join(staging, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
        const final = this.layerDir(diffID);
        fs.mkdirSync(path.dirname(final), { recursive: true, mode: 0o700 });
        // The link first: a layer in layers/ always has its link.
        fs.symlinkSync(path.relative(this.links, path.join(final, 'diff')), path.join(this.links, link));
        try {
          fs.renameSync(staging, final);
          trace('husk', `rename(${JSON.stringify(staging)}, ${JSON.stringify(final)}) = 0 (layer ${diffID}, ${result.entries} entries)`,
            { kind: 'layerUnpacked', diffID, entries: result.entries });
        } catch (err) {
          fs.rmSync(path.join(this.links, link), { force: true });
          // Another pull committed the same layer meanwhile: use theirs.
          const theirs = this.layerMeta(diffID);
          if (theirs) {
            fs.rmSync(staging, { recursive: true, force: true });
            return theirs;
          }
          throw err;
        }
        return meta;
      } catch (err) {
        fs.rmSync(staging, { recursive: true, force: true });
        throw err;
      } finally {
        fs.closeSync(stagingFd);
      }
    } finally {
      fs.rmSync(path.join(this.tmp, `unpack-${hexOf(diffID)}.lock`), { force: true });
      held.release();
    }
  }

  /**
   * Removes tmp/ entries nobody holds: staging directories of a killed unpack, lock files.
   * Partial downloads are kept (a pull resumes them) unless `all`. A pull (which others may
   * run beside it) passes `minAgeMs`, so an entry another pull has just made but not yet
   * locked is left alone; prune holds the store exclusively and needs no such margin.
   */
  cleanTmp(all = false, minAgeMs = 0): string[] {
    const removed: string[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(this.tmp);
    } catch {
      return removed;
    }
    for (const name of names) {
      if (name.startsWith('ingest-') && !all) continue;
      const file = path.join(this.tmp, name);
      if (minAgeMs > 0) {
        const st = fs.lstatSync(file, { throwIfNoEntry: false });
        if (!st || Date.now() - st.mtimeMs < minAgeMs) continue;
      }
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        continue;
      }
      try {
        if (!lockFd(fd, 'ex')) continue;
        fs.rmSync(file, { recursive: true, force: true });
        removed.push(name);
      } finally {
        fs.closeSync(fd);
      }
    }
    return removed;
  }
}
