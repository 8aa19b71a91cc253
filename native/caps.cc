// Capabilities. The bounding set is dropped while we are still root; the other sets are
// set after the switch to the container's user (with PR_SET_KEEPCAPS on across it, so
// that setresuid does not clear the permitted set first), ambient last because it may only
// hold what is both permitted and inheritable.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

long doDropBounding(Child &, const Step &s) {
  for (int cap = 0; cap < 64; cap++) {
    long present = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0) break;  // past the last capability this kernel knows
    if (present && !(dropBounding_keep(s) & (1ULL << cap))) {
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return -errno;
    }
  }
  return 0;
}

long doCapset(Child &, const Step &s) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[0].effective = static_cast<uint32_t>(capset_effective(s));
  data[1].effective = static_cast<uint32_t>(capset_effective(s) >> 32);
  data[0].permitted = static_cast<uint32_t>(capset_permitted(s));
  data[1].permitted = static_cast<uint32_t>(capset_permitted(s) >> 32);
  data[0].inheritable = static_cast<uint32_t>(capset_inheritable(s));
  data[1].inheritable = static_cast<uint32_t>(capset_inheritable(s) >> 32);
  if (syscall(SYS_capset, &header, data) < 0) return -errno;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
  for (int cap = 0; cap < 64; cap++) {
    if (!(capset_ambient(s) & (1ULL << cap))) continue;
    // A capability that is not both permitted and inheritable cannot be ambient; runc
    // leaves it out without failing, and so do we (EPERM), as for one the kernel lacks (EINVAL).
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM && errno != EINVAL) return -errno;
  }
  return 0;
}

}  // namespace husk
