// The bpf(2) calls the cgroup v2 device controller needs (src/cgroups/v2/devices.ts): load a
// BPF_PROG_TYPE_CGROUP_DEVICE program husk compiled, see what is attached to a cgroup,
// attach the new program and detach the old ones. A verifier rejection carries the
// verifier's log in the error message.
#include <napi.h>

#include <cstring>
#include <linux/bpf.h>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "host.h"
#include "util.h"

namespace husk {

namespace {

long bpf(int cmd, bpf_attr *attr) {
  return check(syscall(SYS_bpf, cmd, attr, sizeof *attr));
}

// bpfProgLoad(progType, insns, license) -> program fd.
Napi::Value ProgLoad(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t type = info[0].As<Napi::Number>().Uint32Value();
  Napi::Buffer<uint8_t> insns = info[1].As<Napi::Buffer<uint8_t>>();
  std::string license = info[2].As<Napi::String>().Utf8Value();
  std::vector<char> log(64 * 1024);
  bpf_attr attr{};
  attr.prog_type = type;
  attr.insns = reinterpret_cast<uint64_t>(insns.Data());
  attr.insn_cnt = static_cast<uint32_t>(insns.Length() / sizeof(bpf_insn));
  attr.license = reinterpret_cast<uint64_t>(license.c_str());
  attr.log_buf = reinterpret_cast<uint64_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  long fd = bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0) {
    Napi::Error e = errnoError(env, static_cast<int>(-fd), "bpf(BPF_PROG_LOAD)");
    log.back() = 0;
    if (log[0]) e.Set("verifierLog", Napi::String::New(env, log.data()));
    throw e;
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// bpfProgQuery(targetFd, attachType) -> ids of the programs attached there.
Napi::Value ProgQuery(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<uint32_t> ids(64);
  bpf_attr attr{};
  attr.query.target_fd = info[0].As<Napi::Number>().Uint32Value();
  attr.query.attach_type = info[1].As<Napi::Number>().Uint32Value();
  attr.query.prog_ids = reinterpret_cast<uint64_t>(ids.data());
  attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
  long r = bpf(BPF_PROG_QUERY, &attr);
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "bpf(BPF_PROG_QUERY)");
  Napi::Array out = Napi::Array::New(env, attr.query.prog_cnt);
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < ids.size(); i++) out.Set(i, Napi::Number::New(env, ids[i]));
  return out;
}

// bpfProgAttach(progFd, targetFd, attachType, flags).
Napi::Value ProgAttach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bpf_attr attr{};
  attr.attach_bpf_fd = info[0].As<Napi::Number>().Uint32Value();
  attr.target_fd = info[1].As<Napi::Number>().Uint32Value();
  attr.attach_type = info[2].As<Napi::Number>().Uint32Value();
  attr.attach_flags = info[3].As<Napi::Number>().Uint32Value();
  long r = bpf(BPF_PROG_ATTACH, &attr);
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "bpf(BPF_PROG_ATTACH)");
  return env.Undefined();
}

// bpfProgGetFdById(id) -> fd of an attached program (to detach it).
Napi::Value ProgGetFdById(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bpf_attr attr{};
  attr.prog_id = info[0].As<Napi::Number>().Uint32Value();
  long fd = bpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) throw errnoError(env, static_cast<int>(-fd), "bpf(BPF_PROG_GET_FD_BY_ID)");
  return Napi::Number::New(env, static_cast<double>(fd));
}

// bpfProgDetach(progFd, targetFd, attachType).
Napi::Value ProgDetach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bpf_attr attr{};
  attr.attach_bpf_fd = info[0].As<Napi::Number>().Uint32Value();
  attr.target_fd = info[1].As<Napi::Number>().Uint32Value();
  attr.attach_type = info[2].As<Napi::Number>().Uint32Value();
  long r = bpf(BPF_PROG_DETACH, &attr);
  if (r < 0) throw errnoError(env, static_cast<int>(-r), "bpf(BPF_PROG_DETACH)");
  return env.Undefined();
}

}  // namespace

void registerBpfFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("bpfProgLoad", Napi::Function::New(env, ProgLoad));
  exports.Set("bpfProgQuery", Napi::Function::New(env, ProgQuery));
  exports.Set("bpfProgAttach", Napi::Function::New(env, ProgAttach));
  exports.Set("bpfProgGetFdById", Napi::Function::New(env, ProgGetFdById));
  exports.Set("bpfProgDetach", Napi::Function::New(env, ProgDetach));
}

}  // namespace husk
