// Primitives for husk's own process (not the container's children) that Node lacks: device
// nodes, extended attributes, mounts and a layer's files made whole on a pool thread, used to
// unpack image layers and to mount an image's overlay rootfs on the host. Failures throw like the rest of the addon.
#include <napi.h>

#include <cstring>
#include <fcntl.h>
#include <linux/mount.h>
#include <string>
#include <sys/mount.h>
#include <utility>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

#include "host.h"
#include "util.h"

namespace husk {

namespace {

Napi::Value nullable(const Napi::Value &v, std::string *out, bool *isNull) {
  *isNull = v.IsNull() || v.IsUndefined();
  if (!*isNull) *out = v.As<Napi::String>().Utf8Value();
  return v;
}

// createFiles([{ path, content, mode, uid, gid, atime, mtime, xattrs }]) -> Promise<results>:
// regular files of an image layer, made whole one after another on a libuv pool thread: open
// (O_CREAT|O_EXCL|O_NOFOLLOW: never over anything, never through a final symlink), content,
// then owner (uid/gid -1: left as created), mode, xattrs and times through the fd, close.
// The unpack (src/image/unpack.ts) hands batches of them to the pool while it reads on: the
// kernel's work of creating files runs beside the reading, and a batch costs one hand-over
// between threads where a file each (or six calls of Node's fs each) would cost many.
// Each result: null, an Error (errno, code, syscall, path) for a file not made, or, for a file
// made whose xattr the filesystem refused, "NAME: why" (as tar, not a failure; the first).
class CreateFilesWorker : public Napi::AsyncWorker {
 public:
  CreateFilesWorker(Napi::Env env, const Napi::Array &list) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {
    files_.resize(list.Length());
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Object o = list.Get(i).As<Napi::Object>();
      File &f = files_[i];
      f.path = o.Get("path").As<Napi::String>().Utf8Value();
      Napi::Buffer<char> content = o.Get("content").As<Napi::Buffer<char>>();
      f.content = content.Data();
      f.length = content.Length();
      f.contentRef = Napi::Persistent(content);
      f.mode = o.Get("mode").As<Napi::Number>().Uint32Value() & 07777;
      f.uid = o.Get("uid").As<Napi::Number>().Int64Value();
      f.gid = o.Get("gid").As<Napi::Number>().Int64Value();
      f.times[0] = timespecOf(o.Get("atime").As<Napi::Number>().DoubleValue());
      f.times[1] = timespecOf(o.Get("mtime").As<Napi::Number>().DoubleValue());
      Napi::Value xattrs = o.Get("xattrs");
      if (!xattrs.IsArray()) continue;
      Napi::Array pairs = xattrs.As<Napi::Array>();
      for (uint32_t j = 0; j < pairs.Length(); j++) {
        Napi::Array pair = pairs.Get(j).As<Napi::Array>();
        Napi::Buffer<char> value = pair.Get(1u).As<Napi::Buffer<char>>();
        f.xattrs.push_back({pair.Get(0u).As<Napi::String>().Utf8Value(), std::string(value.Data(), value.Length())});
      }
    }
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    for (File &f : files_) create(f);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array results = Napi::Array::New(env, files_.size());
    for (uint32_t i = 0; i < files_.size(); i++) {
      const File &f = files_[i];
      if (f.err) results.Set(i, errnoError(env, f.err, f.step, f.path).Value());
      else if (!f.xattrError.empty()) results.Set(i, Napi::String::New(env, f.xattrError));
      else results.Set(i, env.Null());
    }
    deferred_.Resolve(results);
  }

 private:
  struct File {
    std::string path;
    const char *content = nullptr;
    size_t length = 0;
    Napi::Reference<Napi::Buffer<char>> contentRef;
    mode_t mode = 0;
    int64_t uid = -1;
    int64_t gid = -1;
    timespec times[2] = {};
    std::vector<std::pair<std::string, std::string>> xattrs;
    std::string xattrError;
    int err = 0;
    const char *step = "";
  };

  static timespec timespecOf(double seconds) {
    timespec t;
    t.tv_sec = static_cast<time_t>(seconds);
    t.tv_nsec = static_cast<long>((seconds - static_cast<double>(t.tv_sec)) * 1e9);
    if (t.tv_nsec < 0) t.tv_nsec = 0;
    return t;
  }

  static bool failed(File &f, const char *step) {
    f.err = errno;
    f.step = step;
    return false;
  }

