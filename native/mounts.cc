// The container's filesystem: resolving paths inside the rootfs, mounts, masked and
// read-only paths, and the switch to the new root.
//
// Before pivot_root every target is a path inside the rootfs, which the container's image
// controls: a symlink in it could point anywhere on the host (CVE-2021-30465). So targets
// are resolved with openat2(RESOLVE_IN_ROOT), which treats the rootfs as "/" for every
// symlink and "..", and the mount is made on the resolved fd through /proc/thread-self/fd.
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>  // the ST_* flag values only
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

// openat2, again while it fails with EAGAIN: with RESOLVE_IN_ROOT the kernel gives up when a
// rename or a mount anywhere on the host raced the lookup (busy hosts, parallel containers),
// and asks the caller to retry.
static long openat2Retrying(int dirFd, const char *path, open_how *how) {
  long r = -EAGAIN;
  for (int attempt = 0; attempt < 64 && r == -EAGAIN; attempt++) r = check(syscall(SYS_openat2, dirFd, path, how, sizeof *how));
  return r;
}

static long openat2InRoot(int rootFd, const char *path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return openat2Retrying(rootFd, path, &how);
}

// Opens `path` (relative to the rootfs) as an O_PATH fd, creating what is missing when
// `create` asks for it: directories along the way, and a directory (1) or an empty file (2)
// at the end. Each component is created in the directory that openat2 resolved inside the
// rootfs, so nothing is ever created outside it. A symlink whose target does not exist yet
// (an image's /etc/resolv.conf -> /run/...) is followed inside the rootfs, as runc does:
// its target is what gets created.
long openInRoot(Child &c, const char *path, int create, int *fd) {
  while (*path == '/') path++;
  if (!*path) path = ".";
  long r = openat2InRoot(c.rootFd, path, O_PATH);
  if (r >= 0 || r != -ENOENT || !create) {
    *fd = static_cast<int>(r);
    return r < 0 ? r : 0;
  }
  char work[PATH_MAX];
  char prefix[PATH_MAX];
  char name[NAME_MAX + 1];
  char link[PATH_MAX];
  if (strlen(path) >= sizeof work) return -ENAMETOOLONG;
  strcpy(work, path);
  int hops = 0;
restart:
  UniqueFd parent(static_cast<int>(check(dup(c.rootFd))));
  if (!parent) return -errno;
  size_t len = strlen(work);
  size_t start = 0;
  while (start < len) {
    size_t end = start;
    while (end < len && work[end] != '/') end++;
    size_t n = end - start;
    if (n == 0) { start = end + 1; continue; }
    if (n > NAME_MAX) return -ENAMETOOLONG;
    memcpy(name, work + start, n);
    name[n] = 0;
    memcpy(prefix, work, end);
    prefix[end] = 0;
    bool last = end >= len;
    r = openat2InRoot(c.rootFd, prefix, O_PATH);
    if (r == -ENOENT) {
      ssize_t k = readlinkat(parent.get(), name, link, sizeof link - 1);
      if (k >= 0) {
        // A dangling symlink: go on from its target, inside the rootfs.
        if (++hops > 40) return -ELOOP;
        link[k] = 0;
        char next[PATH_MAX];
        char *p = next, *stop = next + sizeof next;
        if (link[0] != '/') {
          memcpy(next, work, start);
          p = next + start;
          *p = 0;
        }
        p = appendString(p, stop, link);
        p = appendString(p, stop, work + end);
        if (p >= stop - 1) return -ENAMETOOLONG;
        const char *q = next;
        while (*q == '/') q++;
        memmove(work, q, strlen(q) + 1);
        goto restart;
      }
      long made;
      if (last && create == 2) {
        made = check(openat(parent.get(), name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (made >= 0) close(static_cast<int>(made));
      } else {
        made = check(mkdirat(parent.get(), name, 0755));
      }
      if (made < 0 && made != -EEXIST) return made;
      r = openat2InRoot(c.rootFd, prefix, O_PATH);
    }
    if (r < 0) return r;
    parent.reset(static_cast<int>(r));
    start = end + 1;
  }
  *fd = parent.release();
  return 0;
}

// Splits "dev/pts/ptmx" into a directory fd (opened inside the rootfs, created when missing,
// and reopened for real: an O_PATH fd cannot make anything) and the last component.
long openParent(Child &c, const char *path, int *dirFd, const char **name) {
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  if (!slash) {
    dir[0] = '.';
    dir[1] = 0;
    *name = path;
  } else {
    size_t n = static_cast<size_t>(slash - path);
    if (n >= sizeof dir) return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = 0;
    *name = slash + 1;
  }
  if (!**name) return -EINVAL;
  int f = -1;
  long r = openInRoot(c, dir, 1, &f);
  if (r < 0) return r;
  UniqueFd parent(f);
  r = reopenDirectory(parent.get());
  if (r >= 0) *dirFd = static_cast<int>(r);
  return r < 0 ? r : 0;
}

// proc and sysfs go on an ordinary directory only (runc's fix for CVE-2019-16884): were the
// image's /proc a symlink, procfs would land elsewhere and the image's own files would stay
// at /proc, where the runtime later writes security settings (attr/exec, sysctls). The
// parents resolve inside the rootfs; the last component must be a directory, never a symlink.
static long openOrdinaryDirectoryInRoot(Child &c, const char *path, int *fd) {
  char trimmed[PATH_MAX];
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') len--;
  if (len >= sizeof trimmed) return -ENAMETOOLONG;
  memcpy(trimmed, path, len);
  trimmed[len] = 0;
  if (!strcmp(trimmed, "/")) return -ENOTDIR;
  int f = -1;
  const char *name;
  long r = openParent(c, trimmed, &f, &name);
  if (r < 0) return r;
  UniqueFd parent(f);
  if (!strcmp(name, ".") || !strcmp(name, "..")) return -ENOTDIR;
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  r = openat2Retrying(parent.get(), name, &how);
  if (r == -ENOENT) {
    if (mkdirat(parent.get(), name, 0755) < 0 && errno != EEXIST) return -errno;
    r = openat2Retrying(parent.get(), name, &how);
  }
  if (r == -ELOOP) return -ENOTDIR;
  if (r < 0) return r;
  UniqueFd target(static_cast<int>(r));
  struct stat st;
  if (fstat(target.get(), &st) < 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  *fd = target.release();
  return 0;
}

const char *fdPath(char *buf, size_t size, int fd) {
  char *p = appendString(buf, buf + size, "/proc/thread-self/fd/");
  appendNumber(p, buf + size, fd);
  return buf;
}

long reopenDirectory(int pathFd) {
  char buf[64];
  return check(open(fdPath(buf, sizeof buf, pathFd), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

// The path a mount call should use for `path`: itself, or for a path inside the rootfs
// (inRoot) the fd openInRoot resolved (kept open in *fd while the path is used).
static long mountTarget(Child &c, const char *path, bool inRoot, int create, UniqueFd *fd, char *buf, size_t size,
                        const char **target) {
  *target = path;
  if (!inRoot) return 0;
  int f = -1;
  long r = create == kCreateOrdinaryDirectory ? openOrdinaryDirectoryInRoot(c, path, &f) : openInRoot(c, path, create, &f);
  if (r < 0) return r;
  fd->reset(f);
  *target = fdPath(buf, size, f);
  return 0;
}

long doOpenRoot(Child &c, const Step &s) {
  long r = check(open(openRoot_path(s), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (r >= 0) c.rootFd = static_cast<int>(r);
  return r;
}

// The per-mount flags a bind remount must repeat, or it would clear them. Raw statfs(2):
// glibc's statvfs may read /proc/mounts through stdio (and allocate) on older versions.
static unsigned long keptFlags(const char *path) {
  struct statfs st;
  if (syscall(SYS_statfs, path, &st) < 0) return 0;
  unsigned long flags = 0;
  if (st.f_flags & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flags & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flags & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flags & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

long doMkdir(Child &c, const Step &s) {
  int f = -1;
  long r = openInRoot(c, mkdir_path(s), 1, &f);
  if (r >= 0) close(f);
  return r;
}

long doMount(Child &c, const Step &s) {
  const char *target;
  char buf[64];
  UniqueFd fd;
  long r = mountTarget(c, mount_target(s), s.inRoot, s.create, &fd, buf, sizeof buf, &target);
  if (r < 0) return r;
  unsigned long flags = mount_flags(s);
  r = check(mount(mount_source(s), target, mount_fstype(s), flags, mount_data(s)));
  // Inside a user namespace, a bind remount may not clear the nosuid/nodev/noexec/atime
  // flags the mount was locked with; keep them and try again, as runc does.
  if (r == -EPERM && (flags & MS_REMOUNT) && (flags & MS_BIND)) {
    r = check(mount(mount_source(s), target, mount_fstype(s), flags | keptFlags(target), mount_data(s)));
  }
  return r;
}

long doRemountReadonly(Child &c, const Step &s) {
  const char *target;
  char buf[64];
  UniqueFd fd;
  long r = mountTarget(c, remountReadonly_path(s), s.inRoot, 0, &fd, buf, sizeof buf, &target);
  if (r < 0) return r;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | keptFlags(target) | remountReadonly_flags(s);
  return check(mount(nullptr, target, nullptr, flags, nullptr));
}

// Attaches a mount tree the parent prepared (an idmapped bind: mount_setattr needs
// privileges on the host that the init, inside its user namespace, does not have).
long doMoveMount(Child &c, const Step &s) {
  int f = -1;
  long r = openInRoot(c, moveMount_toPath(s), s.create, &f);
  if (r < 0) return r;
  UniqueFd target(f);
  return check(syscall(SYS_move_mount, static_cast<int>(moveMount_fromFd(s)), "", target.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

// Recursive mount options (rro, rnosuid, ...): the attributes apply to the whole tree under
// the target, which a MS_REMOUNT cannot do.
long doMountSetattr(Child &c, const Step &s) {
  int f = -1;
  long r = openInRoot(c, mountSetattr_path(s), 0, &f);
  if (r < 0) return r;
  UniqueFd target(f);
  mount_attr attr{};
  attr.attr_set = mountSetattr_attrSet(s);
  attr.attr_clr = mountSetattr_attrClr(s);
  return check(syscall(SYS_mount_setattr, target.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr));
}

// After pivot_root: a directory gets a read-only tmpfs over it, anything else /dev/null.
long doMaskPath(Child &, const Step &s) {
  struct stat st;
  if (stat(maskPath_path(s), &st) < 0) return -errno;
  if (S_ISDIR(st.st_mode)) return check(mount("tmpfs", maskPath_path(s), "tmpfs", MS_RDONLY, nullptr));
  return check(mount("/dev/null", maskPath_path(s), nullptr, MS_BIND, nullptr));
}

// pivot_root(".", ".") stacks the old root on top of the new one at "/"; unmounting "."
// then removes the old root without needing a directory for it inside the rootfs. The old
// root is made a slave first so that the unmount does not propagate to the host.
long doPivotRoot(Child &c, const Step &s) {
  UniqueFd oldRoot(static_cast<int>(check(open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC))));
  if (!oldRoot) return -errno;
  UniqueFd newRoot(static_cast<int>(check(open(pivotRoot_path(s), O_DIRECTORY | O_RDONLY | O_CLOEXEC))));
  if (!newRoot) return -errno;
  if (fchdir(newRoot.get()) < 0) return -errno;
  if (syscall(SYS_pivot_root, ".", ".") < 0) return -errno;
  if (fchdir(oldRoot.get()) < 0) return -errno;
  if (mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) < 0) return -errno;
  if (umount2(".", MNT_DETACH) < 0) return -errno;
  if (chdir("/") < 0) return -errno;
  if (c.rootFd >= 0) { close(c.rootFd); c.rootFd = -1; }
  return 0;
}

// The working directory becomes this process's root; the rootfs fd is no longer needed.
static long chrootHere(Child &c) {
  if (chroot(".") < 0) return -errno;
  if (chdir("/") < 0) return -errno;
  if (c.rootFd >= 0) { close(c.rootFd); c.rootFd = -1; }
  return 0;
}

// --no-pivot: for a rootfs on a ramfs, where pivot_root is not possible.
long doMoveRoot(Child &c, const Step &s) {
  if (chdir(moveRoot_path(s)) < 0) return -errno;
  if (mount(moveRoot_path(s), "/", nullptr, MS_MOVE, nullptr) < 0) return -errno;
  return chrootHere(c);
}

// No mount namespace of the container's own: the root changes for this process only. (A
// process with CAP_SYS_CHROOT can leave a chroot; that is what such a config asks for.)
long doChroot(Child &c, const Step &s) {
  if (chdir(chroot_path(s)) < 0) return -errno;
  return chrootHere(c);
}

}  // namespace husk
