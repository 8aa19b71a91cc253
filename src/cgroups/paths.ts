// linux.cgroupsPath as runc interprets it with its cgroupfs driver (libcontainer/specconv
// CreateCgroupConfig, cgroups/fs paths.go, cgroups/fs2 defaultpath.go):
//
//   - the path is cleaned lexically first, so "../../x" can never leave the hierarchy;
//   - absent: the container's id, taken as a relative path;
//   - absolute: under each hierarchy's root (/sys/fs/cgroup/memory/<path>, /sys/fs/cgroup/<path>);
//   - relative, cgroup v1 (and hybrid's cgroup2): under husk's own cgroup in that hierarchy;
//   - relative, unified cgroup v2: under the PARENT of husk's own cgroup, because a cgroup that
//     holds processes (husk's own) cannot also enable controllers for its children;
//   - with --systemd-cgroup, the path is "slice:prefix:name" and systemd makes the cgroup:
//     see systemd/unit.ts.
import * as path from 'path';
import { HuskError } from '../errors';
import type { CgroupLayout } from '../host/cgroupLayout';

/**
 * runc's utils.CleanPath: lexically cleaned; a relative path stays relative but cannot climb
 * above its start ("../a" -> "a"). "" stays "".
 */
export function cleanPath(p: string): string {
  if (p === '') return '';
  const cleaned = path.posix.normalize(p);
  if (cleaned.startsWith('/')) return trimSlash(cleaned);
  const rooted = path.posix.normalize(`/${cleaned}`);
  const rel = path.posix.relative('/', rooted);
  return rel === '' ? '.' : rel;
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** The cgroup path inside each hierarchy, before it is placed (absolute, or relative to husk's). */
export function innerPath(cgroupsPath: string | undefined, id: string): string {
  const cleaned = cleanPath(cgroupsPath ?? '');
  return cleaned === '' ? cleanPath(id) : cleaned;
}

/**
 * The container's directory in every hierarchy that takes part: the key is the v1 controller
 * (`memory`, `cpu`, `cpuacct`, ..., `name=systemd`; co-mounted controllers share a directory)
 * and "" for the cgroup2 hierarchy (the only key on a unified host).
 */
export function cgroupDirs(layout: CgroupLayout, inner: string): Record<string, string> {
  const out: Record<string, string> = {};
  const absolute = inner.startsWith('/');
  const place = (mountPoint: string, ownDir: string) => {
    const dir = absolute ? path.posix.join(mountPoint, inner) : path.posix.join(ownDir, inner);
    return trimSlash(dir);
  };
  if (layout.mode === 'unified') {
    const u = layout.unified!;
    const parent = u.own === u.mountPoint ? u.mountPoint : path.posix.dirname(u.own);
    out[''] = safe(place(u.mountPoint, parent), u.mountPoint, u.own, inner);
    return out;
  }
  for (const h of layout.v1) {
    const dir = safe(place(h.mountPoint, h.own), h.mountPoint, h.own, inner);
    for (const c of h.controllers) out[c] = dir;
  }
  // Like runc on a hybrid host, the container also gets a cgroup in the cgroup2 hierarchy, so
  // its /proc/self/cgroup "0::" line is its own (and cgroup2-only controllers can apply).
  if (layout.mode === 'hybrid') out[''] = safe(place(layout.unified!.mountPoint, layout.unified!.own), layout.unified!.mountPoint, layout.unified!.own, inner);
  return out;
}

/**
 * The container's cgroup is killed and removed on delete, so it must be a cgroup of its own:
 * never a hierarchy's root, nor husk's own cgroup or one of its ancestors (cgroupsPath "/"
 * or "." would otherwise make `delete` kill every process on the host, husk included).
 */
function safe(dir: string, mountPoint: string, own: string, inner: string): string {
  const contains = (outer: string, p: string) => p === outer || p.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
  if (dir === mountPoint || contains(dir, own)) {
    throw new HuskError(`config.json: linux.cgroupsPath ${JSON.stringify(inner)} resolves to ${dir}, ${dir === mountPoint ? 'the root of the cgroup hierarchy' : 'which holds husk\'s own cgroup'}; a container needs a cgroup of its own`);
  }
  return dir;
}

/** Each distinct directory once (co-mounted v1 controllers share one). */
export function distinctDirs(dirs: Record<string, string>): string[] {
  return [...new Set(Object.values(dirs))];
}
