// tmpcopyup: a tmpfs mounted over a directory of the rootfs starts with a copy of what that
// directory held (files, directories, links, device nodes; modes, owners and times), so that
// e.g. `podman run --tmpfs /etc` still shows the image's /etc. The copy walks the hidden
// directory through an fd opened before the mount, with stack buffers only.
#include <climits>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

namespace {

constexpr int kMaxDepth = 64;

long copyAttributes(int dir, const char *name, const struct stat &st) {
  if (fchownat(dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  if (!S_ISLNK(st.st_mode) && fchmodat(dir, name, st.st_mode & 07777, 0) < 0) return -errno;
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  return 0;
}

long copyFile(int from, int to, const char *name, const struct stat &st) {
  UniqueFd in(static_cast<int>(check(openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC))));
  if (!in) return -errno;
  UniqueFd out(static_cast<int>(check(openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777))));
  if (!out) return -errno;
  char buf[16384];
  for (;;) {
    ssize_t n = read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out.get(), buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return -errno;
      off += w;
    }
  }
  return 0;
}

long copyTree(int from, int to, int depth) {
  if (depth > kMaxDepth) return -ELOOP;
  alignas(8) char entries[4096];
  for (;;) {
    long n = check(syscall(SYS_getdents64, from, entries, sizeof entries));
    if (n < 0) return n;
    if (n == 0) return 0;
    for (long off = 0; off < n;) {
      auto *d = reinterpret_cast<struct dirent64 *>(entries + off);
      off += d->d_reclen;
      const char *name = d->d_name;
      if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
      struct stat st;
      if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
      long r = 0;
      if (S_ISDIR(st.st_mode)) {
        if (mkdirat(to, name, 0700) < 0) return -errno;
        UniqueFd sub(static_cast<int>(check(openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))));
        if (!sub) return -errno;
        UniqueFd subTo(static_cast<int>(check(openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))));
        if (!subTo) return -errno;
        r = copyTree(sub.get(), subTo.get(), depth + 1);
      } else if (S_ISREG(st.st_mode)) {
        r = copyFile(from, to, name, st);
      } else if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t k = readlinkat(from, name, target, sizeof target - 1);
        if (k < 0) return -errno;
        target[k] = 0;
        if (symlinkat(target, to, name) < 0) return -errno;
      } else {
        if (mknodat(to, name, st.st_mode, st.st_rdev) < 0) return -errno;
      }
      if (r < 0) return r;
      r = copyAttributes(to, name, st);
      if (r < 0) return r;
    }
  }
}

}  // namespace

// Mounts fstype (a tmpfs) at target (inRoot) and copies into it what the directory held.
long doCopyUpMount(Child &c, const Step &s) {
  int f = -1;
  long r = openInRoot(c, copyUpMount_target(s), 1, &f);
  if (r < 0) return r;
  UniqueFd target(f);
  UniqueFd hidden(static_cast<int>(reopenDirectory(target.get())));
  if (!hidden) return -errno;
  struct stat top;
  if (fstat(hidden.get(), &top) < 0) return -errno;
  char buf[64];
  if (mount(copyUpMount_source(s), fdPath(buf, sizeof buf, target.get()), copyUpMount_fstype(s), copyUpMount_flags(s), copyUpMount_data(s)) < 0) return -errno;
  r = openInRoot(c, copyUpMount_target(s), 0, &f);
  if (r < 0) return r;
  UniqueFd mounted(f);
  UniqueFd copy(static_cast<int>(reopenDirectory(mounted.get())));
  if (!copy) return -errno;
  r = copyTree(hidden.get(), copy.get(), 0);
  if (r < 0) return r;
  if (fchown(copy.get(), top.st_uid, top.st_gid) < 0) return -errno;
  return check(fchmod(copy.get(), top.st_mode & 07777));
}

}  // namespace husk
