// The plan's filesystem steps: the rootfs made ready while the host's paths are reachable,
// config.json's mounts (every target resolved inside the rootfs), the switch to the new root,
// and what is restricted after it (read-only and masked paths, a read-only root).
import * as path from 'path';
import { constants as osConstants } from 'os';
import { HuskError } from '../errors';
import type { Linux, Mount } from '../spec/types';
import { MS, flagNames } from './constants';
import { parseMountOptions } from './mountOptions';
import type { HostView, PlanOptions } from './plan';
import { type Builder, mountStep, type PlanStep, q } from './planStep';

const ENOENT = osConstants.errno.ENOENT;
const ENOTDIR = osConstants.errno.ENOTDIR;

/**
 * Before the config's mounts. With a mount namespace of its own: "/" made a slave, so nothing
 * propagates back to the host, the rootfs's parent mount private (pivot_root needs it), the
 * rootfs bound onto itself. Without one, the container shares husk's (the runtime spec: a
 * namespace not listed is inherited), as runc allows: its mounts go into the host's mount
 * table, on a bind of the rootfs made private so that none of them propagates, which delete
 * detaches with everything on it (src/linux/hostMounts.ts). Nothing of the host's own mount
 * tree changes then: "/" is not made a slave, and root.readonly and rootfsPropagation apply to
 * that bind, the container's "/" after chroot. (Masked and read-only paths are refused in
 * src/spec/validate.ts, as runc does.)
 */
export function prepareRootfs(b: Builder, opts: PlanOptions, host: HostView, hasMountNs: boolean) {
  if (hasMountNs) {
    b.add(mountStep(null, '/', null, MS.MS_SLAVE | MS.MS_REC, null));
    b.add(mountStep(null, host.mountPointOf(path.dirname(opts.rootfs)), null, MS.MS_PRIVATE, null));
    b.add(mountStep(opts.rootfs, opts.rootfs, null, MS.MS_BIND | MS.MS_REC, null));
  } else {
    if (opts.noPivot) throw new HuskError('--no-pivot needs a private mount namespace (linux.namespaces has none)');
    b.add(mountStep(opts.rootfs, opts.rootfs, null, MS.MS_BIND | MS.MS_REC, null));
    b.add(mountStep(null, opts.rootfs, null, MS.MS_PRIVATE | MS.MS_REC, null));
  }
  b.add({ op: 'openRoot', path: opts.rootfs, trace: `open(${q(opts.rootfs)}, O_PATH|O_DIRECTORY)`,
    what: `open rootfs ${q(opts.rootfs)}` });
}

export function chrootStep(root: string): PlanStep {
  return { op: 'chroot', path: root, trace: `chdir(${q(root)}); chroot(".")`, what: `chroot to ${q(root)}` };
}

/** The rootfs becomes "/": pivot_root, or a move over "/" (--no-pivot), or without a mount
 * namespace of its own a chroot (either of the others would change the host's root). */
export function switchRoot(b: Builder, opts: PlanOptions, hasMountNs: boolean, rootfsPropagation?: string) {
  const root = opts.rootfs;
  if (!hasMountNs) {
    b.add(chrootStep(root));
  } else if (opts.noPivot) {
    b.add({ op: 'moveRoot', path: root, trace: `mount(${q(root)}, "/", NULL, MS_MOVE, NULL); chroot(".")`,
      what: `move rootfs ${q(root)} to /` });
  } else {
    b.add({ op: 'pivotRoot', path: root, trace: `pivot_root(".", ".") in ${q(root)}; umount2(".", MNT_DETACH)`,
      what: `pivot_root to ${q(root)}` });
  }
  const propagation = rootfsPropagation ? parseMountOptions([rootfsPropagation]).propagation[0] : undefined;
  if (propagation !== undefined) b.add(mountStep(null, '/', null, propagation, null));
}

