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
  return check(prctl(static_cast<int>(prctl_option(s)), prctl_arg2(s), 0, 0, 0));
}

long doJoinSessionKeyring(Child &, const Step &s) {
  constexpr long KEYCTL_JOIN_SESSION_KEYRING = 1;
  return check(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, joinSessionKeyring_name(s)));
}

long doWriteFile(Child &, const Step &s) {
  UniqueFd fd(static_cast<int>(check(open(writeFile_path(s), O_WRONLY | O_CLOEXEC))));
  if (!fd) return -errno;
  // Security settings written into an image's own files would be silently lost.
  if (!strncmp(writeFile_path(s), "/proc/", 6)) {
    struct statfs st;
    if (fstatfs(fd.get(), &st) < 0) return -errno;
    if (st.f_type != PROC_SUPER_MAGIC) return -EXDEV;
  }
  size_t len = strlen(writeFile_contents(s));
  long r = check(write(fd.get(), writeFile_contents(s), len));
  if (r >= 0 && static_cast<size_t>(r) != len) return -EIO;
  return r < 0 ? r : 0;
}

long doSethostname(Child &, const Step &s) {
  return check(sethostname(sethostname_name(s), strlen(sethostname_name(s))));
}

long doSetdomainname(Child &, const Step &s) {
  return check(setdomainname(setdomainname_name(s), strlen(setdomainname_name(s))));
}

long doSetrlimit(Child &, const Step &s) {
  struct { uint64_t soft, hard; } limit{setrlimit_soft(s), setrlimit_hard(s)};
  return check(syscall(SYS_prlimit64, 0, static_cast<int>(setrlimit_resource(s)), &limit, nullptr));
}

long doSetgroups(Child &, const Step &s) {
  return check(syscall(SYS_setgroups, setgroups_count(s), setgroups_groups(s)));
}

long doSetresgid(Child &, const Step &s) {
  return check(syscall(SYS_setresgid, setresgid_gid(s), setresgid_gid(s), setresgid_gid(s)));
}

long doSetresuid(Child &, const Step &s) {
  return check(syscall(SYS_setresuid, setresuid_uid(s), setresuid_uid(s), setresuid_uid(s)));
}

}  // namespace husk
