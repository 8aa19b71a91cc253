// The system calls the image code makes beyond Node's fs, all from the addon (native/host.cc):
// mknod (overlay whiteouts, device nodes), lsetxattr (opaque directories, layer xattrs), and
// the overlay mount of a bundle's rootfs. One seam, so every kernel step is traced.
import { native } from '../native';
import { trace } from '../host/trace';

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

export function mknod(path: string, type: 'char' | 'block', mode: number, major: number, minor: number) {
  native.mknod(path, (type === 'char' ? S_IFCHR : S_IFBLK) | (mode & 0o7777), major, minor);
}

export function mkfifo(path: string, mode: number) {
  native.mkfifo(path, mode & 0o7777);
}

export function lsetxattr(path: string, name: string, value: Buffer) {
  native.lsetxattr(path, name, value);
}

export function lgetxattr(path: string, name: string): Buffer | null {
  return native.lgetxattr(path, name);
}

export function llistxattr(path: string): string[] {
  return native.llistxattr(path);
}

export const MNT_DETACH = 2;
export const UMOUNT_NOFOLLOW = 8;

/**
 * Mounts an overlay with the new mount API: one `lowerdir+` per layer (top first), so the
 * number of layers is not limited by the one page of a mount(2) option string.
 */
export function mountOverlay(target: string, lowerdirs: string[], upperdir: string, workdir: string) {
  native.mountOverlay(target, { lowerdirs, upperdir, workdir });
  trace('husk', `fsopen("overlay") + fsconfig(lowerdir+ x${lowerdirs.length} [${lowerdirs.join(', ')}], upperdir=${JSON.stringify(upperdir)}, workdir=${JSON.stringify(workdir)}) + fsmount + move_mount(${JSON.stringify(target)}) = 0`,
    { kind: 'overlayMount', layers: lowerdirs.length, upperdir, target });
}

export function unmount(target: string, detach = false) {
  native.umount2(target, UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0));
  trace('husk', `umount2(${JSON.stringify(target)}, UMOUNT_NOFOLLOW${detach ? ' | MNT_DETACH' : ''}) = 0`, { kind: 'unmount', target });
}
