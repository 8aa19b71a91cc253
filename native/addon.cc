// The Napi glue: argument checks, turning the JavaScript plan into plan.h structs, and the
// few primitives Node lacks (clone, SCM_RIGHTS, waitpid of any child, flock, mkfifo).
// Failures throw an Error with errno (negative, as Node's), code ("EPERM"), syscall and path.
#include <napi.h>

#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <memory>
#include <string>
#include <linux/mount.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

#include "child.h"
#include "host.h"
#include "plan.h"
#include "planwire.h"
#include "util.h"

namespace husk {

Napi::Error errnoError(Napi::Env env, int err, const char *syscall, const std::string &path) {
  const char *name = strerrorname_np(err);
  std::string message = std::string(syscall) + (path.empty() ? "" : " \"" + path + "\"") + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

namespace {

// Owns everything the plan's pointers point at, until the children have their copy.
struct PlanStorage {
  std::vector<Step> steps;
  std::deque<std::string> strings;
  std::deque<std::vector<char *>> lists;
  std::deque<std::vector<gid_t>> groups;
  std::deque<std::vector<sock_filter>> filters;
  Plan plan;

  const char *string(const Napi::Value &v) {
    if (v.IsUndefined() || v.IsNull()) return nullptr;
    strings.push_back(v.As<Napi::String>().Utf8Value());
    return strings.back().c_str();
  }
  char *const *list(const Napi::Value &v) {
    if (v.IsUndefined() || v.IsNull()) return nullptr;
    Napi::Array a = v.As<Napi::Array>();
    std::vector<char *> out;
    for (uint32_t i = 0; i < a.Length(); i++) out.push_back(const_cast<char *>(string(a.Get(i))));
    out.push_back(nullptr);
    lists.push_back(std::move(out));
    return lists.back().data();
  }
};

const struct { const char *name; Op op; } kOps[] = {
  {"cloneInit", Op::CloneInit}, {"notify", Op::Notify}, {"setsid", Op::Setsid}, {"prctl", Op::Prctl}, {"joinSessionKeyring", Op::JoinSessionKeyring},
  {"setns", Op::Setns}, {"unshare", Op::Unshare}, {"linkUp", Op::LinkUp}, {"openRoot", Op::OpenRoot}, {"mkdir", Op::Mkdir}, {"mount", Op::Mount},
  {"moveMount", Op::MoveMount}, {"mountSetattr", Op::MountSetattr}, {"copyUpMount", Op::CopyUpMount}, {"remountReadonly", Op::RemountReadonly}, {"maskPath", Op::MaskPath}, {"mknod", Op::Mknod},
  {"symlink", Op::Symlink}, {"pivotRoot", Op::PivotRoot}, {"moveRoot", Op::MoveRoot}, {"chroot", Op::Chroot}, {"chdir", Op::Chdir},
  {"writeFile", Op::WriteFile}, {"sethostname", Op::Sethostname}, {"setdomainname", Op::Setdomainname},
  {"setrlimit", Op::Setrlimit}, {"umask", Op::Umask}, {"personality", Op::Personality}, {"setgroups", Op::Setgroups},
  {"setresgid", Op::Setresgid}, {"setresuid", Op::Setresuid}, {"dropBounding", Op::DropBounding},
  {"capset", Op::Capset}, {"console", Op::Console}, {"dup2", Op::Dup2}, {"closeFds", Op::CloseFds},
  {"openExecFifo", Op::OpenExecFifo}, {"openExec", Op::OpenExec}, {"findExecutable", Op::FindExecutable},
  {"seccomp", Op::Seccomp}, {"waitExecFifo", Op::WaitExecFifo}, {"exec", Op::Exec},
};

uint64_t number(const Napi::Value &v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  return 0;
}

std::unique_ptr<PlanStorage> readPlan(Napi::Env env, Napi::Object js) {
  auto storage = std::make_unique<PlanStorage>();
  Napi::Array steps = js.Get("steps").As<Napi::Array>();
  for (uint32_t i = 0; i < steps.Length(); i++) {
    Napi::Object o = steps.Get(i).As<Napi::Object>();
    std::string name = o.Get("op").As<Napi::String>().Utf8Value();
    Step s{};
    bool known = false;
    for (const auto &k : kOps) {
      if (name == k.name) { s.op = k.op; known = true; }
    }
    if (!known) throw Napi::TypeError::New(env, "plan step " + std::to_string(i) + ": unknown op " + name);
    s.path = storage->string(o.Get("path"));
    s.source = storage->string(o.Get("source"));
    s.fstype = storage->string(o.Get("fstype"));
    s.data = storage->string(o.Get("data"));
    s.flags = number(o.Get("flags"));
    s.a = number(o.Get("a"));
    s.b = number(o.Get("b"));
    s.c = number(o.Get("c"));
    s.d = number(o.Get("d"));
    s.e = number(o.Get("e"));
    s.inRoot = number(o.Get("inRoot")) != 0;
    s.create = static_cast<int>(number(o.Get("create")));
    s.okErrno = static_cast<int>(number(o.Get("okErrno")));
    s.argv = storage->list(o.Get("argv"));
    s.envp = storage->list(o.Get("envp"));
    s.candidates = storage->list(o.Get("candidates"));
    Napi::Value groups = o.Get("groups");
    if (groups.IsArray()) {
      Napi::Array a = groups.As<Napi::Array>();
      std::vector<gid_t> g;
      for (uint32_t j = 0; j < a.Length(); j++) g.push_back(static_cast<gid_t>(number(a.Get(j))));
      storage->groups.push_back(std::move(g));
      s.groups = storage->groups.back().data();
      s.ngroups = storage->groups.back().size();
    }
    Napi::Value filter = o.Get("filter");
    if (filter.IsBuffer()) {
      Napi::Buffer<uint8_t> b = filter.As<Napi::Buffer<uint8_t>>();
      std::vector<sock_filter> f(b.Length() / sizeof(sock_filter));
      memcpy(f.data(), b.Data(), f.size() * sizeof(sock_filter));
      storage->filters.push_back(std::move(f));
      s.filter = storage->filters.back().data();
      s.filterLength = static_cast<unsigned short>(storage->filters.back().size());
    }
    storage->steps.push_back(s);
  }
  storage->plan.steps = storage->steps.data();
  storage->plan.count = storage->steps.size();
  storage->plan.trace = js.Get("trace").ToBoolean().Value();
  return storage;
}

// spawn(plan) -> { pid, fd }: clones stage 1, which runs the plan (child.cc). fd is our end
// of the sync socket (sync.h). All signals are blocked across clone() so that none of
// Node's handlers can run in the child before it has reset them.
Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "spawn(plan): plan must be an object");
  std::unique_ptr<PlanStorage> storage = readPlan(env, info[0].As<Napi::Object>());
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) throw errnoError(env, errno, "socketpair");
  long pid = cloneStage1(&storage->plan, sv[1], &sv[0], 1);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    throw errnoError(env, static_cast<int>(-pid), "clone");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, static_cast<double>(pid)));
  out.Set("fd", Napi::Number::New(env, sv[0]));
  return out;
}

