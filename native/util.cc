#include "util.h"

#include <csignal>
#include <cstring>
#include <sys/socket.h>

namespace husk {

long sendMessage(int sock, Msg type, int32_t step, int64_t value, int fd) {
  SyncMessage msg{static_cast<uint32_t>(type), step, value};
  return sendWithFd(sock, &msg, sizeof msg, fd);
}

long sendWithFd(int sock, const void *data, size_t len, int fd) {
  iovec iov{const_cast<void *>(data), len};
  return sendWithFds(sock, &iov, 1, &fd, fd >= 0 ? 1 : 0);
}

long sendWithFds(int sock, const iovec *iov, int iovcnt, const int *fds, uint32_t nfds) {
  if (nfds > kMaxFdsPerMessage) return -EMSGSIZE;
  msghdr hdr{};
  hdr.msg_iov = const_cast<iovec *>(iov);
  hdr.msg_iovlen = static_cast<size_t>(iovcnt);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
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
    // MSG_NOSIGNAL: a peer that went away must give EPIPE, not kill us with SIGPIPE.
    r = check(sendmsg(sock, &hdr, MSG_NOSIGNAL));
  } while (r == -EINTR);
  return r < 0 ? r : 0;
}

void resetSignals() {
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

long receiveMessage(int sock, SyncMessage *msg, int *fd) {
  *fd = -1;
  iovec iov{msg, sizeof *msg};
  uint32_t nfds = 0;
  bool truncated = false;
  long r = receiveWithFds(sock, &iov, 1, fd, 1, &nfds, &truncated);
  if (r <= 0) return r;
  if (r != sizeof *msg) return -EPROTO;
  return 1;
}

long receiveWithFds(int sock, iovec *iov, int iovcnt, int *fds, uint32_t maxFds, uint32_t *nfds, bool *truncated) {
  *nfds = 0;
  *truncated = false;
  msghdr hdr{};
  hdr.msg_iov = iov;
  hdr.msg_iovlen = static_cast<size_t>(iovcnt);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
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
      if (*nfds < maxFds) {
        fds[(*nfds)++] = fd;
      } else {
        close(fd);
        *truncated = true;
      }
    }
  }
  if (hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) *truncated = true;
  return r;
}

char *appendNumber(char *buf, char *end, long long n) {
  char digits[24];
  int len = 0;
  unsigned long long v = n < 0 ? -static_cast<unsigned long long>(n) : n;
  do {
    digits[len++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  if (n < 0 && buf < end - 1) *buf++ = '-';
  while (len && buf < end - 1) *buf++ = digits[--len];
  *buf = 0;
  return buf;
}

char *appendString(char *buf, char *end, const char *s) {
  while (*s && buf < end - 1) *buf++ = *s++;
  *buf = 0;
  return buf;
}

}  // namespace husk
