// Path resolution that never leaves a directory, for writing a layer that may be hostile.
//
// Entry names are cleaned lexically first (`a/./b//c` is `a/b/c`); a name that climbs above
// the root with `..` is refused, and a leading `/` means the root, as tar does. Parent
// directories are then walked one component at a time with lstat, from the root down. A
// symlink met on the way is followed the way openat2(RESOLVE_IN_ROOT) follows it: its
// target is read as if the root were `/` (an absolute target restarts at the root, `..`
// stops at the root), so a link planted by an earlier entry (`evil -> /etc`) sends later
// entries (`evil/passwd`) to `<root>/etc/passwd`, never to the host's. The final component
// is never followed: callers create it with calls that do not follow symlinks (O_EXCL and
// O_NOFOLLOW opens, symlink, link, mknod, lchown, lutimes).
//
// This is race-free because nobody else writes the directory while a layer is unpacked: it
// is a private staging directory of the store (or a bundle rootfs husk is creating). Every
// directory found is cached; removals invalidate the cache below them.
import * as fs from 'fs';
import { HuskError } from '../errors';

const MAX_SYMLINKS = 40;

export class PathError extends HuskError {}

/** The components of an entry name, cleaned; [] is the root itself. */
export function cleanName(name: string): string[] {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!out.length) throw new PathError('the path leaves the root with ".."');
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out;
}

export class RootedTree {
  /** Relative paths ('' is the root) known to be real directories. */
  private readonly dirs = new Set<string>(['']);

  /** Called for every directory resolveDir creates because an entry needed it as a parent. */
  onImplicitDir?: (rel: string) => void;

  /** Says a path is a regular file still being written (it may not be on disk yet). */
  isRegularFile?: (rel: string) => boolean;

  constructor(readonly root: string) {}

  abs(rel: string): string {
    return rel ? `${this.root}/${rel}` : this.root;
  }

  /**
   * Resolves directory components under the root, following symlinks inside it. Missing
   * directories are created (mode 0755) when `create`; otherwise undefined is returned.
   * Returns the relative path of the real directory.
   */
  resolveDir(parts: string[], create: boolean): string | undefined {
    const real: string[] = [];
    const queue = [...parts];
    let links = 0;
    while (queue.length) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        real.pop();
        continue;
      }
      const rel = real.length ? `${real.join('/')}/${c}` : c;
      if (this.dirs.has(rel)) {
        real.push(c);
        continue;
      }
      if (this.isRegularFile?.(rel)) throw new PathError(`${JSON.stringify(rel)} is not a directory`);
      const abs = this.abs(rel);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (!st) {
        if (!create) return undefined;
        fs.mkdirSync(abs, 0o755);
        this.dirs.add(rel);
        this.onImplicitDir?.(rel);
        real.push(c);
      } else if (st.isDirectory()) {
        this.dirs.add(rel);
        real.push(c);
      } else if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw new PathError(`too many levels of symbolic links at ${JSON.stringify(rel)}`);
        const target = fs.readlinkSync(abs);
        if (target.startsWith('/')) real.length = 0;
        queue.unshift(...target.split('/'));
      } else {
        throw new PathError(`${JSON.stringify(rel)} is not a directory`);
      }
    }
    return real.join('/');
  }

  /** Marks a path as gone (or replaced): it and everything cached below it. */
  forget(rel: string) {
    if (!rel) {
      this.dirs.clear();
      this.dirs.add('');
      return;
    }
    for (const d of this.dirs) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
  }

  /** A real directory this tree made or walked through (and has not removed since). */
  knowsDir(rel: string): boolean {
    return this.dirs.has(rel);
  }

  noteDir(rel: string) {
    this.dirs.add(rel);
  }
}

export function join(parentRel: string, name: string): string {
  return parentRel ? `${parentRel}/${name}` : name;
}