// encodePlan(plan) -> Buffer: the plan as one block of bytes (planwire.h), which the front
// door decodes and clones from.
Napi::Value EncodePlan(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "encodePlan(plan): plan must be an object");
  std::unique_ptr<PlanStorage> storage = readPlan(env, info[0].As<Napi::Object>());
  size_t size = 0;
  char *block = encodePlan(storage->plan, &size);
  if (!block) throw errnoError(env, ENOMEM, "encodePlan");
  Napi::Buffer<char> out = Napi::Buffer<char>::Copy(env, block, size);
  free(block);
  return out;
}

// receive(fd) -> { type, step, value, fd } or null at end-of-file. Blocks.
Napi::Value Receive(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock = info[0].As<Napi::Number>().Int32Value();
  SyncMessage msg;
  int fd;
  long r = receiveMessage(sock, &msg, &fd);
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "recvmsg");
  if (r == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", Napi::Number::New(env, msg.type));
  out.Set("step", Napi::Number::New(env, msg.step));
  out.Set("value", Napi::Number::New(env, static_cast<double>(msg.value)));
  out.Set("fd", Napi::Number::New(env, fd));
  return out;
}

Napi::Value Send(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int sock = info[0].As<Napi::Number>().Int32Value();
  uint32_t type = info[1].As<Napi::Number>().Uint32Value();
  long r = sendMessage(sock, static_cast<Msg>(type), -1, 0);
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "sendmsg");
  return env.Undefined();
}

Napi::Object exitStatus(Napi::Env env, int pid, int status) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, pid));
  if (WIFEXITED(status)) {
    out.Set("code", Napi::Number::New(env, WEXITSTATUS(status)));
    out.Set("signal", env.Null());
  } else {
    out.Set("code", env.Null());
    out.Set("signal", Napi::Number::New(env, WTERMSIG(status)));
  }
  return out;
}

// waitpid(pid, nohang) -> { pid, code, signal }, or null when nohang and it still runs.
Napi::Value Waitpid(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int pid = info[0].As<Napi::Number>().Int32Value();
  bool nohang = info.Length() > 1 && info[1].ToBoolean().Value();
  int status = 0;
  long r;
  do {
    r = waitpid(pid, &status, nohang ? WNOHANG : 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) throw errnoError(env, errno, "waitpid");
  if (r == 0) return env.Null();
  return exitStatus(env, static_cast<int>(r), status);
}

class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, int pid) : Napi::AsyncWorker(env), pid_(pid), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    long r;
    do {
      r = waitpid(pid_, &status_, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) err_ = errno;
    else result_ = static_cast<int>(r);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (err_) deferred_.Reject(errnoError(env, err_, "waitpid").Value());
    else deferred_.Resolve(exitStatus(env, result_, status_));
  }
 private:
  int pid_;
  int status_ = 0;
  int result_ = 0;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