/** After the switch: read-only and masked paths (a missing one is skipped, ENOENT). */
export function restrictPaths(b: Builder, linux: Linux) {
  for (const p of linux.readonlyPaths ?? []) {
    b.add(mountStep(p, p, null, MS.MS_BIND | MS.MS_REC, null, { okErrno: ENOENT }));
    b.add({ op: 'remountReadonly', path: p, flags: MS.MS_REC, okErrno: ENOENT,
      trace: `mount(NULL, ${q(p)}, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|MS_REC, NULL)`, what: `make ${q(p)} read-only` });
  }
  for (const p of linux.maskedPaths ?? []) {
    b.add({ op: 'maskPath', path: p, okErrno: ENOENT,
      trace: `mount("/dev/null" or "tmpfs", ${q(p)}, ..., MS_BIND or MS_RDONLY)`,
      what: `mask ${q(p)}` });
  }
}

export function readonlyRoot(b: Builder) {
  b.add({ op: 'remountReadonly', path: '/', trace: 'mount(NULL, "/", NULL, MS_BIND|MS_REMOUNT|MS_RDONLY, NULL)',
    what: 'remount the rootfs read-only' });
}

/** Mounts for a "cgroup" entry: cgroup2 on a unified host; on a v1/hybrid host, runc's
 * layout: a writable tmpfs holding one mount per v1 hierarchy (fresh ones in a new cgroup
 * namespace, binds of our own cgroup otherwise) with the entry's flags. Like runc, the
 * hybrid host's cgroup2 "unified" mount is not repeated inside. */
function cgroupMounts(b: Builder, m: Mount, flags: number, newCgroupNs: boolean, host: HostView) {
  const dest = m.destination;
  if (host.cgroupV2Unified || host.cgroupV1.length === 0) {
    b.add(mountStep('cgroup', dest, 'cgroup2', flags, null, { inRoot: true, create: 1 }));
    return;
  }
  const tmpfsFlags = MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC | MS.MS_RELATIME;
  b.add(mountStep('tmpfs', dest, 'tmpfs', tmpfsFlags, 'mode=755', { inRoot: true, create: 1 }));
  for (const h of host.cgroupV1) {
    if (h.name === 'unified') continue;
    const target = path.posix.join(dest, h.name);
    if (newCgroupNs) {
      b.add(mountStep('cgroup', target, 'cgroup', flags, h.options, { inRoot: true, create: 1 }));
    } else {
      const source = path.posix.join('/sys/fs/cgroup', h.name, h.cgroupPath).replace(/(.)\/$/, '$1');
      b.add(mountStep(source, target, null, MS.MS_BIND | MS.MS_REC, null, { inRoot: true, create: 1 }));
      b.add(mountStep(null, target, null, MS.MS_BIND | MS.MS_REMOUNT | flags, null, { inRoot: true }));
    }
  }
}

/** What a mount's plan depends on besides the mount itself. */
export interface MountContext {
  b: Builder;
  opts: PlanOptions;
  host: HostView;
  isNew(type: string): boolean;
}

