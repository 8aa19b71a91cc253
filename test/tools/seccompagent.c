/*
 * seccompagent: a seccomp notify listener for tests (linux.seccomp.listenerPath).
 *
 *   seccompagent SOCKET_PATH ERRNO
 *
 * Listens on SOCKET_PATH, prints "listening" on stdout, accepts one connection from the
 * runtime, receives the notify fd (SCM_RIGHTS) with the container process state (JSON), prints
 * that JSON on one line, then answers every notified system call with -ERRNO (ERRNO 0: the call
 * "succeeds" with value 0), printing "notified SYSCALL_NR pid PID" for each, until the fd
 * reports that the container is gone. Exit 0, or 1 on error (message on stderr); 4 when nobody
 * connects within 30 s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int die(const char *what) {
  fprintf(stderr, "seccompagent: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: seccompagent SOCKET_PATH ERRNO\n");
    return 2;
  }
  int answer = atoi(argv[2]);
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return die("socket");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(argv[1]) >= sizeof addr.sun_path) return die("socket path too long");
  strcpy(addr.sun_path, argv[1]);
  unlink(argv[1]);
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) return die("bind");
  if (listen(listener, 1) < 0) return die("listen");
  printf("listening\n");
  fflush(stdout);
  alarm(30);
  int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) return errno == EINTR ? 4 : die("accept");
  alarm(0);

  char state[65536];
  struct iovec iov = {state, sizeof state - 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
  ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return die("recvmsg");
  state[n] = 0;
  int notifyFd = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&notifyFd, CMSG_DATA(c), sizeof notifyFd);
  }
  if (notifyFd < 0) {
    fprintf(stderr, "seccompagent: no fd in the message\n");
    return 1;
  }
  printf("%s\n", state);
  fflush(stdout);
  close(conn);
  close(listener);
  unlink(argv[1]);

  struct seccomp_notif_sizes sizes;
  if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) return die("SECCOMP_GET_NOTIF_SIZES");
  struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
  struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
  for (;;) {
    struct pollfd p = {.fd = notifyFd, .events = POLLIN};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return die("poll");
    }
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) break;
    memset(req, 0, sizes.seccomp_notif);
    if (ioctl(notifyFd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      if (errno == EBADF) break;
      return die("SECCOMP_IOCTL_NOTIF_RECV");
    }
    printf("notified %d pid %u\n", req->data.nr, req->pid);
    fflush(stdout);
    memset(resp, 0, sizes.seccomp_notif_resp);
    resp->id = req->id;
    resp->error = -answer;
    resp->val = 0;
    if (ioctl(notifyFd, SECCOMP_IOCTL_NOTIF_SEND, resp) < 0 && errno != ENOENT) return die("SECCOMP_IOCTL_NOTIF_SEND");
  }
  return 0;
}
