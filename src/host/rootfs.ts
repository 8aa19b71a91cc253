// The one rule for reading a file inside a container's or an image's rootfs from the host
// (/etc/passwd, /etc/group, a member of an image archive): symlinks are followed the way
// openat2(RESOLVE_IN_ROOT) follows them, with the root taken as `/`. An absolute target
// restarts at the root and `..` stops there, so a hostile `etc/passwd -> /etc/shadow` reads the
// rootfs's own file, never the host's. Refusing symlinks instead would break ordinary images,
// where /etc/passwd may well be a link.
import * as fs from 'fs';

const MAX_SYMLINKS = 40;

/** The components of a path, where `..` stops at the root (how a symlink target is read in a root). */
function components(name: string): string[] {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out;
}

/**
 * Resolves a path inside a root, following every symlink (the final one included) without
 * leaving the root. Returns the absolute real path, or undefined when it does not exist (or a
 * directory on the way is not one).
 */
export function resolveInRoot(root: string, file: string): string | undefined {
  let queue = components(file);
  const real: string[] = [];
  let links = 0;
  while (queue.length) {
    const part = queue.shift()!;
    const abs = `${root}/${[...real, part].join('/')}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) {
        throw Object.assign(new Error(`${JSON.stringify(file)}: too many levels of symbolic links`), { code: 'ELOOP' });
      }
      const target = fs.readlinkSync(abs);
      queue = [...components(target.startsWith('/') ? target : `${real.join('/')}/${target}`), ...queue];
      real.length = 0;
      continue;
    }
    if (queue.length && !st.isDirectory()) return undefined;
    real.push(part);
  }
  return real.length ? `${root}/${real.join('/')}` : root;
}

/** Reads a regular file of a rootfs (at most `maxBytes`) through resolveInRoot, or undefined. */
export function readFileInRoot(root: string, file: string, maxBytes = 16 * 1024 * 1024): string | undefined {
  const abs = resolveInRoot(root, file);
  if (abs === undefined) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const size = Math.min(st.size, maxBytes);
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = fs.readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
