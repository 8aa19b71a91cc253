// /containers/{id}/archive: `docker cp` both ways, on the container's rootfs as the host sees it
// (the overlay mount of its bundle). Every path is resolved inside the rootfs, symlinks
// included, as if the rootfs were `/`: nothing reaches out of it. A path with `..` is refused.
import * as fs from 'fs';
import * as path from 'path';
import * as tar from 'tar-stream';
import { remountBundle } from '../image/bundle';
import { ApiError, badRequest, commonHeaders, notFound, boolParam, type ApiRequest, type ApiResponse, type Route } from './api';
import type { DaemonContext } from './context';
import { findRecord, type ContainerRecord } from './records';

const MAX_LINKS = 40;

/** The container path from the query: absolute (relative to / otherwise), without `..`. */
export function containerPath(text: string | null): string {
  if (!text) throw badRequest('the path is empty');
  const p = text.startsWith('/') ? text : `/${text}`;
  if (p.split('/').includes('..')) throw badRequest(`${JSON.stringify(text)}: ".." is not allowed in a container path`);
  return p;
}

/**
 * The host path of `p` inside `root`, following symlinks as the container would see them (an
 * absolute target starts again at `root`, `..` stops at it). The last component is followed
 * only with `followLast`. With `create`, missing directories on the way are made.
 */
export function resolveInRoot(root: string, p: string, followLast: boolean, create = false): string {
  let todo = p.split('/').filter((s) => s && s !== '.');
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = path.join(root, ...done, part);
    const st = fs.lstatSync(candidate, { throwIfNoEntry: false });
    if (st?.isSymbolicLink() && (todo.length || followLast)) {
      if (++links > MAX_LINKS) throw badRequest(`${p}: too many levels of symbolic links`);
      const target = fs.readlinkSync(candidate);
      if (target.startsWith('/')) done.length = 0;
      todo = [...target.split('/').filter((s) => s && s !== '.'), ...todo];
      continue;
    }
    if (!st && create && todo.length) fs.mkdirSync(candidate, { mode: 0o755 });
    done.push(part);
  }
  return path.join(root, ...done);
}

function rootfsOf(ctx: DaemonContext, r: ContainerRecord): string {
  remountBundle(ctx.images, r.husk.bundle);
  return path.join(r.husk.bundle, 'rootfs');
}

/** Go's os.FileMode of a stat: the permission bits with the type bits Go puts high. */
function goFileMode(st: fs.Stats): number {
  let mode = st.mode & 0o777;
  if (st.mode & 0o4000) mode += 0x800000;
  if (st.mode & 0o2000) mode += 0x400000;
  if (st.mode & 0o1000) mode += 0x100000;
  if (st.isDirectory()) mode += 0x80000000;
  else if (st.isSymbolicLink()) mode += 0x8000000;
  else if (st.isFIFO()) mode += 0x2000000;
  else if (st.isSocket()) mode += 0x1000000;
  else if (st.isCharacterDevice()) mode += 0x4000000 + 0x200000;
  else if (st.isBlockDevice()) mode += 0x4000000;
  return mode;
}

function pathStat(ctx: DaemonContext, r: ContainerRecord, p: string) {
  const root = rootfsOf(ctx, r);
  // As dockerd: the last component is followed only when the path asks for a directory.
  const host = resolveInRoot(root, p, p.endsWith('/') || p.endsWith('/.'));
  const st = fs.lstatSync(host, { throwIfNoEntry: false });
  if (!st) throw notFound(`Could not find the file ${p} in container ${r.Name.slice(1)}`);
  const linkTarget = st.isSymbolicLink() ? fs.readlinkSync(host) : '';
  return { root, host, st, header: Buffer.from(JSON.stringify({ name: path.basename(p) || '/', size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget })).toString('base64') };
}

function entryDone(e: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    e.on('finish', resolve);
    e.on('error', reject);
  });
}

/** Adds `host` (a file, a symlink, or a directory with everything under it) to the tarball as `name`. */
async function pack(out: tar.Pack, host: string, name: string): Promise<void> {
  const st = fs.lstatSync(host, { throwIfNoEntry: false });
  if (!st) return;
  const header = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isDirectory()) {
    out.entry({ ...header, type: 'directory' });
    for (const child of fs.readdirSync(host).sort()) await pack(out, path.join(host, child), `${name}/${child}`);
  } else if (st.isSymbolicLink()) {
    out.entry({ ...header, type: 'symlink', linkname: fs.readlinkSync(host) });
  } else if (st.isFile()) {
    const entry = out.entry({ ...header, type: 'file', size: st.size });
    const done = entryDone(entry);
    fs.createReadStream(host).pipe(entry);
    await done;
  }
  // devices, fifos and sockets are left out
}

