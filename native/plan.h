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

// One operation each. The comment says which Step fields it reads.
enum class Op : uint32_t {
  // Process structure and talking to the parent (sync.h).
  CloneInit,     // flags: CLONE_NEW* flags; b: 1 to clone straight into the cgroup v2 directory
                 // whose fd is a (clone3 CLONE_INTO_CGROUP, falling back to clone). Stage 1
                 // clones the container's init here and exits; the init waits for the
                 // parent's Continue, then runs the steps after it.
  Notify,        // a: message type. Tell the parent, wait for its Continue (hooks, id maps).
  Setsid,        // new session: the init leads it (and can take a controlling terminal).
  Prctl,         // a: option, b: argument (PR_SET_NO_NEW_PRIVS, PR_SET_KEEPCAPS, ...).
  JoinSessionKeyring, // source: name. A new session keyring, so the host's keys stay out of reach.
  // Namespaces.
  Setns,         // path: a namespace file; flags: its CLONE_NEW* type.
  Unshare,       // flags: CLONE_NEW* flags.
  LinkUp,        // path: a network interface ("lo") to bring up.
  // Filesystem, before and after pivot_root.
  OpenRoot,      // path: the rootfs; later steps with inRoot resolve their path inside it.
  Mkdir,         // path (inRoot): create the directory and any missing parents.
  Mount,         // source, path (target), fstype, flags, data; inRoot, create.
  CopyUpMount,   // like Mount (a tmpfs, inRoot), then copy in what the directory held (tmpcopyup).
  MountSetattr,  // path (inRoot): mount_setattr(AT_RECURSIVE), a: attributes to set, b: to clear.
  MoveMount,     // a: a detached mount tree (open_tree fd the parent made), path (inRoot), create.
  RemountReadonly, // path: remount the mount there read-only, keeping its nosuid/nodev/noexec/atime flags.
  MaskPath,      // path: hide it (a read-only tmpfs over a directory, /dev/null over anything else).
  Mknod,         // path (inRoot), a: mode with file type, b: major, c: minor, d: uid, e: gid.
  Symlink,       // source: link target, path (inRoot): the link.
  PivotRoot,     // path: the rootfs. Make it "/" and detach the old root.
  MoveRoot,      // path: the rootfs. --no-pivot: move it over "/" and chroot into it.
  Chroot,        // path: the rootfs (no mount namespace of the container's own) or
                 // /proc/PID/root (exec): chroot into it, leaving every mount where it is.
  Chdir,         // path.
  WriteFile,     // path, source: contents (sysctl, attr/exec). A path under /proc must be on a
                 // procfs (EXDEV otherwise): the image may have planted files there.
  // The process.
  Sethostname,   // source.
  Setdomainname, // source.
  Setrlimit,     // a: resource, b: soft, c: hard.
  Umask,         // a: mask.
  Personality,   // a: the execution domain and flags (PER_LINUX32, ...).
  Setgroups,     // groups, ngroups.
  Setresgid,     // a: gid.
  Setresuid,     // a: uid.
  DropBounding,  // a: bits of the bounding set to keep; every other capability is dropped.
  Capset,        // a: effective, b: permitted, c: inheritable, d: ambient (bit masks).
  Console,       // path: where to bind the pty slave (/dev/console) or null; a: rows, b: cols.
                 // Sends the master to the parent, makes the slave stdio and the controlling tty.
  Dup2,          // a: old fd, b: new fd.
  CloseFds,      // a: first fd to close on exec; fds 3..a-1 are kept open (--preserve-fds).
  OpenExecFifo,  // a: the exec fifo, an O_PATH fd the parent opened; also keeps the host's /proc.
  OpenExec,      // path: a program opened in the runtime's mount namespace, run later by Exec.
  FindExecutable,// candidates: absolute paths to try in order; remembers the first executable one.
  Seccomp,       // filter, filterLength, a: seccomp(2) flags.
  WaitExecFifo,  // tell the parent Ready, then block until `start` opens the exec fifo.
  Exec,          // argv, envp: execve the found candidate, or the OpenExec fd.
};

constexpr int kCreateOrdinaryDirectory = 3;

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

struct Plan {
  const Step *steps = nullptr;
  size_t count = 0;
  bool trace = false;    // report every finished step, not only a failure
};

}  // namespace husk
