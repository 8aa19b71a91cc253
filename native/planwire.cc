// The plan as one relocatable block (planwire.h). The layout:
//
//   WireHeader                      magic, version, step count, trace
//   WireStep[count]                 the numbers of each step, and for each pointer field the
//                                   offset of its data from the start of the block, or kNull
//   data                            strings (NUL-terminated), string lists (u32 count, then
//                                   u32 offsets of its strings), gid arrays (u32 each),
//                                   sock_filter arrays (8-byte aligned)
//
// Linked into the addon (which encodes) and the front door (which decodes), so it uses only
// malloc and libc: the door does not depend on libstdc++.
#include "planwire.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace husk {

namespace {

constexpr uint32_t kPlanMagic = 0x4e4c5048;  // "HPLN"
constexpr uint32_t kPlanVersion = 1;
constexpr uint32_t kNull = 0xffffffff;

struct WireHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t count;
  uint32_t trace;
};

struct WireStep {
  uint32_t op;
  int32_t create;
  int32_t okErrno;
  uint32_t inRoot;
  uint64_t flags;
  uint64_t a, b, c, d, e;
  // Offsets into the block, or kNull.
  uint32_t path, source, fstype, data;
  uint32_t argv, envp, candidates;
  uint32_t groups, filter;
  uint32_t ngroups;
  uint32_t filterLength;
  uint32_t reserved;
};

static_assert(sizeof(WireHeader) % 8 == 0, "steps start 8-byte aligned");
static_assert(sizeof(WireStep) % 8 == 0, "each step is 8-byte aligned");
static_assert(sizeof(sock_filter) == 8, "sock_filter is 8 bytes");
static_assert(sizeof(gid_t) == 4, "gid_t is 4 bytes");

// Appends data to the block. With out == nullptr it only counts (the first pass, for the size).
struct Writer {
  char *out;
  size_t at;

  void align(size_t to) {
    while (at % to) {
      if (out) out[at] = 0;
      at++;
    }
  }
  uint32_t put(const void *p, size_t len, size_t alignment) {
    align(alignment);
    uint32_t where = static_cast<uint32_t>(at);
    if (out && len) memcpy(out + at, p, len);
    at += len;
    return where;
  }
  uint32_t string(const char *s) {
    return s ? put(s, strlen(s) + 1, 1) : kNull;
  }
  uint32_t list(const char *const *l) {
    if (!l) return kNull;
    uint32_t n = 0;
    while (l[n]) n++;
    // The count and the offsets first (their slots), then the strings they point at.
    uint32_t where = put(&n, sizeof n, 4);
    size_t slots = at;
    at += n * sizeof(uint32_t);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t s = string(l[i]);
      if (out) memcpy(out + slots + i * sizeof(uint32_t), &s, sizeof s);
    }
    return where;
  }
};

// Writes the whole block (out may be nullptr: then only the size); returns its size.
size_t writePlan(const Plan &plan, char *out) {
  Writer w{out, 0};
  WireHeader h{kPlanMagic, kPlanVersion, static_cast<uint32_t>(plan.count), plan.trace ? 1u : 0u};
  w.put(&h, sizeof h, 8);
  size_t stepsAt = w.at;
  w.at += plan.count * sizeof(WireStep);
  for (size_t i = 0; i < plan.count; i++) {
    const Step &s = plan.steps[i];
    WireStep ws{};
    ws.op = static_cast<uint32_t>(s.op);
    ws.create = s.create;
    ws.okErrno = s.okErrno;
    ws.inRoot = s.inRoot ? 1 : 0;
    ws.flags = s.flags;
    ws.a = s.a;
    ws.b = s.b;
    ws.c = s.c;
    ws.d = s.d;
    ws.e = s.e;
    ws.path = w.string(s.path);
    ws.source = w.string(s.source);
    ws.fstype = w.string(s.fstype);
    ws.data = w.string(s.data);
    ws.argv = w.list(s.argv);
    ws.envp = w.list(s.envp);
    ws.candidates = w.list(s.candidates);
    ws.groups = s.groups ? w.put(s.groups, s.ngroups * sizeof(gid_t), 4) : kNull;
    ws.ngroups = s.groups ? static_cast<uint32_t>(s.ngroups) : 0;
    ws.filter = s.filter ? w.put(s.filter, s.filterLength * sizeof(sock_filter), 8) : kNull;
    ws.filterLength = s.filter ? s.filterLength : 0;
    if (out) memcpy(out + stepsAt + i * sizeof(WireStep), &ws, sizeof ws);
  }
  w.align(8);
  return w.at;
}

// The checks of decodePlan: each returns false for an offset that leaves the block.
struct Reader {
  const char *block;
  size_t size;

