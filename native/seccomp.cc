// Installing the seccomp filter that TypeScript compiled (src/linux/seccomp.ts). It is the
// last step before waiting on the exec fifo and execve, so the filter judges only the
// container's own system calls, not ours.
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

long doSeccomp(Child &, const Step &s) {
  sock_fprog program{s.filterLength, const_cast<sock_filter *>(s.filter)};
  return check(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(s.a), &program));
}

}  // namespace husk
