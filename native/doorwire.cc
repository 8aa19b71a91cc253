// One front-door message each way (frontdoor.h): a Frame and its body in one sendmsg, fds
// attached with SCM_RIGHTS. Linked into the addon and the door: libc only, no allocation.
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "frontdoor.h"
#include "util.h"

namespace husk {

namespace {
constexpr size_t kControlSize = CMSG_SPACE(sizeof(int) * kFrontDoorMaxFds);
}

long doorSend(int sock, DoorMsg type, const void *body, uint32_t length, const int *fds, uint32_t nfds) {
  if (length > kFrontDoorMaxMessage - sizeof(Frame) || nfds > kFrontDoorMaxFds) return -EMSGSIZE;
  Frame frame{static_cast<uint32_t>(type), length};
  iovec iov[2] = {{&frame, sizeof frame}, {const_cast<void *>(body), length}};
  msghdr hdr{};
  hdr.msg_iov = iov;
  hdr.msg_iovlen = length ? 2 : 1;
  alignas(cmsghdr) char control[kControlSize];
  if (nfds) {
    memset(control, 0, sizeof control);
    hdr.msg_control = control;
    hdr.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr *c = CMSG_FIRSTHDR(&hdr);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  long r;
  do {
    // MSG_NOSIGNAL: a peer that went away gives EPIPE instead of killing us.
    r = check(sendmsg(sock, &hdr, MSG_NOSIGNAL));
  } while (r == -EINTR);
  return r < 0 ? r : 0;
}

long doorReceive(int sock, DoorMsg *type, void *body, uint32_t capacity, uint32_t *length, int *fds, uint32_t *nfds) {
  *length = 0;
  *nfds = 0;
  Frame frame{};
  iovec iov[2] = {{&frame, sizeof frame}, {body, capacity}};
  msghdr hdr{};
  hdr.msg_iov = iov;
  hdr.msg_iovlen = 2;
  alignas(cmsghdr) char control[kControlSize];
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof control;
  long r;
  do {
    r = check(recvmsg(sock, &hdr, MSG_CMSG_CLOEXEC));
  } while (r == -EINTR);
  if (r <= 0) return r;
  for (cmsghdr *c = CMSG_FIRSTHDR(&hdr); c; c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (*nfds < kFrontDoorMaxFds) fds[(*nfds)++] = fd;
      else close(fd);
    }
  }
  // A message cut short (by our buffer or the fds' room) or whose frame disagrees with what
  // arrived is not half-handled: its fds are closed and the caller sees EPROTO.
  if ((hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || static_cast<size_t>(r) < sizeof frame || frame.length != static_cast<size_t>(r) - sizeof frame) {
    for (uint32_t i = 0; i < *nfds; i++) close(fds[i]);
    *nfds = 0;
    return -EPROTO;
  }
  *type = static_cast<DoorMsg>(frame.type);
  *length = frame.length;
  return 1;
}

}  // namespace husk
