// The children's side of the plan: the step loop, and the clone of the container's init.
//
// husk (Node) clones "stage 1" with no new namespaces. Stage 1 runs the steps that must
// happen before the container's namespaces exist: joining namespaces given by path (setns
// of a pid namespace only affects children, so the init has to be cloned after it) and
// creating a user namespace whose id maps the parent writes. At CloneInit, stage 1 clones
// the init with the new namespaces, tells the parent its pid and exits. The init waits for
// the parent (which puts it in its cgroups), then runs the rest of the plan up to execve.
#include "child.h"

#include <csignal>
#include <initializer_list>
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

namespace husk {

long waitContinue(Child &c) {
  SyncMessage msg;
  int fd;
  long r = receiveMessage(c.sock, &msg, &fd);
  if (fd >= 0) close(fd);
  if (r < 0) return r;
  if (r == 0) return -EPIPE;
  if (msg.type != static_cast<uint32_t>(Msg::Continue)) return -EPROTO;
  return 0;
}

[[noreturn]] static void fail(Child &c, long err) {
  sendMessage(c.sock, Msg::StepFailed, c.current, -err);
  _exit(1);
}

// Raw clone: fork-like (no CLONE_VM, the child runs on its copy of our stack).
static long cloneRaw(unsigned long flags) {
  return check(syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0));
}

// clone3 into a cgroup v2 directory: the init never runs, not even for a moment, charged to
// husk's own cgroup. Returns -ENOSYS (and the like) where the kernel cannot, for a fallback.
static long cloneIntoCgroup(unsigned long flags, int cgroupFd) {
  clone_args args{};
  args.flags = flags | CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroupFd);
  return check(syscall(SYS_clone3, &args, sizeof args));
}

static long doCloneInit(Child &c, const Step &s) {
  long pid = -ENOSYS;
  c.inCgroup = false;
  if (cloneInit_intoCgroup(s)) {
    pid = cloneIntoCgroup(cloneInit_flags(s), static_cast<int>(cloneInit_cgroupFd(s)));
    if (pid >= 0) c.inCgroup = true;
  }
  // Where the kernel cannot (before 5.7), or we may not: inside a new user namespace stage 1
  // has become an id that cannot write the cgroup; then husk writes cgroup.procs instead.
  if (!cloneInit_intoCgroup(s) || pid == -ENOSYS || pid == -E2BIG || pid == -EOPNOTSUPP || pid == -EINVAL || pid == -EACCES || pid == -EPERM) {
    pid = cloneRaw(cloneInit_flags(s));
  }
  if (pid < 0) return pid;
  if (pid == 0) {
    // The init of a pid namespace ignores every signal it has no handler for, even from
    // the host. Until execve replaces them, handlers make the usual stop signals end it
    // (as they end runc's init), so `kill` works on a created container too.
    struct sigaction dying{};
    dying.sa_handler = [](int sig) { _exit(128 + sig); };
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGABRT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM}) sigaction(sig, &dying, nullptr);
    // Wait until the parent has placed us (cgroups), then go on.
    long r = waitContinue(c);
    if (r < 0) fail(c, r);
    runChild(c, c.current + 1);
  }
  return pid;
}

static long doNotify(Child &c, const Step &s) {
  long r = sendMessage(c.sock, static_cast<Msg>(notify_message(s)), c.current, 0);
  if (r < 0) return r;
  return waitContinue(c);
}

static long dispatch(Child &c, const Step &s) {
  switch (s.op) {
    case Op::CloneInit: return doCloneInit(c, s);
    case Op::Notify: return doNotify(c, s);
    case Op::Setsid: return check(setsid());
    case Op::Prctl: return doPrctl(c, s);
    case Op::JoinSessionKeyring: return doJoinSessionKeyring(c, s);
    case Op::Setns: return doSetns(c, s);
    case Op::Unshare: return doUnshare(c, s);
    case Op::LinkUp: return doLinkUp(c, s);
    case Op::OpenRoot: return doOpenRoot(c, s);
    case Op::Mkdir: return doMkdir(c, s);
    case Op::Mount: return doMount(c, s);
    case Op::MoveMount: return doMoveMount(c, s);
    case Op::MountSetattr: return doMountSetattr(c, s);
    case Op::CopyUpMount: return doCopyUpMount(c, s);
    case Op::RemountReadonly: return doRemountReadonly(c, s);
    case Op::MaskPath: return doMaskPath(c, s);
    case Op::Mknod: return doMknod(c, s);
    case Op::Symlink: return doSymlink(c, s);
    case Op::PivotRoot: return doPivotRoot(c, s);
    case Op::MoveRoot: return doMoveRoot(c, s);
    case Op::Chroot: return doChroot(c, s);
    case Op::Chdir: return check(chdir(chdir_path(s)));
    case Op::WriteFile: return doWriteFile(c, s);
    case Op::Sethostname: return doSethostname(c, s);
    case Op::Setdomainname: return doSetdomainname(c, s);
    case Op::Setrlimit: return doSetrlimit(c, s);
    case Op::Personality: return check(personality(static_cast<unsigned long>(personality_persona(s))));
    case Op::Umask: return umask(static_cast<mode_t>(umask_mask(s))), 0;
    case Op::Setgroups: return doSetgroups(c, s);
    case Op::Setresgid: return doSetresgid(c, s);
    case Op::Setresuid: return doSetresuid(c, s);
    case Op::DropBounding: return doDropBounding(c, s);
    case Op::Capset: return doCapset(c, s);
    case Op::Console: return doConsole(c, s);
    case Op::Dup2: return check(dup3(static_cast<int>(dup2_oldfd(s)), static_cast<int>(dup2_newfd(s)), 0));
    case Op::CloseFds: return doCloseFds(c, s);
    case Op::OpenExecFifo: return doOpenExecFifo(c, s);
    case Op::OpenExec: return doOpenExec(c, s);
    case Op::FindExecutable: return doFindExecutable(c, s);
    case Op::Seccomp: return doSeccomp(c, s);
    case Op::WaitExecFifo: return doWaitExecFifo(c, s);
    case Op::Exec: return doExec(c, s);
  }
  return -ENOSYS;
}

long cloneStage1(const Plan *plan, int sock, const int *closeFds, int count) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) {
    // Stage 1. From here on: system calls only (see plan.h).
    for (int i = 0; i < count; i++) close(closeFds[i]);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    resetSignals();
    Child c{};
    c.plan = plan;
    c.sock = sock;
    runChild(c, 0);
  }
  long r = pid < 0 ? -errno : pid;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return r;
}

[[noreturn]] void runChild(Child &c, size_t first) {
  const Plan &plan = *c.plan;
  for (size_t i = first; i < plan.count; i++) {
    c.current = static_cast<int>(i);
    const Step &s = plan.steps[i];
    long r = dispatch(c, s);
    if (r < 0 && -r == s.okErrno) r = 0;
    if (r < 0) fail(c, r);
    if (plan.trace) sendMessage(c.sock, Msg::StepDone, c.current, r);
    if (s.op == Op::CloneInit) {
      // Stage 1 is done: the parent knows the init by the pid it returns.
      sendMessage(c.sock, c.inCgroup ? Msg::InitPidInCgroup : Msg::InitPid, c.current, r);
      _exit(0);
    }
  }
  // A plan ends with Exec; running off its end is a bug in the plan.
  c.current = static_cast<int>(plan.count);
  fail(c, -EINVAL);
}

}  // namespace husk
