// Small helpers shared by the parent side (addon.cc) and the children (child.cc and the
// step files). Everything here is safe to call in a child after clone(): raw system calls,
// no allocation, no locks.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <sys/uio.h>
#include <unistd.h>

#include "sync.h"

namespace husk {

// A system call result: >= 0 on success, -errno on failure.
inline long check(long r) { return r < 0 ? -errno : r; }

// Owns an fd and closes it when it goes out of scope (crun's cleanup_close).
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;
  int get() const { return fd_; }
  int release() { int fd = fd_; fd_ = -1; return fd; }
  void reset(int fd = -1) { if (fd_ >= 0) ::close(fd_); fd_ = fd; }
  explicit operator bool() const { return fd_ >= 0; }
 private:
  int fd_;
};

// Messages on the sync socket (sync.h). Both return 0 or -errno.
long sendMessage(int sock, Msg type, int32_t step, int64_t value, int fd = -1);
// Sends len bytes with fd attached (SCM_RIGHTS) when fd >= 0; never raises SIGPIPE. 0 or -errno.
long sendWithFd(int sock, const void *data, size_t len, int fd);
// The most fds one message carries.
constexpr uint32_t kMaxFdsPerMessage = 64;
// Sends the iovecs as one message with nfds fds attached (at most kMaxFdsPerMessage); never
// raises SIGPIPE. 0 or -errno.
long sendWithFds(int sock, const iovec *iov, int iovcnt, const int *fds, uint32_t nfds);
// Every signal's handler back to SIG_DFL and none blocked: what a fresh process has, for a child
// that must not run its parent's handlers.
void resetSignals();
// Reads one message; *fd receives an attached fd or -1. Returns 1, 0 at end-of-file, or -errno.
long receiveMessage(int sock, SyncMessage *msg, int *fd);
// Receives one message into the iovecs, and its fds (SCM_RIGHTS, close-on-exec) into
// fds[0..maxFds) (*nfds of them; any beyond are closed). Returns the bytes received, 0 at
// end-of-file, or -errno; *truncated when the message or its fds did not fit.
long receiveWithFds(int sock, iovec *iov, int iovcnt, int *fds, uint32_t maxFds, uint32_t *nfds, bool *truncated);

// Writes the decimal digits of n into buf (no allocation); returns the end of the text.
char *appendNumber(char *buf, char *end, long long n);
// Copies a C string into [buf, end) and returns the end of the text (always NUL-terminated).
char *appendString(char *buf, char *end, const char *s);

}  // namespace husk
