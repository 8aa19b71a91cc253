// Device nodes and the standard /dev symlinks inside the rootfs.
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

// Splits "dev/pts/ptmx" into an fd of its directory (opened inside the rootfs, created when
// missing) and the last component.
static long openParent(Child &c, const char *path, int *dirFd, const char **name) {
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
  return openInRoot(c, dir, 1, dirFd);
}

// The mode is applied exactly: umask is cleared around mknod and the mode set again after.
long doMknod(Child &c, const Step &s) {
  int f = -1;
  const char *name;
  long r = openParent(c, s.path, &f, &name);
  if (r < 0) return r;
  UniqueFd dir(f);
  // O_PATH fds cannot be used for *at calls that modify; reopen the directory for real.
  char buf[64];
  char *p = appendString(buf, buf + sizeof buf, "/proc/thread-self/fd/");
  appendNumber(p, buf + sizeof buf, dir.get());
  UniqueFd real(static_cast<int>(check(open(buf, O_DIRECTORY | O_RDONLY | O_CLOEXEC))));
  if (!real) return -errno;
  mode_t old = umask(0);
  r = check(mknodat(real.get(), name, static_cast<mode_t>(s.a), makedev(s.b, s.c)));
  umask(old);
  if (r < 0) return r;
  if (fchownat(real.get(), name, static_cast<uid_t>(s.d), static_cast<gid_t>(s.e), AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  return check(fchmodat(real.get(), name, static_cast<mode_t>(s.a) & 07777, 0));
}

long doSymlink(Child &c, const Step &s) {
  int f = -1;
  const char *name;
  long r = openParent(c, s.path, &f, &name);
  if (r < 0) return r;
  UniqueFd dir(f);
  char buf[64];
  char *p = appendString(buf, buf + sizeof buf, "/proc/thread-self/fd/");
  appendNumber(p, buf + sizeof buf, dir.get());
  UniqueFd real(static_cast<int>(check(open(buf, O_DIRECTORY | O_RDONLY | O_CLOEXEC))));
  if (!real) return -errno;
  return check(symlinkat(s.source, real.get(), name));
}

}  // namespace husk