async function getArchive(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const p = containerPath(req.query.get('path'));
  const { host, header } = pathStat(ctx, r, p);
  res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': header });
  if (req.method === 'HEAD') return void res.raw.end();
  const out = tar.pack();
  out.pipe(res.raw);
  // `/dir/.` is the directory's content: its entries are named `./...`, as dockerd names them.
  const name = p.endsWith('/.') ? '.' : path.basename(p) || '.';
  await pack(out, host, name);
  out.finalize();
}

async function putArchive(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const r = findRecord(ctx, req.params.id);
  const p = containerPath(req.query.get('path'));
  const root = rootfsOf(ctx, r);
  const dest = resolveInRoot(root, p, true);
  const st = fs.statSync(dest, { throwIfNoEntry: false });
  if (!st) throw notFound(`Could not find the file ${p} in container ${r.Name.slice(1)}`);
  if (!st.isDirectory()) throw badRequest(`extraction point is not a directory`);
  if (r.HostConfig.ReadonlyRootfs) throw new ApiError(403, 'container rootfs is marked read-only');
  const destRel = path.relative(root, dest);
  const copyOwner = boolParam(req.query, 'copyUIDGID');
  const noOverwriteDirNonDir = boolParam(req.query, 'noOverwriteDirNonDir');
  const extract = tar.extract();
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      try {
        const parts = h.name.split('/').filter((s) => s && s !== '.');
        if (parts.includes('..')) throw badRequest(`${JSON.stringify(h.name)}: ".." is not allowed in an archive's entry`);
        if (!parts.length) {
          stream.resume();
          stream.on('end', next);
          return;
        }
        const parent = resolveInRoot(root, path.join('/', destRel, ...parts.slice(0, -1)), true, true);
        const target = path.join(parent, parts[parts.length - 1]);
        const old = fs.lstatSync(target, { throwIfNoEntry: false });
        const uid = copyOwner ? h.uid ?? 0 : 0;
        const gid = copyOwner ? h.gid ?? 0 : 0;
        const mode = (h.mode ?? 0o644) & 0o7777;
        if (old && noOverwriteDirNonDir && old.isDirectory() !== (h.type === 'directory')) {
          throw badRequest(`cannot overwrite ${old.isDirectory() ? 'directory' : 'non-directory'} ${path.join(p, ...parts)} with ${h.type === 'directory' ? 'directory' : 'non-directory'}`);
        }
        if (old && !(old.isDirectory() && h.type === 'directory')) fs.rmSync(target, { recursive: true, force: true });
        if (h.type === 'directory') {
          if (!old?.isDirectory()) fs.mkdirSync(target, { mode });
          fs.chmodSync(target, mode);
          fs.lchownSync(target, uid, gid);
          stream.resume();
          stream.on('end', next);
        } else if (h.type === 'symlink') {
          fs.symlinkSync(h.linkname ?? '', target);
          fs.lchownSync(target, uid, gid);
          stream.resume();
          stream.on('end', next);
        } else if (h.type === 'file' || h.type === 'contiguous-file') {
          const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
          const file = fs.createWriteStream('', { fd });
          stream.pipe(file);
          file.on('finish', () => {
            fs.chmodSync(target, mode);
            fs.lchownSync(target, uid, gid);
            if (h.mtime) fs.utimesSync(target, h.mtime, h.mtime);
            next();
          });
          file.on('error', (err) => extract.destroy(err));
        } else {
          // hard links, devices, fifos: not copied in
          stream.resume();
          stream.on('end', next);
        }
      } catch (err) {
        stream.resume();
        extract.destroy(err as Error);
      }
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    req.raw.on('error', reject);
    req.raw.pipe(extract);
  });
  res.empty(200);
}

export function archiveRoutes(ctx: DaemonContext): Route[] {
  return [
    { method: 'GET', path: '/containers/{id}/archive', handle: (req, res) => getArchive(ctx, req, res) },
    { method: 'HEAD', path: '/containers/{id}/archive', handle: (req, res) => getArchive(ctx, req, res) },
    { method: 'PUT', path: '/containers/{id}/archive', handle: (req, res) => putArchive(ctx, req, res) },
  ];
}
