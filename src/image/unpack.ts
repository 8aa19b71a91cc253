// Unpacking one layer (a tar, possibly compressed) into a directory with tar-stream.
//
// Two modes:
//  - 'overlay': the layer gets its own directory, to be stacked with overlayfs. Whiteouts
//    become what overlayfs reads: `.wh.NAME` a character device 0:0 named NAME, and
//    `.wh..wh..opq` the `trusted.overlay.opaque` = "y" xattr on its directory. This is
//    what Docker's overlay2 driver does.
//  - 'flatten': layers are applied one after another to one directory (`--copy` bundles).
//    A whiteout removes what the layers below put there; an opaque directory loses every
//    entry this layer did not write. Entries of the same layer are never hidden.
//
// Everything written stays inside the directory (see tree.ts): names with `..` that climb
// out are refused, absolute names are relative to the root, symlinks planted by earlier
// entries are resolved inside the root, hardlinks must name an entry inside the root, and
// an entry larger than the free space is refused before a byte is written.
//
// The uncompressed stream is hashed on the way: its digest must be the diffID the image
// config names, or the unpack fails (and the caller throws the directory away).
//
// In overlay mode the regular files are made on the libuv pool in batches while the next
// entries are read (fileBatches.ts); every entry first waits for those at its own path, so the
// result is the serial unpack's (test/unit/image-unpack.test.ts compares the two).
import { createHash } from 'crypto';
import * as fs from 'fs';
import { pipeline } from 'stream/promises';
import { Transform, type Readable } from 'stream';
import * as tar from 'tar-stream';
import { HuskError, reason } from '../errors';
import { log } from '../host/log';
import { decompressor, sniffCompression } from './compression';
import { FileBatches, type Attrs } from './fileBatches';
import * as sys from './sys';
import { cleanName, join, PathError, RootedTree } from './tree';

export type UnpackMode = 'overlay' | 'flatten';

