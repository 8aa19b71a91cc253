// The Napi glue for the front door's wire (frontdoor.h) and the warm server's socket
// (src/server/): sending and receiving door messages with their fds, the listening socket and
// SO_PEERCRED, and the per-thread cwd and umask a server worker runs each call with.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include "frontdoor.h"
#include "host.h"
#include "util.h"

namespace husk {
namespace {

int fdArgument(const Napi::CallbackInfo &info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

// doorSend(fd, type, body, fds).
Napi::Value DoorSend(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock = fdArgument(info, 0);
  uint32_t type = info[1].As<Napi::Number>().Uint32Value();
  Napi::Buffer<uint8_t> body = info[2].As<Napi::Buffer<uint8_t>>();
  Napi::Array list = info[3].As<Napi::Array>();
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) fds.push_back(list.Get(i).As<Napi::Number>().Int32Value());
  long r = doorSend(sock, static_cast<DoorMsg>(type), body.Data(), static_cast<uint32_t>(body.Length()), fds.data(), static_cast<uint32_t>(fds.size()));
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "sendmsg");
  return env.Undefined();
}

// doorReceive(fd, timeoutMs?) -> { type, body, fds } or null at end-of-file.
Napi::Value DoorReceive(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock = fdArgument(info, 0);
  if (info.Length() > 1 && info[1].IsNumber()) {
    pollfd p{sock, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, info[1].As<Napi::Number>().Int32Value());
    } while (r < 0 && errno == EINTR);
    if (r < 0) throw errnoError(env, errno, "poll");
    if (r == 0) throw errnoError(env, ETIMEDOUT, "recvmsg");
  }
  // One buffer per thread (each server worker is one), as large as any message.
  static thread_local std::vector<char> body(kFrontDoorMaxMessage);
  DoorMsg type;
  uint32_t length = 0, nfds = 0;
  int fds[kFrontDoorMaxFds];
  long r = doorReceive(sock, &type, body.data(), static_cast<uint32_t>(body.size()), &length, fds, &nfds);
  if (r == -ECONNRESET) return env.Null();
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "recvmsg");
  if (r == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", Napi::Number::New(env, static_cast<uint32_t>(type)));
  out.Set("body", Napi::Buffer<char>::Copy(env, body.data(), length));
  Napi::Array list = Napi::Array::New(env, nfds);
  for (uint32_t i = 0; i < nfds; i++) list.Set(i, Napi::Number::New(env, fds[i]));
  out.Set("fds", list);
  return out;
}

// peerGone(fd): the other end closed (POLLHUP, or POLLRDHUP: it shut down its writing).
Napi::Value PeerGone(const Napi::CallbackInfo &info) {
  pollfd p{fdArgument(info, 0), POLLRDHUP, 0};
  int r = poll(&p, 1, 0);
  return Napi::Boolean::New(info.Env(), r > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)));
}

// serverListen(path) -> fd: a SOCK_SEQPACKET socket listening at path, mode 0600. A stale
// socket file there (a server that died) is replaced.
Napi::Value ServerListen(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw errnoError(env, ENAMETOOLONG, "bind", path);
  memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd sock(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) throw errnoError(env, errno, "socket");
  unlink(path.c_str());
  // Made 0600 from the start: no moment in which another user could connect.
  mode_t old = umask(0177);
  int r = bind(sock.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
  int err = errno;
  umask(old);
  if (r < 0) throw errnoError(env, err, "bind", path);
  if (listen(sock.get(), 128) < 0) throw errnoError(env, errno, "listen", path);
  return Napi::Number::New(env, sock.release());
}

// serverAccept(fd, timeoutMs?) -> { fd, uid, pid } (SO_PEERCRED), null once the socket is
// shut down, or undefined when timeoutMs passed without a connection.
Napi::Value ServerAccept(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int listener = fdArgument(info, 0);
  int timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
  for (;;) {
    if (timeout >= 0) {
      pollfd p{listener, POLLIN, 0};
      int r = poll(&p, 1, timeout);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return env.Undefined();
    }
    int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EINVAL || errno == EBADF) return env.Null();
      throw errnoError(env, errno, "accept4");
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
      close(fd);
      continue;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("fd", Napi::Number::New(env, fd));
    out.Set("uid", Napi::Number::New(env, cred.uid));
    out.Set("pid", Napi::Number::New(env, cred.pid));
    return out;
  }
}

// shutdownSocket(fd): wakes every thread blocked in accept() on it (with EINVAL).
Napi::Value ShutdownSocket(const Napi::CallbackInfo &info) {
  shutdown(fdArgument(info, 0), SHUT_RDWR);
  return info.Env().Undefined();
}

Napi::Value SetCloexec(const Napi::CallbackInfo &info) {
  if (fcntl(fdArgument(info, 0), F_SETFD, FD_CLOEXEC) < 0) throw errnoError(info.Env(), errno, "fcntl(F_SETFD)");
  return info.Env().Undefined();
}

// threadUnshareFs(): from now on this thread has its own cwd and umask (a server worker).
Napi::Value ThreadUnshareFs(const Napi::CallbackInfo &info) {
  if (unshare(CLONE_FS) < 0) throw errnoError(info.Env(), errno, "unshare(CLONE_FS)");
  return info.Env().Undefined();
}

Napi::Value ThreadChdir(const Napi::CallbackInfo &info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (chdir(path.c_str()) < 0) throw errnoError(info.Env(), errno, "chdir", path);
  return info.Env().Undefined();
}

// exitNow(code): _exit at once. process.exit() would first wait for every worker thread to
// stop, and a worker blocked in accept() or in a call never does.
Napi::Value ExitNow(const Napi::CallbackInfo &info) {
  _exit(info[0].As<Napi::Number>().Int32Value());
}

Napi::Value ThreadUmask(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), umask(static_cast<mode_t>(info[0].As<Napi::Number>().Uint32Value())));
}

}  // namespace

void registerServerFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("doorSend", Napi::Function::New(env, DoorSend));
  exports.Set("doorReceive", Napi::Function::New(env, DoorReceive));
  exports.Set("peerGone", Napi::Function::New(env, PeerGone));
  exports.Set("serverListen", Napi::Function::New(env, ServerListen));
  exports.Set("serverAccept", Napi::Function::New(env, ServerAccept));
  exports.Set("shutdownSocket", Napi::Function::New(env, ShutdownSocket));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec));
  exports.Set("threadUnshareFs", Napi::Function::New(env, ThreadUnshareFs));
  exports.Set("threadChdir", Napi::Function::New(env, ThreadChdir));
  exports.Set("threadUmask", Napi::Function::New(env, ThreadUmask));
  exports.Set("exitNow", Napi::Function::New(env, ExitNow));
}

}  // namespace husk
