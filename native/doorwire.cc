// One front-door message each way (frontdoor.h): a Frame and its body in one sendmsg, fds
// attached with SCM_RIGHTS. Linked into the addon and the door: libc only, no allocation.
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "frontdoor.h"
#include "util.h"

namespace husk {

static_assert(kFrontDoorMaxFds == kMaxFdsPerMessage, "a door message carries what sendWithFds sends");

long doorSend(int sock, DoorMsg type, const void *body, uint32_t length, const int *fds, uint32_t nfds) {
  if (length > kFrontDoorMaxMessage - sizeof(Frame) || nfds > kFrontDoorMaxFds) return -EMSGSIZE;
  Frame frame{static_cast<uint32_t>(type), length};
  iovec iov[2] = {{&frame, sizeof frame}, {const_cast<void *>(body), length}};
  return sendWithFds(sock, iov, length ? 2 : 1, fds, nfds);
}

long doorReceive(int sock, DoorMsg *type, void *body, uint32_t capacity, uint32_t *length, int *fds, uint32_t *nfds) {
  *length = 0;
  Frame frame{};
  iovec iov[2] = {{&frame, sizeof frame}, {body, capacity}};
  bool truncated = false;
  long r = receiveWithFds(sock, iov, 2, fds, kFrontDoorMaxFds, nfds, &truncated);
  if (r <= 0) return r;
  // A message cut short (by our buffer or the fds' room) or whose frame disagrees with what
  // arrived is not half-handled: its fds are closed and the caller sees EPROTO.
  if (truncated || static_cast<size_t>(r) < sizeof frame || frame.length != static_cast<size_t>(r) - sizeof frame) {
    for (uint32_t i = 0; i < *nfds; i++) close(fds[i]);
    *nfds = 0;
    return -EPROTO;
  }
  *type = static_cast<DoorMsg>(frame.type);
  *length = frame.length;
  return 1;
}

}  // namespace husk
