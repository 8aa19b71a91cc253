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

// The mode is applied exactly: umask is cleared around mknod and the mode set again after.
long doMknod(Child &c, const Step &s) {
  int f = -1;
  const char *name;
  long r = openParent(c, mknod_path(s), &f, &name);
  if (r < 0) return r;
  UniqueFd dir(f);
  mode_t old = umask(0);
  r = check(mknodat(dir.get(), name, static_cast<mode_t>(mknod_mode(s)), makedev(mknod_major(s), mknod_minor(s))));
  umask(old);
  if (r < 0) return r;
  if (fchownat(dir.get(), name, static_cast<uid_t>(mknod_uid(s)), static_cast<gid_t>(mknod_gid(s)), AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  return check(fchmodat(dir.get(), name, static_cast<mode_t>(mknod_mode(s)) & 07777, 0));
}

long doSymlink(Child &c, const Step &s) {
  int f = -1;
  const char *name;
  long r = openParent(c, symlink_linkpath(s), &f, &name);
  if (r < 0) return r;
  UniqueFd dir(f);
  return check(symlinkat(symlink_target(s), dir.get(), name));
}

}  // namespace husk
