// The kernel's seccomp ABI as the filter sees it: return values, seccomp(2) flags, the
// architectures' audit numbers and the layout of struct seccomp_data (linux/seccomp.h,
// linux/audit.h). Numbers only; shared by the rules and the compiler.

/** Filter return values (linux/seccomp.h); the low 16 bits are SECCOMP_RET_DATA. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** seccomp(2) SECCOMP_SET_MODE_FILTER flags (linux/seccomp.h). */
export const SECCOMP_FILTER_FLAG = {
  TSYNC: 1,
  LOG: 2,
  SPEC_ALLOW: 4,
  NEW_LISTENER: 8,
  TSYNC_ESRCH: 16,
  WAIT_KILLABLE_RECV: 32,
} as const;

/** seccomp_data.arch values (linux/audit.h). */
export const AUDIT_ARCH = {
  X86_64: 0xc000003e,
  I386: 0x40000003,
  AARCH64: 0xc00000b7,
  ARM: 0x40000028,
} as const;

export const X32_SYSCALL_BIT = 0x40000000;
/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;
/** struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]. */
export const SECCOMP_DATA = { nr: 0, arch: 4, args: 16 } as const;
