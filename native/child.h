// What a child knows while it runs the plan, and one function per kind of step. Each step
// function returns its result (>= 0) or -errno; child.cc reports it to the parent. All of
// it runs after clone(): raw system calls only, no allocation (see plan.h).
#pragma once

#include "plan.h"

namespace husk {

struct Child {
  const Plan *plan;
  int sock;              // our end of the sync socketpair
  int rootFd = -1;       // OpenRoot: the rootfs, for steps whose path is inRoot
  int fifoFd = -1;       // OpenExecFifo: the exec fifo (O_PATH)
  int procFd = -1;       // OpenExecFifo: the host's /proc, to reopen the fifo after pivot_root
  int execFd = -1;       // OpenExec: a program to run with execveat
  const char *execPath = nullptr;  // FindExecutable: the candidate to execve
  int current = 0;       // index of the step being run
  bool inCgroup = false; // CloneInit put the init straight into its cgroup (clone3)
};

// Runs the plan from step `first` and never returns (exec or _exit).
[[noreturn]] void runChild(Child &c, size_t first);

// Clones stage 1, whoever asks (the addon in Node, or the front door): every signal blocked
// across clone() (pthread_sigmask, for a multithreaded parent), so that none of the parent's
// handlers can run in the child before it resets them. The child closes closeFds[0..count)
// (the parent's end of the sync socket, its own fds), then makes itself non-dumpable, and so
// everything it clones (until execve, no process of a container it joins may ptrace it or
// open its /proc/PID/exe, mem or environ: CVE-2019-5736), resets every signal handler, and
// runs the plan from its first step over `sock`. Returns the child's pid, or -errno.
long cloneStage1(const Plan *plan, int sock, const int *closeFds, int count);

// Waits for the parent's Continue. Returns 0 or -errno (-EPIPE when the parent went away).
long waitContinue(Child &c);

// namespaces.cc
long doSetns(Child &c, const Step &s);
long doUnshare(Child &c, const Step &s);
// network.cc
long doLinkUp(Child &c, const Step &s);
// mounts.cc
long openInRoot(Child &c, const char *path, int create, int *fd);
// Splits "dev/pts/ptmx" into a real directory fd for "dev/pts" (inside the rootfs, created when
// missing) and the last component, which points into `path`.
long openParent(Child &c, const char *path, int *dirFd, const char **name);
// "/proc/thread-self/fd/N" in buf: the path through which a path-taking syscall reaches fd N.
const char *fdPath(char *buf, size_t size, int fd);
// An O_PATH directory fd reopened for real (to read it, or to make things in it).
long reopenDirectory(int pathFd);
long doOpenRoot(Child &c, const Step &s);
long doMkdir(Child &c, const Step &s);
long doMount(Child &c, const Step &s);
long doRemountReadonly(Child &c, const Step &s);
long doMoveMount(Child &c, const Step &s);
long doMountSetattr(Child &c, const Step &s);
// copyup.cc
long doCopyUpMount(Child &c, const Step &s);
long doMaskPath(Child &c, const Step &s);
long doPivotRoot(Child &c, const Step &s);
long doMoveRoot(Child &c, const Step &s);
long doChroot(Child &c, const Step &s);
// devices.cc
long doMknod(Child &c, const Step &s);
long doSymlink(Child &c, const Step &s);
// process.cc
long doPrctl(Child &c, const Step &s);
long doJoinSessionKeyring(Child &c, const Step &s);
long doWriteFile(Child &c, const Step &s);
long doSethostname(Child &c, const Step &s);
long doSetdomainname(Child &c, const Step &s);
long doSetrlimit(Child &c, const Step &s);
long doSetgroups(Child &c, const Step &s);
long doSetresgid(Child &c, const Step &s);
long doSetresuid(Child &c, const Step &s);
// caps.cc
long doDropBounding(Child &c, const Step &s);
long doCapset(Child &c, const Step &s);
// terminal.cc
long doConsole(Child &c, const Step &s);
// seccomp.cc
long doSeccomp(Child &c, const Step &s);
// exec.cc
long doCloseFds(Child &c, const Step &s);
long doOpenExecFifo(Child &c, const Step &s);
long doOpenExec(Child &c, const Step &s);
long doFindExecutable(Child &c, const Step &s);
long doWaitExecFifo(Child &c, const Step &s);
long doExec(Child &c, const Step &s);

}  // namespace husk
