// config.json `linux.seccomp` -> the classic BPF program that native/seccomp.cc installs with
// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog). Pure policy: no system call is made here, so
// the program is unit-tested by running it in an interpreter (test/unit/seccomp.test.ts).
//
// The semantics are runc's (runc 1.1 over libseccomp 2.5), so that a profile written for
// Docker, Podman or Kubernetes means the same thing under husk:
//
// - The filter first checks seccomp_data.arch. The host's native architecture is always
//   allowed; `architectures` adds compat ones (x86 and x32 on x86_64, arm on aarch64). A system
//   call from any other architecture gets libseccomp's "bad arch" action, SCMP_ACT_KILL (kill
//   the thread), which runc does not change. x32 shares AUDIT_ARCH_X86_64 with x86_64: its
//   numbers carry __X32_SYSCALL_BIT, so that word splits into two sections at 0x40000000.
//   Architectures that this host's kernel can never report (mips on x86_64, ...) are accepted
//   and need no code.
// - Names are looked up per architecture in tables generated from the kernel headers
//   (src/linux/syscalls/, scripts/gen-syscalls.js). A name unknown on every architecture is
//   skipped with a warning, as runc does; a name missing on one architecture is skipped there.
// - A rule whose action (with its errno) is the default action is dropped (runc does). For one
//   system call, an unconditional rule overrides every conditional one (libseccomp); otherwise
//   rules are tried in config order and the first whose conditions all hold decides. Two rules
//   with the same conditions and different actions are an error, as libseccomp's EEXIST is in
//   runc. Within a rule conditions are ANDed, except that runc turns a rule comparing one
//   argument twice into one rule per condition (ORed): so does this compiler.
// - Arguments are compared as 64-bit values (two 32-bit words, high word first) on 64-bit
//   ABIs and on their low 32 bits on 32-bit ABIs (i386, x32, arm), as libseccomp does.
//   SCMP_CMP_MASKED_EQ matches when (arg & value) == valueTwo.
// - runc's -ENOSYS stub: unless the default action lets calls through (ALLOW, LOG, TRACE), a
//   call numbered above every system call the profile names, on an architecture listed in
//   `architectures`, fails with ENOSYS instead of the default action, so that programs can
//   fall back from system calls newer than the profile.
// - SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD; ERRNO and TRACE default to EPERM (1).
//
// The dispatch on the system call number is a balanced binary search over the intervals of
// numbers that share an outcome, so Docker's default profile needs a few hundred instructions
// for x86_64, x86 and x32 together, far below the kernel's limit of 4096.
//
// One file per concern: abi.ts (the kernel's numbers), arches.ts (architectures and their
// system call tables), rules.ts (validation and normalisation into rules), assembler.ts (BPF
// labels, jumps and encoding), compiler.ts (rules -> program per architecture).
export { AUDIT_ARCH, BPF_MAXINSNS, SECCOMP_DATA, SECCOMP_FILTER_FLAG, SECCOMP_RET, X32_SYSCALL_BIT } from './abi';
export { SUPPORTED_ARCHES } from './arches';
export { BPF as BPF_OPCODES } from './assembler';
export { compileSeccomp, type CompiledSeccomp, type CompileOptions } from './compiler';
