// Joining and creating namespaces.
#include <fcntl.h>
#include <sched.h>

#include "child.h"
#include "util.h"

namespace husk {

// Joins the namespace at path (a /proc/PID/ns/X file or a bind mount of one). Joining a
// pid namespace only moves the children we clone afterwards, which is why the init is
// cloned after every Setns (see child.cc).
long doSetns(Child &, const Step &s) {
  UniqueFd fd(static_cast<int>(check(open(setns_path(s), O_RDONLY | O_CLOEXEC))));
  if (!fd) return -errno;
  return check(setns(fd.get(), static_cast<int>(setns_nstype(s))));
}

long doUnshare(Child &, const Step &s) {
  return check(unshare(static_cast<int>(unshare_flags(s))));
}

}  // namespace husk