// waitpidAsync(pid) -> Promise<{ pid, code, signal }>, waiting on a libuv pool thread.
Napi::Value WaitpidAsync(const Napi::CallbackInfo &info) {
  int pid = info[0].As<Napi::Number>().Int32Value();
  auto *worker = new WaitWorker(info.Env(), pid);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

// flock(fd, "ex" | "sh" | "un", nonblock) -> true, or false when nonblock and it is held.
Napi::Value Flock(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string op = info[1].As<Napi::String>().Utf8Value();
  int how = op == "ex" ? LOCK_EX : op == "sh" ? LOCK_SH : LOCK_UN;
  if (info.Length() > 2 && info[2].ToBoolean().Value()) how |= LOCK_NB;
  long r;
  do {
    r = flock(fd, how);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno == EWOULDBLOCK && (how & LOCK_NB)) return Napi::Boolean::New(env, false);
  if (r < 0) throw errnoError(env, errno, "flock");
  return Napi::Boolean::New(env, true);
}

Napi::Value Mkfifo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = static_cast<mode_t>(info[1].As<Napi::Number>().Uint32Value());
  mode_t old = umask(0);
  int r = mkfifo(path.c_str(), mode);
  int err = errno;
  umask(old);
  if (r < 0) throw errnoError(env, err, "mkfifo", path);
  return env.Undefined();
}

// Orphaned descendants (the init once stage 1 exits, hook processes) become our children,
// so that we can wait for them.
Napi::Value SetSubreaper(const Napi::CallbackInfo &info) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) throw errnoError(info.Env(), errno, "prctl");
  return info.Env().Undefined();
}

// sendFd(socketPath, fd, name): connects to a unix socket (--console-socket) and sends fd.
Napi::Value SendFd(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  std::string name = info.Length() > 2 ? info[2].As<Napi::String>().Utf8Value() : "";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw errnoError(env, ENAMETOOLONG, "connect", path);
  memcpy(addr.sun_path, path.c_str(), path.size());
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) throw errnoError(env, errno, "socket");
  if (connect(sock.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) throw errnoError(env, errno, "connect", path);
  if (name.empty()) name = "/dev/ptmx";
  long r = sendWithFd(sock.get(), name.data(), name.size(), fd);
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "sendmsg", path);
  return env.Undefined();
}

// pipe() -> [readFd, writeFd], both close-on-exec.
Napi::Value Pipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) throw errnoError(env, errno, "pipe2");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

// openTree(path, recursive, usernsFd) -> fd of a detached copy of the mount tree at path
// (open_tree OPEN_TREE_CLONE), idmapped through the user namespace usernsFd when >= 0.
Napi::Value OpenTree(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool recursive = info[1].ToBoolean().Value();
  int userns = info[2].As<Napi::Number>().Int32Value();
  UniqueFd tree(static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0))));
  if (!tree) throw errnoError(env, errno, "open_tree", path);
  if (userns >= 0) {
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(userns);
    if (syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0) {
      throw errnoError(env, errno, "mount_setattr(MOUNT_ATTR_IDMAP)", path);
    }
  }
  return Napi::Number::New(env, tree.release());
}

// setWindowSize(fd, rows, cols): TIOCSWINSZ on a pty master.
Napi::Value SetWindowSize(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  winsize size{};
  size.ws_row = static_cast<unsigned short>(info[1].As<Napi::Number>().Uint32Value());
  size.ws_col = static_cast<unsigned short>(info[2].As<Napi::Number>().Uint32Value());
  if (ioctl(fd, TIOCSWINSZ, &size) < 0) throw errnoError(env, errno, "ioctl(TIOCSWINSZ)");
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn));
  exports.Set("receive", Napi::Function::New(env, Receive));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("waitpid", Napi::Function::New(env, Waitpid));
  exports.Set("waitpidAsync", Napi::Function::New(env, WaitpidAsync));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("mkfifo", Napi::Function::New(env, Mkfifo));
  exports.Set("setSubreaper", Napi::Function::New(env, SetSubreaper));
  exports.Set("sendFd", Napi::Function::New(env, SendFd));
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  exports.Set("openTree", Napi::Function::New(env, OpenTree));
  registerHostFunctions(env, exports);
  registerBpfFunctions(env, exports);
  registerServerFunctions(env, exports);
  exports.Set("encodePlan", Napi::Function::New(env, EncodePlan));
  exports.Set("setWindowSize", Napi::Function::New(env, SetWindowSize));
  return exports;
}

}  // namespace
}  // namespace husk

static Napi::Object InitHusk(Napi::Env env, Napi::Object exports) { return husk::Init(env, exports); }

NODE_API_MODULE(husk, InitHusk)