  static bool create(File &f) {
    UniqueFd fd(open(f.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) return failed(f, "open");
    for (size_t off = 0; off < f.length;) {
      ssize_t n = write(fd.get(), f.content + off, f.length - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return failed(f, "write");
      off += static_cast<size_t>(n);
    }
    if ((f.uid >= 0 || f.gid >= 0) && fchown(fd.get(), static_cast<uid_t>(f.uid), static_cast<gid_t>(f.gid)) < 0) return failed(f, "fchown");
    if (fchmod(fd.get(), f.mode) < 0) return failed(f, "fchmod");
    for (const auto &[name, value] : f.xattrs) {
      if (fsetxattr(fd.get(), name.c_str(), value.data(), value.size(), 0) < 0 && f.xattrError.empty()) {
        f.xattrError = name + ": " + strerror(errno);
      }
    }
    if (futimens(fd.get(), f.times) < 0) return failed(f, "futimens");
    return true;
  }

  std::vector<File> files_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value CreateFiles(const Napi::CallbackInfo &info) {
  auto *worker = new CreateFilesWorker(info.Env(), info[0].As<Napi::Array>());
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

// mknod(path, mode, major, minor): mode has the file type bits (S_IFCHR, S_IFBLK, S_IFIFO).
Napi::Value Mknod(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = info[1].As<Napi::Number>().Uint32Value();
  unsigned major = info[2].As<Napi::Number>().Uint32Value();
  unsigned minor = info[3].As<Napi::Number>().Uint32Value();
  mode_t old = umask(0);
  int r = mknod(path.c_str(), mode, makedev(major, minor));
  int err = errno;
  umask(old);
  if (r < 0) throw errnoError(env, err, "mknod", path);
  return env.Undefined();
}

// lsetxattr(path, name, value): never follows a final symlink.
Napi::Value Lsetxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  Napi::Buffer<char> value = info[2].As<Napi::Buffer<char>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) < 0) throw errnoError(env, errno, "lsetxattr", path);
  return env.Undefined();
}

// llistxattr(path) -> names.
Napi::Value Llistxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  ssize_t size = llistxattr(path.c_str(), nullptr, 0);
  if (size < 0) throw errnoError(env, errno, "llistxattr", path);
  std::vector<char> buf(static_cast<size_t>(size) + 1);
  size = llistxattr(path.c_str(), buf.data(), buf.size());
  if (size < 0) throw errnoError(env, errno, "llistxattr", path);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (ssize_t i = 0; i < size;) {
    std::string name(buf.data() + i);
    out.Set(n++, Napi::String::New(env, name));
    i += static_cast<ssize_t>(name.size()) + 1;
  }
  return out;
}

// lgetxattr(path, name) -> Buffer, or null when the file has no such attribute.
Napi::Value Lgetxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  ssize_t size = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (size < 0 && errno == ENODATA) return env.Null();
  if (size < 0) throw errnoError(env, errno, "lgetxattr", path);
  std::vector<char> buf(static_cast<size_t>(size));
  size = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
  if (size < 0) throw errnoError(env, errno, "lgetxattr", path);
  return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(size));
}

// mount(source, target, fstype, flags, data) with nulls allowed, as mount(2).
Napi::Value Mount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  bool noSource, noFstype, noData, unused;
  nullable(info[0], &source, &noSource);
  nullable(info[1], &target, &unused);
  nullable(info[2], &fstype, &noFstype);
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  nullable(info[4], &data, &noData);
  if (mount(noSource ? nullptr : source.c_str(), target.c_str(), noFstype ? nullptr : fstype.c_str(), flags, noData ? nullptr : data.c_str()) < 0) {
    throw errnoError(env, errno, "mount", target);
  }
  return env.Undefined();
}

Napi::Value Umount2(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target = info[0].As<Napi::String>().Utf8Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
  if (umount2(target.c_str(), flags) < 0) throw errnoError(env, errno, "umount2", target);
  return env.Undefined();
}

long fsconfigString(int fd, const char *key, const char *value) {
  return check(syscall(SYS_fsconfig, fd, FSCONFIG_SET_STRING, key, value, 0));
}

// mountOverlay(target, { lowerdirs, upperdir?, workdir?, options? }) with the new mount API:
// one "lowerdir+" per layer (Linux 6.8+), so no page-size limit on the option string; on
// older kernels one "lowerdir" joined with ':'. options: "key" or "key=value" strings.
Napi::Value MountOverlay(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  Napi::Array lower = o.Get("lowerdirs").As<Napi::Array>();
  UniqueFd fs(static_cast<int>(syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs) throw errnoError(env, errno, "fsopen", "overlay");
  std::vector<std::string> dirs;
  for (uint32_t i = 0; i < lower.Length(); i++) dirs.push_back(lower.Get(i).As<Napi::String>().Utf8Value());
  bool plus = true;
  for (const auto &dir : dirs) {
    if (fsconfigString(fs.get(), "lowerdir+", dir.c_str()) < 0) {
      if (errno == EINVAL && &dir == &dirs.front()) { plus = false; break; }
      throw errnoError(env, errno, "fsconfig(lowerdir+)", dir);
    }
  }
  if (!plus) {
    std::string joined;
    for (const auto &dir : dirs) joined += (joined.empty() ? "" : ":") + dir;
    if (fsconfigString(fs.get(), "lowerdir", joined.c_str()) < 0) throw errnoError(env, errno, "fsconfig(lowerdir)", target);
  }
  for (const char *key : {"upperdir", "workdir"}) {
    Napi::Value v = o.Get(key);
    if (v.IsString() && fsconfigString(fs.get(), key, v.As<Napi::String>().Utf8Value().c_str()) < 0) {
      throw errnoError(env, errno, (std::string("fsconfig(") + key + ")").c_str(), v.As<Napi::String>().Utf8Value());
    }
  }
  Napi::Value opts = o.Get("options");
  if (opts.IsArray()) {
    Napi::Array a = opts.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      std::string opt = a.Get(i).As<Napi::String>().Utf8Value();
      size_t eq = opt.find('=');
      long r = eq == std::string::npos
        ? check(syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_FLAG, opt.c_str(), nullptr, 0))
        : fsconfigString(fs.get(), opt.substr(0, eq).c_str(), opt.substr(eq + 1).c_str());
      if (r < 0) throw errnoError(env, errno, "fsconfig", opt);
    }
  }
  if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) throw errnoError(env, errno, "fsconfig(FSCONFIG_CMD_CREATE)", target);
  UniqueFd mnt(static_cast<int>(syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, 0)));
  if (!mnt) throw errnoError(env, errno, "fsmount", target);
  if (syscall(SYS_move_mount, mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) throw errnoError(env, errno, "move_mount", target);
  return env.Undefined();
}

}  // namespace

void registerHostFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("createFiles", Napi::Function::New(env, CreateFiles));
  exports.Set("mknod", Napi::Function::New(env, Mknod));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr));
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount2", Napi::Function::New(env, Umount2));
  exports.Set("mountOverlay", Napi::Function::New(env, MountOverlay));
}

}  // namespace husk
