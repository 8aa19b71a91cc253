// The container process's identity and limits: prctl, ids, rlimits, hostname, and writing
// the small /proc files (sysctl, oom_score_adj).
//
// Ids are set with raw system calls on purpose: glibc's setresuid() and setgroups() signal
// every thread they believe exists so that all change together, and after clone() the
// threads glibc remembers from Node are not there.
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

long doPrctl(Child &, const Step &s) {
  return check(prctl(static_cast<int>(s.a), s.b, 0, 0, 0));
}

long doJoinSessionKeyring(Child &, const Step &s) {
  constexpr long KEYCTL_JOIN_SESSION_KEYRING = 1;
  return check(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, s.source));
}

long doWriteFile(Child &, const Step &s) {
  UniqueFd fd(static_cast<int>(check(open(s.path, O_WRONLY | O_CLOEXEC))));
  if (!fd) return -errno;
  // Security settings written into an image's own files would be silently lost.
  if (!strncmp(s.path, "/proc/", 6)) {
    struct statfs st;
    if (fstatfs(fd.get(), &st) < 0) return -errno;
    if (st.f_type != PROC_SUPER_MAGIC) return -EXDEV;
  }
  size_t len = strlen(s.source);
  long r = check(write(fd.get(), s.source, len));
  if (r >= 0 && static_cast<size_t>(r) != len) return -EIO;
  return r < 0 ? r : 0;
}

long doSethostname(Child &, const Step &s) {
  return check(sethostname(s.source, strlen(s.source)));
}

long doSetdomainname(Child &, const Step &s) {
  return check(setdomainname(s.source, strlen(s.source)));
}

long doSetrlimit(Child &, const Step &s) {
  struct { uint64_t soft, hard; } limit{s.b, s.c};
  return check(syscall(SYS_prlimit64, 0, static_cast<int>(s.a), &limit, nullptr));
}

long doSetgroups(Child &, const Step &s) {
  return check(syscall(SYS_setgroups, s.ngroups, s.groups));
}

long doSetresgid(Child &, const Step &s) {
  return check(syscall(SYS_setresgid, s.a, s.a, s.a));
}

long doSetresuid(Child &, const Step &s) {
  return check(syscall(SYS_setresuid, s.a, s.a, s.a));
}

}  // namespace husk
