#include "util.h"

#include <cstring>
#include <sys/socket.h>

namespace husk {

long sendMessage(int sock, Msg type, int32_t step, int64_t value, int fd) {
  SyncMessage msg{static_cast<uint32_t>(type), step, value};
  return sendWithFd(sock, &msg, sizeof msg, fd);
}

long sendWithFd(int sock, const void *data, size_t len, int fd) {
  iovec iov{const_cast<void *>(data), len};
  msghdr hdr{};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    memset(control, 0, sizeof control);
    hdr.msg_control = control;
    hdr.msg_controllen = sizeof control;
    cmsghdr *c = CMSG_FIRSTHDR(&hdr);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  long r;
  do {
    // MSG_NOSIGNAL: a parent that went away must give EPIPE, not kill us with SIGPIPE.
    r = check(sendmsg(sock, &hdr, MSG_NOSIGNAL));
  } while (r == -EINTR);
  return r < 0 ? r : 0;
}

long receiveMessage(int sock, SyncMessage *msg, int *fd) {
  *fd = -1;
  iovec iov{msg, sizeof *msg};
  msghdr hdr{};
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof control;
  long r;
  do {
    r = check(recvmsg(sock, &hdr, MSG_CMSG_CLOEXEC));
  } while (r == -EINTR);
  if (r <= 0) return r;
  for (cmsghdr *c = CMSG_FIRSTHDR(&hdr); c; c = CMSG_NXTHDR(&hdr, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof *fd);
  }
  if (r != sizeof *msg) return -EPROTO;
  return 1;
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
