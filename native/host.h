// The addon's functions for husk's own process (host.cc), and the error they all throw.
#pragma once

#include <napi.h>

#include <string>

namespace husk {

// An Error with errno (negative, as Node's), code ("EPERM"), syscall and path.
Napi::Error errnoError(Napi::Env env, int err, const char *syscall, const std::string &path = "");

void registerHostFunctions(Napi::Env env, Napi::Object exports);
void registerBpfFunctions(Napi::Env env, Napi::Object exports);
void registerServerFunctions(Napi::Env env, Napi::Object exports);

}  // namespace husk
