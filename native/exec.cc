// The end of the plan: closing inherited fds, the exec fifo that `start` opens, and execve.
//
// Every fd above 3 + --preserve-fds is marked close-on-exec, so nothing of husk's (Node's
// own fds, the sync socket, the host's /proc) reaches the container (CVE-2024-21626).
#include <cstdint>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

namespace husk {

struct Dirent64 {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

// Marks every open fd >= first close-on-exec, listing them from /proc/thread-self/fd with raw
// getdents64 into a buffer on the stack. Through the host's /proc when OpenExecFifo kept it
// (the container may mount none), else through the /proc this process sees.
static long markCloexecFromProc(Child &c, int first) {
  UniqueFd dir(static_cast<int>(c.procFd >= 0
    ? check(openat(c.procFd, "thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC))
    : check(open("/proc/thread-self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC))));
  if (!dir) return -errno;
  alignas(Dirent64) char buf[4096];
  for (;;) {
    long n = check(syscall(SYS_getdents64, dir.get(), buf, sizeof buf));
    if (n < 0) return n;
    if (n == 0) return 0;
    for (long at = 0; at < n;) {
      const Dirent64 *d = reinterpret_cast<const Dirent64 *>(buf + at);
      at += d->reclen;
      if (d->name[0] < '0' || d->name[0] > '9') continue;
      long fd = 0;
      for (const char *p = d->name; *p >= '0' && *p <= '9'; p++) fd = fd * 10 + (*p - '0');
      if (fd < first || fd == dir.get()) continue;
      if (fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF) return -errno;
    }
  }
}

long doCloseFds(Child &c, const Step &s) {
  // Node marks its stdio close-on-exec and may have made it non-blocking; the container's
  // process gets them as any program expects them: open across exec, blocking.
  for (int fd = 0; fd < 3; fd++) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  for (int fd = 0; fd < static_cast<int>(closeFds_first(s)); fd++) fcntl(fd, F_SETFD, 0);
  long r = check(syscall(SYS_close_range, static_cast<unsigned>(closeFds_first(s)), ~0U, CLOSE_RANGE_CLOEXEC));
  // close_range came with Linux 5.9, and a seccomp filter husk itself runs under may refuse it.
  if (r == -ENOSYS || r == -EPERM) r = markCloexecFromProc(c, static_cast<int>(closeFds_first(s)));
  return r;
}

// The parent opened the fifo (O_PATH): husk's state dir may not be reachable by the
// container's root (a user namespace). After pivot_root it is reopened for writing through
// the host's /proc, which is also kept here.
long doOpenExecFifo(Child &c, const Step &s) {
  c.fifoFd = static_cast<int>(openExecFifo_fd(s));
  long r = check(open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (r < 0) return r;
  c.procFd = static_cast<int>(r);
  return c.fifoFd;
}

// Not O_CLOEXEC: execveat of a script needs the fd to still be open when its interpreter runs.
long doOpenExec(Child &c, const Step &s) {
  long r = check(open(openExec_path(s), O_PATH));
  if (r >= 0) c.execFd = static_cast<int>(r);
  return r;
}

long doFindExecutable(Child &c, const Step &s) {
  long firstError = -ENOENT;
  for (int i = 0; findExecutable_candidates(s)[i]; i++) {
    struct stat st;
    if (stat(findExecutable_candidates(s)[i], &st) < 0) {
      if (errno != ENOENT && errno != ENOTDIR && firstError == -ENOENT) firstError = -errno;
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      if (firstError == -ENOENT) firstError = -EACCES;
      continue;
    }
    if (access(findExecutable_candidates(s)[i], X_OK) < 0) {
      if (firstError == -ENOENT) firstError = -errno;
      continue;
    }
    c.execPath = findExecutable_candidates(s)[i];
    return i;
  }
  return firstError;
}

// Tells the parent we are ready (create returns), then blocks in open() until `start`
// opens the other end for reading.
long doWaitExecFifo(Child &c, const Step &) {
  long r = sendMessage(c.sock, Msg::Ready, c.current, 0);
  if (r < 0) return r;
  char path[64];
  appendNumber(appendString(path, path + sizeof path, "thread-self/fd/"), path + sizeof path, c.fifoFd);
  UniqueFd fifo(static_cast<int>(check(openat(c.procFd, path, O_WRONLY | O_CLOEXEC))));
  if (!fifo) return -errno;
  if (write(fifo.get(), "0", 1) < 0) return -errno;
  close(c.fifoFd);
  close(c.procFd);
  c.fifoFd = c.procFd = -1;
  return 0;
}

long doExec(Child &c, const Step &s) {
  if (c.execFd >= 0) {
    // A script's interpreter reads it through /dev/fd/N: that fd must survive the exec,
    // even though CloseFds marked everything close-on-exec.
    if (fcntl(c.execFd, F_SETFD, 0) < 0) return -errno;
    return check(syscall(SYS_execveat, c.execFd, "", exec_argv(s), exec_envp(s), AT_EMPTY_PATH));
  }
  if (!c.execPath) return -ENOENT;
  return check(execve(c.execPath, exec_argv(s), exec_envp(s)));
}

}  // namespace husk
