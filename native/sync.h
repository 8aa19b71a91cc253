// The messages between husk (the parent, in Node) and its children (stage 1 and the
// container's init, in child.cc), over one SOCK_SEQPACKET socketpair. Mirrored in
// src/native/sync.ts. Each message is one SyncMessage, sometimes with one fd attached.
//
//  direction        type           value                  meaning
//  child -> parent  StepDone       result of the syscall  step `step` finished (only with --trace)
//  child -> parent  StepFailed     errno                  step `step` failed; the child exits 1
//  child -> parent  InitPid        pid                    stage 1 cloned the init (pid as husk sees it)
//  child -> parent  InitPidInCgroup pid                   the same, cloned straight into its cgroup (clone3)
//  child -> parent  Hooks          0                      init paused before pivot_root: run the
//                                                         createRuntime/createContainer hooks
//  child -> parent  UserMaps       0                      a user namespace exists: write its id maps
//  child -> parent  Console        0, fd attached         the pty master of the container's terminal
//  child -> parent  Ready          0                      init is set up and blocks on the exec fifo
//  child -> parent  SeccompListener 0, fd attached        the seccomp notify fd, for linux.seccomp.listenerPath
//  parent -> child  Continue       0                      go on (after InitPid, Hooks, UserMaps)
//
// After InitPid the init waits for Continue before its first step: the parent puts it into
// its cgroups first. A child that fails sends StepFailed and exits; the parent kills the
// init and removes what it made. When the init execs, its end closes (it is O_CLOEXEC), so
// a parent still reading sees end-of-file: the container's process is running.
#pragma once

#include <cstdint>

namespace husk {

enum class Msg : uint32_t {
  StepDone = 1,
  StepFailed = 2,
  InitPid = 3,
  Hooks = 4,
  UserMaps = 5,
  Console = 6,
  Ready = 7,
  SeccompListener = 8,
  InitPidInCgroup = 9,
  Continue = 100,
};

struct SyncMessage {
  uint32_t type;
  int32_t step;     // index of the step it is about, or -1
  int64_t value;
};

static_assert(sizeof(SyncMessage) == 16, "SyncMessage is 16 bytes on the wire");

}  // namespace husk