/** One entry of config.json's mounts, inside the rootfs. */
export function configMount(ctx: MountContext, original: Mount, index: number) {
  const { b, opts, host } = ctx;
  const where = `mounts[${index}]`;
  let m = original;
  // Inside a new user namespace, sysfs and mqueue can only be mounted fresh when the network
  // and ipc namespaces are new too (owned by it); otherwise the host's are bound, as runc does.
  const bindInstead = (source: string) => ({ ...m, type: 'bind', source, options: ['rbind', ...(m.options ?? [])] });
  if (ctx.isNew('user') && m.type === 'sysfs' && !ctx.isNew('network')) m = bindInstead('/sys');
  if (ctx.isNew('user') && m.type === 'mqueue' && !ctx.isNew('ipc')) m = bindInstead('/dev/mqueue');
  const dest = m.destination.startsWith('/') ? m.destination : '/' + m.destination;
  const parsed = parseMountOptions(m.options);
  const isBind = m.type === 'bind' || (parsed.flags & MS.MS_BIND) !== 0;
  const readonlyAfter = () =>
    mountStep(null, dest, null, MS.MS_BIND | MS.MS_REMOUNT | parsed.flags, null, { inRoot: true });
  if (m.type === 'cgroup') {
    cgroupMounts(b, { ...m, destination: dest }, parsed.flags, ctx.isNew('cgroup'), host);
    return;
  }
  if (isBind) {
    if (!m.source) throw new HuskError(`config.json: ${where}: a bind mount needs a source`);
    const source = path.isAbsolute(m.source) ? m.source : path.join(opts.bundle, m.source);
    const isDir = host.isDirectory(source);
    if (isDir === undefined) throw new HuskError(`config.json: ${where}: bind source ${q(source)} does not exist`);
    const bindFlags = MS.MS_BIND | (parsed.flags & MS.MS_REC);
    const tree = opts.mountTrees?.get(index);
    if (tree !== undefined) {
      b.add({ op: 'moveMount', fromFd: tree, toPath: dest, inRoot: true, create: isDir ? 1 : 2,
        trace: `move_mount(${tree} [idmapped ${q(source)}], ${q(dest)})`,
        what: `mount idmapped ${q(source)} on ${q(dest)}` });
    } else {
      b.add(mountStep(source, dest, null, bindFlags, null, { inRoot: true, create: isDir ? 1 : 2 }));
    }
    const rest = parsed.flags & ~(MS.MS_BIND | MS.MS_REC | MS.MS_REMOUNT);
    if (rest) b.add(mountStep(null, dest, null, MS.MS_BIND | MS.MS_REMOUNT | rest, null, { inRoot: true }));
  } else if (parsed.copyUp) {
    if (m.type !== 'tmpfs') {
      throw new HuskError(`config.json: ${where}: tmpcopyup applies to tmpfs mounts only (type is ${q(m.type ?? '')})`);
    }
    const data = parsed.data || null;
    const flags = parsed.flags & ~MS.MS_RDONLY;
    b.add({
      op: 'copyUpMount', source: m.source ?? 'tmpfs', target: dest, fstype: 'tmpfs', flags, data, inRoot: true,
      trace: `mount("tmpfs", ${q(dest)}, "tmpfs", ${flagNames(flags, MS)}, ${data ? q(data) : 'NULL'}); `
        + `copy what ${q(dest)} held into it`,
      what: `mount "tmpfs" on ${q(dest)} with a copy of its contents`,
    });
    if (parsed.flags & MS.MS_RDONLY) b.add(readonlyAfter());
  } else if (m.type === 'tmpfs' && parsed.flags & MS.MS_RDONLY) {
    // As runc: a read-only tmpfs is mounted writable and made read-only per mount, so its
    // superblock stays writable (what tmpcopyup and later binds of it expect).
    const flags = parsed.flags & ~MS.MS_RDONLY;
    b.add(mountStep(m.source ?? 'tmpfs', dest, 'tmpfs', flags, parsed.data, { inRoot: true, create: 1 }));
    b.add(readonlyAfter());
  } else if (m.type === 'proc' || m.type === 'sysfs') {
    // Only on an ordinary directory: a symlink the image planted would move procfs elsewhere
    // and leave the image's own files where attr/exec and sysctls are written (CVE-2019-16884).
    b.add({
      ...mountStep(m.source ?? m.type, dest, m.type, parsed.flags, parsed.data, { inRoot: true, create: 3 }),
      why: { [ENOTDIR]: `${m.type} must be mounted on an ordinary directory` },
    });
  } else {
    const source = m.source ?? m.type ?? 'none';
    b.add(mountStep(source, dest, m.type ?? null, parsed.flags, parsed.data, { inRoot: true, create: 1 }));
  }
  if (parsed.recursive) {
    const { set, clear } = parsed.recursive;
    b.add({ op: 'mountSetattr', path: dest, inRoot: true, attrSet: set, attrClr: clear,
      trace: `mount_setattr(${q(dest)}, AT_RECURSIVE, {set 0x${set.toString(16)}, clear 0x${clear.toString(16)}})`,
      what: `apply recursive options to ${q(dest)}` });
  }
  for (const p of parsed.propagation) b.add(mountStep(null, dest, null, p, null, { inRoot: true }));
}