export interface UnpackOptions {
  mode: UnpackMode;
  /** Names the layer in messages: `layer sha256:abcd...`. */
  what: string;
  /** The uncompressed digest the config promises; checked when given. */
  diffID?: string;
  /** Set owners from the tar (default: when running as root). */
  sameOwner?: boolean;
  /** Called with the number of compressed bytes read so far. */
  onProgress?: (bytes: number) => void;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar. */
  diffID: string;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** Bytes of file content written. */
  contentSize: number;
  entries: number;
  /**
   * Directories this layer created only because entries below them needed them (the tar has
   * no entry of their own): they got default attributes (0755 root:root), which in a merged
   * view must not hide the attributes lower layers gave them.
   */
  implicitDirs: string[];
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';


// tar-stream decodes PAX values as UTF-8 text, which would corrupt binary xattr values
// (security.capability is binary). Its header decoder is replaced once by one that keeps
// SCHILY.xattr.* values byte for byte (as latin1 strings, turned back into bytes below).
let paxPatched = false;
function patchPaxDecoding() {
  if (paxPatched) return;
  paxPatched = true;
  const headers = require(require.resolve('tar-stream').replace(/index\.js$/, 'headers.js'));
  headers.decodePax = function decodePax(buf: Buffer): Record<string, string> {
    const result: Record<string, string> = {};
    while (buf.length) {
      let i = 0;
      while (i < buf.length && buf[i] !== 32) i++;
      const len = parseInt(buf.subarray(0, i).toString('ascii'), 10);
      if (!len || len > buf.length || len <= i + 1) return result;
      const record = buf.subarray(i + 1, len - 1);
      const eq = record.indexOf(61);
      if (eq === -1) return result;
      const key = record.subarray(0, eq).toString('utf8');
      const value = record.subarray(eq + 1);
      result[key] = key.startsWith('SCHILY.xattr.') ? value.toString('latin1') : value.toString('utf8');
      buf = buf.subarray(len);
    }
    return result;
  };
}

function attrsOf(h: tar.Header): Attrs {
  const pax = (h.pax ?? {}) as Record<string, string>;
  const num = (v: string | undefined, fallback: number) => (v !== undefined && /^[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : fallback);
  const mtime = num(pax.mtime, h.mtime ? h.mtime.getTime() / 1000 : 0);
  const xattrs: [string, Buffer][] = [];
  for (const [key, value] of Object.entries(pax)) {
    if (!key.startsWith('SCHILY.xattr.')) continue;
    const name = key.slice('SCHILY.xattr.'.length);
    // A layer never sets overlayfs's own attributes: they would redirect lookups.
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
    xattrs.push([name, Buffer.from(value, 'latin1')]);
  }
  return {
    mode: (h.mode ?? 0o644) & 0o7777,
    uid: Math.trunc(num(pax.uid, h.uid ?? 0)),
    gid: Math.trunc(num(pax.gid, h.gid ?? 0)),
    atime: num(pax.atime, mtime),
    mtime,
    ...(xattrs.length ? { xattrs } : {}),
  };
}

function freeBytes(dir: string): number {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

const O_CREATE_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** Files of an overlay layer up to this size are made on the pool (fileBatches.ts); larger
 * ones are written here, chunk by chunk as they arrive. */
const POOL_FILE_MAX = 1024 * 1024;

class LayerWriter {
  readonly tree: RootedTree;
  /** Directories whose mode, owner and times are set at the end (children change mtimes). */
  private readonly dirAttrs = new Map<string, Attrs>();
  /** Flatten mode: what this layer wrote (relative paths), which its whiteouts do not hide. */
  private readonly written = new Set<string>();
  private readonly implicit = new Set<string>();
  private budget: number;
  /**
   * Files being made on the pool. An entry at such a path, or at one below it, waits for them
   * first; one that needs such a path as a directory is refused, as the path is a regular
   * file. Directories are removed only at entries, after that wait, so none that a file is
   * being made in goes away under it.
   */
  private readonly files: FileBatches;
  private warnedXattr = false;
  private warnedDevice = false;
  contentSize = 0;
  entries = 0;

  constructor(readonly root: string, readonly o: UnpackOptions & { sameOwner: boolean }) {
    this.tree = new RootedTree(root);
    this.tree.onImplicitDir = (rel) => this.implicit.add(rel);
    this.files = new FileBatches(
      (file, err) => new HuskError(`${this.o.what}: entry ${JSON.stringify(file.name)}: ${reason(err)}`),
      (file, refused) => this.warnXattr(`${this.o.what}: xattr ${refused} on ${file.path}`),
    );
    this.tree.isRegularFile = (rel) => this.files.has(rel);
    this.budget = freeBytes(root);
  }

  private fail(name: string, why: string): never {
    throw new HuskError(`${this.o.what}: entry ${JSON.stringify(name)}: ${why}`);
  }

  async entry(h: tar.Header, stream: Readable) {
    this.entries++;
    const name = h.name;
    let parts: string[];
    try {
      parts = cleanName(name);
    } catch (err) {
      stream.resume();
      this.fail(name, reason(err));
    }
    if (h.size !== undefined && (!Number.isSafeInteger(h.size) || h.size < 0)) this.fail(name, `size ${h.size} is not valid`);
    try {
      await this.apply(h, name, parts, stream);
    } catch (err) {
      stream.resume();
      if (err instanceof HuskError && err.message.startsWith(this.o.what)) throw err;
      this.fail(name, reason(err));
    }
  }

  private async apply(h: tar.Header, name: string, parts: string[], stream: Readable) {
    const attrs = attrsOf(h);
    if (!parts.length) {
      stream.resume();
      if (h.type === 'directory') this.dirAttrs.set('', attrs);
      return;
    }
    const base = parts[parts.length - 1];
    const parentParts = parts.slice(0, -1);
    if (base.startsWith(WHITEOUT)) {
      stream.resume();
      if (base === OPAQUE) return this.opaque(parentParts);
      if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return; // aufs metadata (.wh..wh.plnk ...)
      return await this.whiteout(parentParts, base.slice(WHITEOUT.length), attrs);
    }
    const parent = this.tree.resolveDir(parentParts, true)!;
    const rel = join(parent, base);
    const abs = this.tree.abs(rel);
    await this.settle(rel);
    if (this.o.mode === 'flatten') this.written.add(rel);
    switch (h.type) {
      case 'directory':
        stream.resume();
        this.makeDir(rel, abs);
        this.dirAttrs.set(rel, attrs);
        return;
      case 'file':
      case 'contiguous-file':
        return this.writeFile(rel, abs, h, attrs, stream);
      case 'symlink':
        stream.resume();
        if (!h.linkname) throw new PathError('a symlink without a target');
        this.clear(rel, abs);
        fs.symlinkSync(h.linkname, abs);
        this.finishNode(abs, attrs);
        return;
      case 'link':
        stream.resume();
        return await this.hardlink(rel, abs, h.linkname ?? '');
      case 'character-device':
      case 'block-device':
        stream.resume();
        if (!this.o.sameOwner) {
          if (!this.warnedDevice) log.warn(`${this.o.what}: device nodes skipped (not running as root)`);
          this.warnedDevice = true;
          return;
        }
        this.clear(rel, abs);
        sys.mknod(abs, h.type === 'character-device' ? 'char' : 'block', attrs.mode, h.devmajor ?? 0, h.devminor ?? 0);
        this.finishNode(abs, attrs, true);
        return;
      case 'fifo':
        stream.resume();
        this.clear(rel, abs);
        sys.mkfifo(abs, attrs.mode);
        this.finishNode(abs, attrs, true);
        return;
      default:
        stream.resume();
        throw new PathError(`entry type ${JSON.stringify(h.type)} is not supported`);
    }
  }

  /** Removes whatever is at rel so something else can be created there. */
  private clear(rel: string, abs: string, keepDir = false): boolean {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if (st.isDirectory()) {
      if (keepDir) return true;
      fs.rmSync(abs, { recursive: true, force: true });
      this.tree.forget(rel);
    } else {
      fs.unlinkSync(abs);
    }
    return false;
  }

  private makeDir(rel: string, abs: string) {
    try {
      fs.mkdirSync(abs, 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!this.clear(rel, abs, true)) fs.mkdirSync(abs, 0o755);
    }
    this.tree.noteDir(rel);
  }

  private async writeFile(rel: string, abs: string, h: tar.Header, attrs: Attrs, stream: Readable) {
    const size = h.size ?? 0;
    if (size > this.budget) {
      throw new PathError(`it declares ${size} bytes, more than the ${this.budget} bytes free in ${this.root}`);
    }
    // On the pool: files of an overlay layer (a fresh directory, where every directory on disk
    // is one the tree knows) not larger than POOL_FILE_MAX, at a path that is not a directory.
    if (this.o.mode === 'overlay' && size <= POOL_FILE_MAX && !this.tree.knowsDir(rel)) {
      return this.writeFileOnPool(rel, abs, h.name, size, attrs, await readContent(stream, size));
    }
    let fd: number;
    try {
      fd = fs.openSync(abs, O_CREATE_FILE, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      this.clear(rel, abs);
      fd = fs.openSync(abs, O_CREATE_FILE, 0o600);
    }
    try {
      let written = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        written += chunk.length;
      }
      if (written !== size) throw new PathError(`${written} bytes of content, but its header gives ${size}`);
      this.budget -= size;
      this.contentSize += size;
      if (this.o.sameOwner && (attrs.uid !== 0 || attrs.gid !== 0)) fs.fchownSync(fd, attrs.uid, attrs.gid);
      fs.fchmodSync(fd, attrs.mode);
      if (attrs.xattrs) this.setXattrs(abs, attrs.xattrs);
      fs.futimesSync(fd, attrs.atime, attrs.mtime);
    } finally {
      fs.closeSync(fd);
    }
  }

  private async writeFileOnPool(rel: string, abs: string, name: string, size: number, attrs: Attrs, content: Buffer) {
    this.budget -= size;
    this.contentSize += size;
    const chown = this.o.sameOwner && (attrs.uid !== 0 || attrs.gid !== 0);
    await this.files.add({ rel, name, path: abs, content, ...attrs, uid: chown ? attrs.uid : -1, gid: chown ? attrs.gid : -1 });
  }

  /** Waits for the files still to be made at rel (and below it, when it is a directory), or
   * for all of them. */
  settle(rel: string | undefined): Promise<void> {
    return this.files.settle(rel, rel !== undefined && this.tree.knowsDir(rel));
  }

  private warnXattr(message: string) {
    if (!this.warnedXattr) log.warn(message);
    this.warnedXattr = true;
  }

  /** Owner, xattrs and times of a node that is not a regular file or a directory. */
  private finishNode(abs: string, attrs: Attrs, chmod = false) {
    if (this.o.sameOwner && (attrs.uid !== 0 || attrs.gid !== 0)) fs.lchownSync(abs, attrs.uid, attrs.gid);
    // chmod follows symlinks: only for nodes just created here (devices, fifos), never links.
    if (chmod) fs.chmodSync(abs, attrs.mode);
    if (attrs.xattrs) this.setXattrs(abs, attrs.xattrs);
    fs.lutimesSync(abs, attrs.atime, attrs.mtime);
  }

  private setXattrs(abs: string, xattrs: [string, Buffer][]) {
    for (const [name, value] of xattrs) {
      try {
        sys.lsetxattr(abs, name, value);
      } catch (err) {
        // As tar: an attribute the filesystem does not take is not a reason to fail the image.
        this.warnXattr(`${this.o.what}: xattr ${name} on ${abs}: ${reason(err)}`);
      }
    }
  }

  private async hardlink(rel: string, abs: string, linkname: string) {
    let targetParts: string[];
    try {
      targetParts = cleanName(linkname);
    } catch (err) {
      throw new PathError(`hardlink target ${JSON.stringify(linkname)}: ${reason(err)}`);
    }
    if (!targetParts.length) throw new PathError(`hardlink target ${JSON.stringify(linkname)} is the root`);
    const dir = this.tree.resolveDir(targetParts.slice(0, -1), false);
    const targetRel = dir === undefined ? undefined : join(dir, targetParts[targetParts.length - 1]);
    let st: fs.Stats | undefined;
    if (targetRel !== undefined) {
      await this.settle(targetRel);
      try {
        st = fs.lstatSync(this.tree.abs(targetRel));
      } catch {
        st = undefined;
      }
    }
    if (!st) throw new PathError(`hardlink target ${JSON.stringify(linkname)} is not in this layer`);
    if (st.isDirectory()) throw new PathError(`hardlink target ${JSON.stringify(linkname)} is a directory`);
    if (targetRel === rel) return;
    this.clear(rel, abs);
    fs.linkSync(this.tree.abs(targetRel!), abs);
  }

  private opaque(dirParts: string[]) {
    if (this.o.mode === 'overlay') {
      const dir = this.tree.resolveDir(dirParts, true)!;
      sys.lsetxattr(this.tree.abs(dir), OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    const dir = this.tree.resolveDir(dirParts, false);
    if (dir === undefined) return;
    this.removeNotWritten(dir);
  }

  /** Flatten mode: removes everything under dir that this layer did not write. */
  private removeNotWritten(dir: string) {
    for (const name of fs.readdirSync(this.tree.abs(dir))) {
      const rel = join(dir, name);
      if (this.written.has(rel)) {
        const st = fs.lstatSync(this.tree.abs(rel));
        if (st.isDirectory()) this.removeNotWritten(rel);
        continue;
      }
      fs.rmSync(this.tree.abs(rel), { recursive: true, force: true });
      this.tree.forget(rel);
    }
  }

  private async whiteout(dirParts: string[], name: string, attrs: Attrs) {
    if (!name || name === '.' || name === '..') throw new PathError('a whiteout without a name');
    if (this.o.mode === 'overlay') {
      const dir = this.tree.resolveDir(dirParts, true)!;
      const rel = join(dir, name);
      const abs = this.tree.abs(rel);
      await this.settle(rel);
      this.clear(rel, abs);
      sys.mknod(abs, 'char', 0, 0, 0);
      if (this.o.sameOwner && (attrs.uid !== 0 || attrs.gid !== 0)) fs.lchownSync(abs, attrs.uid, attrs.gid);
      return;
    }
    const dir = this.tree.resolveDir(dirParts, false);
    if (dir === undefined) return;
    const rel = join(dir, name);
    if (this.written.has(rel)) return;
    this.clear(rel, this.tree.abs(rel));
  }

  implicitDirs(): string[] {
    return [...this.implicit].filter((rel) => !this.dirAttrs.has(rel) && fs.existsSync(this.tree.abs(rel))).sort();
  }

  /** Directory modes, owners, xattrs and times, deepest first, once every file is made. */
  async finish() {
    await this.settle(undefined);
    const dirs = [...this.dirAttrs.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, attrs] of dirs) {
      const abs = this.tree.abs(rel);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(abs);
      } catch {
        continue; // removed by a later whiteout
      }
      if (!st.isDirectory()) continue;
      if (this.o.sameOwner && (attrs.uid !== st.uid || attrs.gid !== st.gid)) fs.lchownSync(abs, attrs.uid, attrs.gid);
      fs.chmodSync(abs, attrs.mode);
      if (attrs.xattrs) this.setXattrs(abs, attrs.xattrs);
      fs.lutimesSync(abs, attrs.atime, attrs.mtime);
    }
  }
}

class HashTap extends Transform {
  readonly hash = createHash('sha256');
  size = 0;

  _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null, data?: Buffer) => void) {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/**
 * The whole content of an entry (size bytes, as its header says) in one buffer. (With events:
 * an async iterator for each of a layer's thousands of small entries costs more than the rest
 * of reading them.)
 */
function readContent(stream: Readable, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
    });
    stream.on('error', reject);
    stream.on('end', () => {
      if (length !== size) reject(new PathError(`${length} bytes of content, but its header gives ${size}`));
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length));
    });
  });
}

