// The plan: the flat, plain-data list of steps that TypeScript builds (src/linux/plan.ts)
// and the cloned children execute in order, between clone() and execve().
//
// addon.cc turns the JavaScript step objects into these structs in the parent, before
// clone(). Every string, array and number the children need is prepared there, so the
// children never allocate: they only read this memory (their copy-on-write image of the
// parent's) and make system calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <linux/filter.h>
#include <sys/types.h>

namespace husk {

// One operation each; the comment says what it does with its fields (HUSK_STEP_FIELDS below
// names them, and says which Step member carries each).
enum class Op : uint32_t {
  // Process structure and talking to the parent (sync.h).
  CloneInit,     // flags: CLONE_NEW* flags; intoCgroup: 1 to clone straight into the cgroup v2
                 // directory whose fd is cgroupFd (clone3 CLONE_INTO_CGROUP, falling back to
                 // clone). Stage 1 clones the container's init here and exits; the init waits
                 // for the parent's Continue, then runs the steps after it.
  Notify,        // message: tell the parent (sync.h), wait for its Continue (hooks, id maps).
  Setsid,        // new session: the init leads it (and can take a controlling terminal).
  Prctl,         // option, arg2 (PR_SET_NO_NEW_PRIVS, PR_SET_KEEPCAPS, ...).
  JoinSessionKeyring, // name. A new session keyring, so the host's keys stay out of reach.
  // Namespaces.
  Setns,         // path: a namespace file; nstype: its CLONE_NEW* type.
  Unshare,       // flags: CLONE_NEW* flags.
  LinkUp,        // ifname: a network interface ("lo") to bring up.
  // Filesystem, before and after pivot_root.
  OpenRoot,      // path: the rootfs; later steps with inRoot resolve their path inside it.
  Mkdir,         // path (inRoot): create the directory and any missing parents.
  Mount,         // source, target, fstype, flags, data; inRoot, create.
  CopyUpMount,   // like Mount (a tmpfs, inRoot), then copy in what the directory held (tmpcopyup).
  MountSetattr,  // path (inRoot): mount_setattr(AT_RECURSIVE) with attrSet and attrClr.
  MoveMount,     // fromFd: a detached mount tree (open_tree fd the parent made); toPath (inRoot), create.
  RemountReadonly, // path: remount the mount there read-only, keeping its nosuid/nodev/noexec/atime
                 // flags; flags: more (MS_REC).
  MaskPath,      // path: hide it (a read-only tmpfs over a directory, /dev/null over anything else).
  Mknod,         // path (inRoot), mode (with the file type), major, minor, uid, gid.
  Symlink,       // target, linkpath (inRoot).
  PivotRoot,     // path: the rootfs. Make it "/" and detach the old root.
  MoveRoot,      // path: the rootfs. --no-pivot: move it over "/" and chroot into it.
  Chroot,        // path: the rootfs (no mount namespace of the container's own) or
                 // /proc/PID/root (exec): chroot into it, leaving every mount where it is.
  Chdir,         // path.
  WriteFile,     // path, contents (sysctl, attr/exec). A path under /proc must be on a procfs
                 // (EXDEV otherwise): the image may have planted files there.
  // The process.
  Sethostname,   // name.
  Setdomainname, // name.
  Setrlimit,     // resource, soft, hard.
  Umask,         // mask.
  Personality,   // persona: the execution domain and flags (PER_LINUX32, ...).
  Setgroups,     // groups (setgroups_count of them).
  Setresgid,     // gid.
  Setresuid,     // uid.
  DropBounding,  // keep: bits of the bounding set to keep; every other capability is dropped.
  Capset,        // effective, permitted, inheritable, ambient (bit masks).
  Console,       // path: where to bind the pty slave (/dev/console) or null; rows, cols; uid, gid
                 // own the slave. Sends the master to the parent, makes the slave stdio and the
                 // controlling tty.
  Dup2,          // oldfd, newfd.
  CloseFds,      // first: first fd to close on exec; fds 3..first-1 are kept open (--preserve-fds).
  OpenExecFifo,  // fd: the exec fifo, an O_PATH fd the parent opened; also keeps the host's /proc.
  OpenExec,      // path: a program opened in the runtime's mount namespace, run later by Exec.
  FindExecutable,// candidates: absolute paths to try in order; remembers the first executable one.
  Seccomp,       // filter (seccomp_filterLength instructions), flags: seccomp(2) flags.
  WaitExecFifo,  // tell the parent Ready, then block until `start` opens the exec fifo.
  Exec,          // argv, envp: execve the found candidate, or the OpenExec fd.
};

// Each op's fields, named in the kernel's words, and the Step member that carries each:
// F(op, field, member). The one table for C++: the accessors below are made from it (read
// mknod_major(step), never step.b). src/native/steps.ts holds the same table for TypeScript
// (STEP_LAYOUT), and test/unit/native-steps.test.ts fails when the two disagree.
#define HUSK_STEP_FIELDS(F) \
  F(cloneInit, flags, flags)                \
  F(cloneInit, cgroupFd, a)                 \
  F(cloneInit, intoCgroup, b)               \
  F(notify, message, a)                     \
  F(prctl, option, a)                       \
  F(prctl, arg2, b)                         \
  F(joinSessionKeyring, name, source)       \
  F(setns, path, path)                      \
  F(setns, nstype, flags)                   \
  F(unshare, flags, flags)                  \
  F(linkUp, ifname, path)                   \
  F(openRoot, path, path)                   \
  F(mkdir, path, path)                      \
  F(mount, source, source)                  \
  F(mount, target, path)                    \
  F(mount, fstype, fstype)                  \
  F(mount, flags, flags)                    \
  F(mount, data, data)                      \
  F(copyUpMount, source, source)            \
  F(copyUpMount, target, path)              \
  F(copyUpMount, fstype, fstype)            \
  F(copyUpMount, flags, flags)              \
  F(copyUpMount, data, data)                \
  F(mountSetattr, path, path)               \
  F(mountSetattr, attrSet, a)               \
  F(mountSetattr, attrClr, b)               \
  F(moveMount, fromFd, a)                   \
  F(moveMount, toPath, path)                \
  F(remountReadonly, path, path)            \
  F(remountReadonly, flags, flags)          \
  F(maskPath, path, path)                   \
  F(mknod, path, path)                      \
  F(mknod, mode, a)                         \
  F(mknod, major, b)                        \
  F(mknod, minor, c)                        \
  F(mknod, uid, d)                          \
  F(mknod, gid, e)                          \
  F(symlink, target, source)                \
  F(symlink, linkpath, path)                \
  F(pivotRoot, path, path)                  \
  F(moveRoot, path, path)                   \
  F(chroot, path, path)                     \
  F(chdir, path, path)                      \
  F(writeFile, path, path)                  \
  F(writeFile, contents, source)            \
  F(sethostname, name, source)              \
  F(setdomainname, name, source)            \
  F(setrlimit, resource, a)                 \
  F(setrlimit, soft, b)                     \
  F(setrlimit, hard, c)                     \
  F(umask, mask, a)                         \
  F(personality, persona, a)                \
  F(setgroups, groups, groups)              \
  F(setresgid, gid, a)                      \
  F(setresuid, uid, a)                      \
  F(dropBounding, keep, a)                  \
  F(capset, effective, a)                   \
  F(capset, permitted, b)                   \
  F(capset, inheritable, c)                 \
  F(capset, ambient, d)                     \
  F(console, path, path)                    \
  F(console, rows, a)                       \
  F(console, cols, b)                       \
  F(console, uid, c)                        \
  F(console, gid, d)                        \
  F(dup2, oldfd, a)                         \
  F(dup2, newfd, b)                         \
  F(closeFds, first, a)                     \
  F(openExecFifo, fd, a)                    \
  F(openExec, path, path)                   \
  F(findExecutable, candidates, candidates) \
  F(seccomp, flags, a)                      \
  F(seccomp, filter, filter)                \
  F(exec, argv, argv)                       \
  F(exec, envp, envp)                      

constexpr int kCreateOrdinaryDirectory = 3;

// A step as plain data, laid out by src/native/steps.ts. Read it through the accessors below.
struct Step {
  Op op;
  const char *path = nullptr;
  const char *source = nullptr;
  const char *fstype = nullptr;
  const char *data = nullptr;
  unsigned long flags = 0;
  uint64_t a = 0, b = 0, c = 0, d = 0, e = 0;
  bool inRoot = false;   // path is inside the rootfs opened by OpenRoot; never leave it
  int create = 0;        // create a missing path: 0 no, 1 a directory, 2 a file, 3 (Mount of
                         // proc, sysfs) a directory that must be an ordinary one, not a symlink
  int okErrno = 0;       // this errno means "nothing to do" (ENOENT for a masked path)
  char *const *argv = nullptr;
  char *const *envp = nullptr;
  const char *const *candidates = nullptr;
  const gid_t *groups = nullptr;
  size_t ngroups = 0;
  const sock_filter *filter = nullptr;
  unsigned short filterLength = 0;
};

// op_field(step): the field of a step, e.g. mknod_major(s), mount_target(s), seccomp_filter(s).
#define HUSK_STEP_ACCESSOR(op, field, member) \
  inline auto op##_##field(const Step &s) { return s.member; }
HUSK_STEP_FIELDS(HUSK_STEP_ACCESSOR)
#undef HUSK_STEP_ACCESSOR

// The lengths that go with the array fields.
inline size_t setgroups_count(const Step &s) { return s.ngroups; }
inline unsigned short seccomp_filterLength(const Step &s) { return s.filterLength; }

struct Plan {
  const Step *steps = nullptr;
  size_t count = 0;
  bool trace = false;    // report every finished step, not only a failure
};

}  // namespace husk
