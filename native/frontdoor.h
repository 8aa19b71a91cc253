// The front door's wire: the messages between `husk` (the small native executable that users
// and engines call, native/frontdoor.cc) and whoever runs the call in TypeScript: the warm
// husk server (src/server/) over a unix socket, or a one-shot `node dist/cli/main.js` child
// over a socketpair. Mirrored in src/native/frontdoor.ts.
//
// The socket is SOCK_SEQPACKET: one sendmsg is one message, which starts with a Frame and may
// carry fds (SCM_RIGHTS). Numbers are the host's byte order; strings are NUL-terminated and
// follow each other.
//
//  direction        type        body                                    fds
//  door -> server   Call        CallHeader, cwd, home, argv..., env...  the caller's 0, 1, 2
//                               (home: the husk installation the door belongs to; a server
//                               of another one answers Fallback)
//  server -> door   Accepted    (empty): the server took the call; before it, a closed
//                               connection means nothing was done and the door may run the
//                               call itself
//  server -> door   Spawn       u32 nfds, u32 step[nfds], plan blob     nfds fds: step[i]'s
//                               (planwire.h). The door clones stage 1    field `a` becomes the
//                               running the plan and answers Spawned    i-th fd as the door has it
//  door -> server   Spawned     i32 stage 1's pid, or -errno            its end of the sync socket
//  server -> door   Cleanup     u32 argc, argv...: if the connection ends before Exit or
//                               Foreground, the door runs this call (e.g. delete --force ID) to
//                               undo a half-made container, then fails
//  server -> door   Foreground  i32 pid, u32 flags                       the pty master when
//                               flags & kForegroundConsole, or 3 pipe ends when flags &
//                               kForegroundPipes. The door waits for pid (its child: it is
//                               the subreaper), forwards signals, relays the terminal or the
//                               pipes, then answers Exited
//  door -> server   Exited      i32 pid's status as a shell shows it (code, or 128 + signal);
//                               the call goes on (run deletes the container) and ends with
//                               Exit. Should the call's process be gone, the door runs Cleanup
//                               and exits with this status
//  server -> door   Exit        i32 exit code: the call is over
//  server -> door   Fallback    (empty): run this call in a one-shot node child instead
//
// A one-shot child gets its end of the socketpair as fd HUSK_FRONT_DOOR_FD (environment); it
// sends no Call or Accepted (it has the caller's argv, env, cwd and stdio already) and answers
// with the same messages. Its exit status counts when it sends neither Exit nor Foreground.
#pragma once

#include <cstdint>

namespace husk {

constexpr uint32_t kFrontDoorVersion = 3;
// The largest message either side sends (SOCK_SEQPACKET delivers a message whole or not at all).
constexpr uint32_t kFrontDoorMaxMessage = 1 << 20;
// The most fds one message carries.
constexpr uint32_t kFrontDoorMaxFds = 64;

enum class DoorMsg : uint32_t {
  Call = 1,
  Accepted = 2,
  Spawn = 3,
  Spawned = 4,
  Cleanup = 5,
  Foreground = 6,
  Exit = 7,
  Fallback = 8,
  Exited = 9,
};

struct Frame {
  uint32_t type;    // DoorMsg
  uint32_t length;  // bytes of body after the frame
};

struct CallHeader {
  uint32_t version;  // kFrontDoorVersion
  int32_t pid;       // the door's pid as it sees it (the server compares it with SO_PEERCRED:
                     // another pid namespace gets Fallback)
  uint32_t umask;
  uint32_t flags;    // kCallHasTty
  uint32_t argc;     // the words after the program name
  uint32_t envc;
};

constexpr uint32_t kCallHasTty = 1;          // the caller has a controlling terminal (/dev/tty opens)
constexpr uint32_t kForegroundConsole = 1;   // Foreground carries the pty master
constexpr uint32_t kForegroundPipes = 2;     // Foreground carries husk's ends of the process's
                                             // stdio pipes: stdin's write end, stdout's and
                                             // stderr's read ends (runc's foreground without a
                                             // terminal), which the door relays

// The socket, its lock and the server's log, in husk's state directory (--root). "~" never
// appears in a container id, so these never collide with a container's directory.
constexpr const char *kServerSocket = "~server.sock";
constexpr const char *kServerLock = "~server.lock";
constexpr const char *kServerLog = "~server.log";

}  // namespace husk

// doorwire.cc: one message each way, for the door (frontdoor.cc) and the addon (addon.cc).
namespace husk {

// Sends one message: a Frame, then `length` bytes of body, with nfds fds attached (SCM_RIGHTS).
// Never raises SIGPIPE. Returns 0 or -errno (-EMSGSIZE past the limits above).
long doorSend(int sock, DoorMsg type, const void *body, uint32_t length, const int *fds, uint32_t nfds);

// Receives one message: its type, its body into body[0..capacity) (*length bytes), its fds
// into fds[0..kFrontDoorMaxFds) (*nfds of them, close-on-exec). Returns 1, 0 at end-of-file,
// or -errno (-EPROTO for a short or truncated message, whose fds it closes).
long doorReceive(int sock, DoorMsg *type, void *body, uint32_t capacity, uint32_t *length, int *fds, uint32_t *nfds);

}  // namespace husk