  bool string(uint32_t at, const char **s) const {
    if (at == kNull) { *s = nullptr; return true; }
    if (at >= size || !memchr(block + at, 0, size - at)) return false;
    *s = block + at;
    return true;
  }
  // The number of strings in the list at `at` (0 for kNull), checking only its header.
  bool listCount(uint32_t at, uint32_t *n) const {
    *n = 0;
    if (at == kNull) return true;
    if (at % 4 || size < sizeof(uint32_t) || at > size - sizeof(uint32_t)) return false;
    memcpy(n, block + at, sizeof *n);
    return *n <= (size - at - sizeof(uint32_t)) / sizeof(uint32_t);
  }
  // Fills slots[0..n] (n strings and the terminating nullptr).
  bool list(uint32_t at, char **slots) const {
    uint32_t n;
    listCount(at, &n);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t s;
      memcpy(&s, block + at + (i + 1) * sizeof(uint32_t), sizeof s);
      if (s == kNull || !string(s, const_cast<const char **>(&slots[i]))) return false;
    }
    slots[n] = nullptr;
    return true;
  }
  bool array(uint32_t at, uint32_t n, size_t each, size_t alignment, const void **p) const {
    if (at == kNull) { *p = nullptr; return n == 0; }
    if (at % alignment || at > size || n > (size - at) / each) return false;
    *p = block + at;
    return true;
  }
};

// Points *list at the next free slots, filled with the list at `at` (nullptr for kNull).
bool takeList(const Reader &r, uint32_t at, char ***slot, char ***list) {
  *list = nullptr;
  if (at == kNull) return true;
  uint32_t n;
  r.listCount(at, &n);
  if (!r.list(at, *slot)) return false;
  *list = *slot;
  *slot += n + 1;
  return true;
}

}  // namespace

char *encodePlan(const Plan &plan, size_t *size) {
  *size = writePlan(plan, nullptr);
  char *block = static_cast<char *>(malloc(*size));
  if (!block) {
    errno = ENOMEM;
    return nullptr;
  }
  writePlan(plan, block);
  return block;
}

long decodePlan(char *block, size_t size, Plan *plan, Step **steps) {
  *steps = nullptr;
  if (reinterpret_cast<uintptr_t>(block) % 8 || size < sizeof(WireHeader) || size > UINT32_MAX) return -EINVAL;
  WireHeader h;
  memcpy(&h, block, sizeof h);
  if (h.magic != kPlanMagic || h.version != kPlanVersion) return -EINVAL;
  if (h.count > (size - sizeof h) / sizeof(WireStep)) return -EINVAL;
  const WireStep *ws = reinterpret_cast<const WireStep *>(block + sizeof h);
  Reader r{block, size};

  // One allocation holds the steps and, after them, the pointer arrays of their string lists.
  size_t slots = 0;
  for (uint32_t i = 0; i < h.count; i++) {
    for (uint32_t at : {ws[i].argv, ws[i].envp, ws[i].candidates}) {
      uint32_t n;
      if (!r.listCount(at, &n)) return -EINVAL;
      if (at != kNull) slots += n + 1;
    }
  }
  size_t stepBytes = h.count * sizeof(Step);
  Step *out = static_cast<Step *>(malloc(stepBytes + slots * sizeof(char *) + 1));
  if (!out) return -ENOMEM;
  char **slot = reinterpret_cast<char **>(reinterpret_cast<char *>(out) + stepBytes);

  for (uint32_t i = 0; i < h.count; i++) {
    const WireStep &w = ws[i];
    Step &s = out[i];
    s = Step{};
    if (w.op > static_cast<uint32_t>(Op::Exec) || w.filterLength > 0xffff) goto corrupt;
    s.op = static_cast<Op>(w.op);
    s.create = w.create;
    s.okErrno = w.okErrno;
    s.inRoot = w.inRoot != 0;
    s.flags = static_cast<unsigned long>(w.flags);
    s.a = w.a;
    s.b = w.b;
    s.c = w.c;
    s.d = w.d;
    s.e = w.e;
    if (!r.string(w.path, &s.path) || !r.string(w.source, &s.source) || !r.string(w.fstype, &s.fstype) || !r.string(w.data, &s.data)) goto corrupt;
    char **argv, **envp, **candidates;
    if (!takeList(r, w.argv, &slot, &argv) || !takeList(r, w.envp, &slot, &envp) || !takeList(r, w.candidates, &slot, &candidates)) goto corrupt;
    s.argv = argv;
    s.envp = envp;
    s.candidates = candidates;
    const void *p;
    if (!r.array(w.groups, w.ngroups, sizeof(gid_t), 4, &p)) goto corrupt;
    s.groups = static_cast<const gid_t *>(p);
    s.ngroups = w.ngroups;
    if (!r.array(w.filter, w.filterLength, sizeof(sock_filter), 8, &p)) goto corrupt;
    s.filter = static_cast<const sock_filter *>(p);
    s.filterLength = static_cast<unsigned short>(w.filterLength);
  }
  plan->steps = out;
  plan->count = h.count;
  plan->trace = h.trace != 0;
  *steps = out;
  return 0;

corrupt:
  free(out);
  return -EINVAL;
}

}  // namespace husk