/** The first bytes of a stream, put back so the stream still starts with them. */
function peek(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (value: Buffer | Error) => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (value instanceof Error) reject(value);
      else resolve(value);
    };
    const onReadable = () => {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      stream.unshift(chunk);
      done(chunk);
    };
    const onEnd = () => done(Buffer.alloc(0));
    const onError = (err: Error) => done(err);
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    onReadable();
  });
}

/** Unpacks a layer blob (gzip, zstd or plain tar) into `dest`, which must exist. */
export async function unpackLayer(blob: string, dest: string, opts: UnpackOptions): Promise<UnpackResult> {
  return unpackLayerStream(fs.createReadStream(blob, { highWaterMark: 1024 * 1024 }), dest, opts);
}

/**
 * Unpacks a layer from a stream (a file, or the bytes of a download as they arrive): the
 * compression is read from its first bytes.
 */
export async function unpackLayerStream(input: Readable, dest: string, opts: UnpackOptions): Promise<UnpackResult> {
  patchPaxDecoding();
  let compression: ReturnType<typeof sniffCompression>;
  try {
    compression = sniffCompression(await peek(input));
  } catch (err) {
    throw new HuskError(`${opts.what}: ${reason(err)}`);
  }
  if (opts.onProgress) {
    let read = 0;
    input.on('data', (chunk: Buffer) => opts.onProgress!((read += chunk.length)));
  }
  const decompress = decompressor(compression);
  const tap = new HashTap();
  // A deep buffer lets decompression run ahead while files are written.
  const extract = tar.extract({ allowUnknownFormat: true, highWaterMark: 4 * 1024 * 1024 } as Parameters<typeof tar.extract>[0]);
  const writer = new LayerWriter(dest, { ...opts, sameOwner: opts.sameOwner ?? process.getuid?.() === 0 });
  const streams: NodeJS.ReadWriteStream[] = decompress ? [decompress, tap] : [tap];
  const done = pipeline(input, ...(streams as [Transform]), extract as unknown as NodeJS.WritableStream);
  done.catch(() => undefined);
  try {
    for await (const entry of extract) {
      await writer.entry(entry.header, entry as unknown as Readable);
    }
    await done;
  } catch (err) {
    input.destroy();
    await done.catch(() => undefined);
    // Nothing may still be writing into the directory the caller is about to throw away.
    await writer.settle(undefined).catch(() => undefined);
    if (err instanceof HuskError) throw err;
    throw new HuskError(`${opts.what}: ${compression === 'none' ? '' : `${compression} `}tar: ${reason(err)}`);
  }
  await writer.finish();
  const diffID = `sha256:${tap.hash.digest('hex')}`;
  if (opts.diffID && diffID !== opts.diffID) {
    throw new HuskError(`${opts.what}: the uncompressed layer's digest is ${diffID}, but the image config says ${opts.diffID}`);
  }
  return { diffID, tarSize: tap.size, contentSize: writer.contentSize, entries: writer.entries, implicitDirs: writer.implicitDirs() };
}
