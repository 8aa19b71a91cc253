// The plan's /dev: the standard device nodes and links, and linux.devices. mknod where husk
// may (root, no user namespace); binds of the host's nodes where it may not.
import * as path from 'path';
import { constants as osConstants } from 'os';
import { HuskError } from '../errors';
import type { Spec } from '../spec/types';
import { MS, S_IFBLK, S_IFCHR, S_IFIFO } from './constants';
import type { HostView } from './plan';
import { type Builder, mountStep, q } from './planStep';

const EEXIST = osConstants.errno.EEXIST;

export const DEFAULT_DEVICES = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
];

const DEV_SYMLINKS: [string, string][] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['pts/ptmx', '/dev/ptmx'],
];

const TYPE_NAMES: Record<string, string> = { b: 'S_IFBLK', p: 'S_IFIFO' };

/** Unless the host's /dev is bound in, make the standard nodes and links (inside the rootfs). */
export function devices(b: Builder, spec: Spec, host: HostView) {
  const linux = spec.linux ?? {};
  const isBind = (options: string[] = []) => options.some((o) => o === 'bind' || o === 'rbind');
  const devIsBind = (spec.mounts ?? []).some((m) =>
    path.posix.normalize(m.destination) === '/dev' && (m.type === 'bind' || isBind(m.options)));
  if (devIsBind) return;
  const configured = linux.devices ?? [];
  const all = [
    ...DEFAULT_DEVICES.filter((d) => !configured.some((c) => c.path === d.path))
      .map((d) => ({ ...d, type: 'c', fileMode: 0o666, uid: 0, gid: 0 })),
    ...configured,
  ];
  // mknod is not allowed inside a user namespace (nor to a non-root husk): there the
  // host's device nodes are bound in instead.
  const bindDevices = (linux.namespaces ?? []).some((n) => n.type === 'user') || host.euid !== 0;
  for (const d of all) {
    if (bindDevices) {
      if (host.isDirectory(d.path) !== false) {
        throw new HuskError(`config.json: linux.devices: ${q(d.path)} does not exist on the host, `
          + 'so it cannot be bound into a user namespace');
      }
      b.add(mountStep(d.path, d.path, null, MS.MS_BIND, null, { inRoot: true, create: 2 }));
      continue;
    }
    const kind = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
    const permissions = (d.fileMode ?? 0o666) & 0o7777;
    const major = d.major ?? 0;
    const minor = d.minor ?? 0;
    b.add({
      op: 'mknod', path: d.path, inRoot: true, okErrno: EEXIST,
      mode: kind | permissions, major, minor, uid: d.uid ?? 0, gid: d.gid ?? 0,
      trace: `mknod(${q(d.path)}, ${TYPE_NAMES[d.type] ?? 'S_IFCHR'}|0${permissions.toString(8)}, `
        + `makedev(${major}, ${minor}))`,
      what: `create device ${q(d.path)}`,
    });
  }
  for (const [target, link] of DEV_SYMLINKS) {
    if (configured.some((c) => c.path === link)) continue;
    b.add({ op: 'symlink', target, linkpath: link, inRoot: true, okErrno: EEXIST,
      trace: `symlink(${q(target)}, ${q(link)})`,
      what: `create symlink ${q(link)}` });
  }
}
