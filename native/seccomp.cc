// Installing the seccomp filter that TypeScript compiled (src/linux/seccomp.ts). It is the
// last step before waiting on the exec fifo and execve, so the filter judges only the
// container's own system calls, not ours.
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

// With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify fd: it goes to the
// parent, which passes it to the listener (linux.seccomp.listenerPath), and is closed here.
long doSeccomp(Child &c, const Step &s) {
  sock_fprog program{seccomp_filterLength(s), const_cast<sock_filter *>(seccomp_filter(s))};
  long r = check(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, static_cast<unsigned>(seccomp_flags(s)), &program));
  if (r < 0 || !(seccomp_flags(s) & SECCOMP_FILTER_FLAG_NEW_LISTENER)) return r;
  UniqueFd listener(static_cast<int>(r));
  long sent = sendMessage(c.sock, Msg::SeccompListener, c.current, 0, listener.get());
  if (sent < 0) return sent;
  // Wait until the parent has handed it on, so that no container syscall is left waiting
  // for a listener that is not there yet.
  return waitContinue(c);
}

}  // namespace husk
