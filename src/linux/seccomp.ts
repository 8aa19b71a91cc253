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
import { HuskError } from '../errors';
import type { Seccomp } from '../spec/types';
import { AARCH64_SYSCALLS } from './syscalls/aarch64';
import { ARM_SYSCALLS } from './syscalls/arm';
import { I386_SYSCALLS } from './syscalls/i386';
import { X32_SYSCALLS } from './syscalls/x32';
import { X86_64_SYSCALLS } from './syscalls/x86_64';

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
const ENOSYS = 38;
const EPERM = 1;

export interface CompileOptions {
  /** The host: Node's process.arch name (x64, ia32, arm64, arm) or an SCMP_ARCH_* name. */
  arch?: string;
  /** Told about what is skipped (unknown system call names, flags that cannot apply). */
  warn?: (message: string) => void;
  /** Prefix of error messages (default "config.json"). */
  where?: string;
}

export interface CompiledSeccomp {
  /** Packed struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k; host byte order, little-endian). */
  filter: Buffer;
  /** seccomp(2) flags: SECCOMP_FILTER_FLAG_*. */
  flags: number;
  /** Some rule returns SCMP_ACT_NOTIFY: the filter is loaded with NEW_LISTENER and the
   * returned fd goes to linux.seccomp.listenerPath. */
  notify: boolean;
}

// ------------------------------------------------------------------------- architectures

interface ArchDef {
  /** The SCMP_ARCH_* name. */
  name: string;
  audit: number;
  table: Readonly<Record<string, number>>;
  /** Argument width libseccomp compares (ARCH_SIZE_32 for i386, x32 and arm). */
  bits: 32 | 64;
}

const ARCHES: Record<string, ArchDef> = {
  SCMP_ARCH_X86_64: { name: 'SCMP_ARCH_X86_64', audit: AUDIT_ARCH.X86_64, table: X86_64_SYSCALLS, bits: 64 },
  SCMP_ARCH_X32: { name: 'SCMP_ARCH_X32', audit: AUDIT_ARCH.X86_64, table: X32_SYSCALLS, bits: 32 },
  SCMP_ARCH_X86: { name: 'SCMP_ARCH_X86', audit: AUDIT_ARCH.I386, table: I386_SYSCALLS, bits: 32 },
  SCMP_ARCH_AARCH64: { name: 'SCMP_ARCH_AARCH64', audit: AUDIT_ARCH.AARCH64, table: AARCH64_SYSCALLS, bits: 64 },
  SCMP_ARCH_ARM: { name: 'SCMP_ARCH_ARM', audit: AUDIT_ARCH.ARM, table: ARM_SYSCALLS, bits: 32 },
};

/** The architectures husk has system call tables for (what `husk features` lists). */
export const SUPPORTED_ARCHES = Object.keys(ARCHES).sort();


/** For each host: its native architecture, then the compat ones its kernel can run. */
const HOSTS: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  ia32: ['SCMP_ARCH_X86'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  arm: ['SCMP_ARCH_ARM'],
};

/** Every architecture name runc accepts (libcontainer/seccomp/config.go). */
const KNOWN_ARCHES = new Set([
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_LOONGARCH64',
]);

function hostArches(arch: string): string[] {
  const key = HOSTS[arch] ? arch : Object.keys(HOSTS).find((k) => HOSTS[k][0] === arch);
  if (!key) throw new HuskError(`seccomp: unsupported host architecture ${JSON.stringify(arch)}`);
  return HOSTS[key];
}

// ------------------------------------------------------------------------------- rules

type Operator = 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';
const OPERATORS: readonly Operator[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];

interface Condition {
  index: number;
  op: Operator;
  value: bigint;
  valueTwo: bigint;
}

interface Rule {
  name: string;
  action: number;
  conditions: Condition[];
  /** Where in config.json it came from, for messages: linux.seccomp.syscalls[3]. */
  at: string;
}

const FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: SECCOMP_FILTER_FLAG.TSYNC,
  SECCOMP_FILTER_FLAG_LOG: SECCOMP_FILTER_FLAG.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: SECCOMP_FILTER_FLAG.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV,
};

/** The filter's return value for an SCMP_ACT_* name (runc's getAction). */
function actionValue(
  action: unknown,
  errnoRet: unknown,
  at: { action: string; errnoRet: string },
  fail: (at: string, why: string) => never,
): number {
  const data = (): number => {
    if (errnoRet === undefined || errnoRet === null) return EPERM;
    if (typeof errnoRet !== 'number' || !Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > 0xffff) {
      fail(at.errnoRet, `${JSON.stringify(errnoRet)} must be an integer from 0 to 65535`);
    }
    return errnoRet as number;
  };
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SECCOMP_RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SECCOMP_RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SECCOMP_RET.TRAP;
    case 'SCMP_ACT_ERRNO':
      return (SECCOMP_RET.ERRNO | data()) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (SECCOMP_RET.TRACE | data()) >>> 0;
    case 'SCMP_ACT_ALLOW':
      return SECCOMP_RET.ALLOW;
    case 'SCMP_ACT_LOG':
      return SECCOMP_RET.LOG;
    case 'SCMP_ACT_NOTIFY':
      return SECCOMP_RET.USER_NOTIF;
    default:
      return fail(at.action, `${JSON.stringify(action)} is not an action`);
  }
}

/** A comparison operand as an unsigned 64-bit integer. */
function u64(v: unknown, at: string, fail: (at: string, why: string) => never, warn: (m: string) => void): bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(at, `${JSON.stringify(v)} must be an integer`);
  // JSON.parse keeps 53 bits: 18446744073709551615 arrives as 2^64, and means all ones.
  if (v === 2 ** 64) return (1n << 64n) - 1n;
  if (!Number.isSafeInteger(v)) warn(`${at}: ${v} is beyond 2^53 and may have lost precision when config.json was parsed`);
  return BigInt.asUintN(64, BigInt(v));
}

function canonical(conditions: Condition[]): string {
  return conditions
    .map((c) => `${c.index}:${c.op}:${c.value}:${c.valueTwo}`)
    .sort()
    .join(',');
}

// --------------------------------------------------------------------------- assembler

const BPF = {
  LD_W_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS
  ALU_AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K
  JA: 0x05, // BPF_JMP | BPF_JA
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;
export { BPF as BPF_OPCODES };

class Label {
  at?: Insn;
}

interface Insn {
  code: number;
  k: number;
  jt?: Label;
  jf?: Label;
  /** The target of an unconditional jump (BPF_JA, k = offset). */
  to?: Label;
}

/**
 * Emits instructions whose jumps name labels, then lays them out. Conditional jumps reach at
 * most 255 instructions ahead; a farther target gets a trampoline (`ja`, 32-bit offset) right
 * after the jump, repeated until every jump fits.
 */
class Assembler {
  private insns: Insn[] = [];
  private pending: Label[] = [];

  label(): Label {
    return new Label();
  }

  /** Binds a label to the next instruction emitted. */
  place(label: Label): void {
    this.pending.push(label);
  }

  private emit(insn: Insn): void {
    for (const l of this.pending) l.at = insn;
    this.pending = [];
    this.insns.push(insn);
  }

  load(offset: number): void {
    this.emit({ code: BPF.LD_W_ABS, k: offset });
  }

  and(mask: number): void {
    this.emit({ code: BPF.ALU_AND_K, k: mask >>> 0 });
  }

  ret(value: number): void {
    this.emit({ code: BPF.RET_K, k: value >>> 0 });
  }

  /** if (A <op> k) goto jt else goto jf */
  jump(code: number, k: number, jt: Label, jf: Label): void {
    this.emit({ code, k: k >>> 0, jt, jf });
  }

  goto(to: Label): void {
    this.emit({ code: BPF.JA, k: 0, to });
  }

  assemble(): Buffer {
    if (this.pending.length > 0) throw new Error('seccomp: a label was placed after the last instruction');
    for (;;) {
      const index = new Map(this.insns.map((insn, i) => [insn, i]));
      const offset = (from: number, label: Label) => {
        if (!label.at) throw new Error('seccomp: jump to a label that was never placed');
        const off = index.get(label.at)! - from - 1;
        if (off < 0) throw new Error('seccomp: backward jump');
        return off;
      };
      let relaxed = false;
      for (let i = this.insns.length - 1; i >= 0; i--) {
        const insn = this.insns[i];
        if (!insn.jt || !insn.jf) continue;
        const far = [offset(i, insn.jt) > 255 ? 'jt' : '', offset(i, insn.jf) > 255 ? 'jf' : ''].filter(Boolean) as ('jt' | 'jf')[];
        if (far.length === 0) continue;
        const trampolines: Insn[] = far.map((which) => {
          const trampoline: Insn = { code: BPF.JA, k: 0, to: insn[which] };
          const label = new Label();
          label.at = trampoline;
          insn[which] = label;
          return trampoline;
        });
        this.insns.splice(i + 1, 0, ...trampolines);
        relaxed = true;
      }
      if (relaxed) continue;
      const out = Buffer.alloc(this.insns.length * 8);
      this.insns.forEach((insn, i) => {
        const k = insn.to ? offset(i, insn.to) : insn.k;
        out.writeUInt16LE(insn.code, i * 8);
        out.writeUInt8(insn.jt ? offset(i, insn.jt) : 0, i * 8 + 2);
        out.writeUInt8(insn.jf ? offset(i, insn.jf) : 0, i * 8 + 3);
        out.writeUInt32LE(k >>> 0, i * 8 + 4);
      });
      return out;
    }
  }
}

// ---------------------------------------------------------------------------- compiler

type Outcome = { ret: number } | { rules: Rule[] };

interface Interval {
  lo: number;
  hi: number;
  outcome: Outcome;
}

/** Compiles linux.seccomp into a filter for this host (or opts.arch). */
export function compileSeccomp(seccomp: Seccomp, opts: CompileOptions = {}): CompiledSeccomp {
  const where = opts.where ?? 'config.json';
  const warn = opts.warn ?? (() => {});
  const fail = (at: string, why: string): never => {
    throw new HuskError(`${where}: ${at} ${why}`);
  };
  const s = seccomp as unknown as Record<string, unknown>;

  // The default action.
  if (s.defaultAction === 'SCMP_ACT_NOTIFY') {
    fail('linux.seccomp.defaultAction', '"SCMP_ACT_NOTIFY" cannot be the default action');
  }
  const defaultAction = actionValue(
    s.defaultAction,
    s.defaultErrnoRet,
    { action: 'linux.seccomp.defaultAction', errnoRet: 'linux.seccomp.defaultErrnoRet' },
    fail,
  );

  // Architectures in the filter: the native one, then listed ones this kernel can report.
  const possible = hostArches(opts.arch ?? process.arch);
  const inFilter = new Set<string>([possible[0]]);
  const listed = new Set<string>();
  const architectures = s.architectures ?? [];
  if (!Array.isArray(architectures)) fail('linux.seccomp.architectures', 'must be an array');
  (architectures as unknown[]).forEach((name, i) => {
    if (typeof name !== 'string' || !KNOWN_ARCHES.has(name)) {
      fail(`linux.seccomp.architectures[${i}]`, `${JSON.stringify(name)} is not an architecture`);
    }
    listed.add(name as string);
    if (possible.includes(name as string)) inFilter.add(name as string);
  });

  // Rules, one per system call name (runc's specconv), in config order.
  const rules: Rule[] = [];
  let notify = false;
  const syscalls = s.syscalls ?? [];
  if (!Array.isArray(syscalls)) fail('linux.seccomp.syscalls', 'must be an array');
  (syscalls as unknown[]).forEach((entry, i) => {
    const at = `linux.seccomp.syscalls[${i}]`;
    if (typeof entry !== 'object' || entry === null) fail(at, 'must be an object');
    const e = entry as Record<string, unknown>;
    const action = actionValue(e.action, e.errnoRet, { action: `${at}.action`, errnoRet: `${at}.errnoRet` }, fail);
    if (!Array.isArray(e.names) || e.names.length === 0) fail(`${at}.names`, 'must be a non-empty array');
    const names = e.names as unknown[];
    names.forEach((n, j) => {
      if (typeof n !== 'string' || n === '') fail(`${at}.names[${j}]`, 'must be a non-empty string');
    });
    if (action === SECCOMP_RET.USER_NOTIF) {
      notify = true;
      // runc refuses it: the write that hands the listener fd to the runtime would wait for
      // a listener that can only get the fd through that very write.
      // The init talks to husk over its sync socket after the filter is in: a notified call
      // there would wait for a listener that only gets the fd through that very call.
      for (const own of ['write', 'sendmsg', 'recvmsg']) {
        if (names.includes(own)) fail(at, `SCMP_ACT_NOTIFY cannot be used for the ${own} system call`);
      }
    }
    const args = e.args ?? [];
    if (!Array.isArray(args)) fail(`${at}.args`, 'must be an array');
    const conditions = (args as unknown[]).map((a, j): Condition => {
      const aat = `${at}.args[${j}]`;
      if (typeof a !== 'object' || a === null) fail(aat, 'must be an object');
      const arg = a as Record<string, unknown>;
      if (typeof arg.index !== 'number' || !Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
        fail(`${aat}.index`, `${JSON.stringify(arg.index)} must be an argument index from 0 to 5`);
      }
      if (!OPERATORS.includes(arg.op as Operator)) fail(`${aat}.op`, `${JSON.stringify(arg.op)} is not an operator`);
      return {
        index: arg.index as number,
        op: arg.op as Operator,
        value: u64(arg.value, `${aat}.value`, fail, warn),
        valueTwo: arg.valueTwo === undefined ? 0n : u64(arg.valueTwo, `${aat}.valueTwo`, fail, warn),
      };
    });
    // runc: "if two or more arguments have the same condition, revert to old behavior, adding
    // each condition as a separate rule".
    const indexes = conditions.map((c) => c.index);
    const split = new Set(indexes).size !== indexes.length;
    for (const name of names as string[]) {
      if (split) for (const c of conditions) rules.push({ name, action, conditions: [c], at });
      else rules.push({ name, action, conditions, at });
    }
  });
  if (notify && !s.listenerPath) {
    fail('linux.seccomp.listenerPath', 'must be set when a rule uses SCMP_ACT_NOTIFY');
  }

  // Flags.
  let flags = 0;
  const flagNames = s.flags ?? [];
  if (!Array.isArray(flagNames)) fail('linux.seccomp.flags', 'must be an array');
  (flagNames as unknown[]).forEach((f, i) => {
    const bit = typeof f === 'string' ? FLAGS[f] : undefined;
    if (bit === undefined) fail(`linux.seccomp.flags[${i}]`, `${JSON.stringify(f)} is not a seccomp filter flag`);
    if (bit === SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV && !notify) {
      warn(`${where}: linux.seccomp.flags[${i}] SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule uses SCMP_ACT_NOTIFY`);
      return;
    }
    flags |= bit!;
  });
  if (notify) {
    flags |= SECCOMP_FILTER_FLAG.NEW_LISTENER;
    // The kernel refuses TSYNC with NEW_LISTENER unless a failed sync reports ESRCH.
    if (flags & SECCOMP_FILTER_FLAG.TSYNC) flags |= SECCOMP_FILTER_FLAG.TSYNC_ESRCH;
  }

  // Names no architecture knows are skipped (runc logs them at debug level).
  const unknown = new Set<string>();
  for (const rule of rules) {
    if (unknown.has(rule.name)) continue;
    if (!Object.values(ARCHES).some((a) => Object.hasOwn(a.table, rule.name))) {
      unknown.add(rule.name);
      warn(`${where}: ${rule.at}: unknown system call ${JSON.stringify(rule.name)} ignored`);
    }
  }

  // Same conditions, different actions: libseccomp's EEXIST, an error in runc. Rules runc
  // never adds (the default action, unknown names) cannot clash.
  const seen = new Map<string, Rule>();
  for (const rule of rules) {
    if (rule.conditions.length === 0 || rule.action === defaultAction || unknown.has(rule.name)) continue;
    const key = `${rule.name}|${canonical(rule.conditions)}`;
    const first = seen.get(key);
    if (first && first.action !== rule.action) {
      fail(rule.at, `repeats the conditions of ${first.at} for ${JSON.stringify(rule.name)} with another action`);
    }
    if (!first) seen.set(key, rule);
  }

  // -ENOSYS above the profile's highest system call (runc's patchbpf stub).
  const permissive =
    defaultAction === SECCOMP_RET.ALLOW ||
    defaultAction === SECCOMP_RET.LOG ||
    ((defaultAction & 0xffff0000) >>> 0) === SECCOMP_RET.TRACE;
  const enosys = (SECCOMP_RET.ERRNO | ENOSYS) >>> 0;
  const stub = !permissive && defaultAction !== enosys;

  const asm = new Assembler();
  const byWord = new Map<number, ArchDef[]>();
  for (const name of possible) {
    if (!inFilter.has(name)) continue;
    const arch = ARCHES[name];
    byWord.set(arch.audit, [...(byWord.get(arch.audit) ?? []), arch]);
  }

  // The architecture check comes first.
  asm.load(SECCOMP_DATA.arch);
  const wordLabels = [...byWord.keys()].map((word) => ({ word, label: asm.label() }));
  for (const { word, label } of wordLabels) {
    const next = asm.label();
    asm.jump(BPF.JEQ_K, word, label, next);
    asm.place(next);
  }
  asm.ret(SECCOMP_RET.KILL_THREAD);

  for (const { word, label } of wordLabels) {
    asm.place(label);
    asm.load(SECCOMP_DATA.nr);
    const arches = byWord.get(word)!;
    if (word === AUDIT_ARCH.X86_64) {
      // x86_64 and x32 share the word; x32 numbers are those with __X32_SYSCALL_BIT and above.
      const x64 = arches.find((a) => a.name === 'SCMP_ARCH_X86_64');
      const x32 = arches.find((a) => a.name === 'SCMP_ARCH_X32');
      // A missing one gets the bad-arch action; the default action stays the last instruction.
      const upper = asm.label();
      const lower = asm.label();
      asm.jump(BPF.JGE_K, X32_SYSCALL_BIT, upper, lower);
      if (!x32) {
        asm.place(upper);
        asm.ret(SECCOMP_RET.KILL_THREAD);
      }
      asm.place(lower);
      if (x64) emitArch(asm, x64, 0, X32_SYSCALL_BIT - 1);
      else asm.ret(SECCOMP_RET.KILL_THREAD);
      if (x32) {
        asm.place(upper);
        emitArch(asm, x32, X32_SYSCALL_BIT, 0xffffffff);
      }
    } else {
      emitArch(asm, arches[0], 0, 0xffffffff);
    }
  }

  function emitArch(a: Assembler, arch: ArchDef, domainLo: number, domainHi: number): void {
    const perNumber = new Map<number, Rule[]>();
    let highest: number | undefined;
    for (const rule of rules) {
      const nr = Object.hasOwn(arch.table, rule.name) ? arch.table[rule.name] : undefined;
      if (nr === undefined || nr < domainLo || nr > domainHi) continue;
      if (highest === undefined || nr > highest) highest = nr;
      if (rule.action === defaultAction) continue;
      perNumber.set(nr, [...(perNumber.get(nr) ?? []), rule]);
    }
    const outcomeOf = (list: Rule[]): Outcome => {
      const unconditional = list.find((r) => r.conditions.length === 0);
      return unconditional ? { ret: unconditional.action } : { rules: list };
    };
    const beyond: Outcome = { ret: stub && listed.has(arch.name) && highest !== undefined ? enosys : defaultAction };
    const numbers = [...perNumber.keys()].sort((x, y) => x - y);
    const intervals: Interval[] = [];
    const push = (lo: number, hi: number, outcome: Outcome) => {
      const last = intervals[intervals.length - 1];
      if (last && 'ret' in last.outcome && 'ret' in outcome && last.outcome.ret === outcome.ret) last.hi = hi;
      else intervals.push({ lo, hi, outcome });
    };
    let cursor = domainLo;
    for (const nr of numbers) {
      if (nr > cursor) push(cursor, nr - 1, { ret: defaultAction });
      push(nr, nr, outcomeOf(perNumber.get(nr)!));
      cursor = nr + 1;
    }
    const top = highest === undefined ? domainLo - 1 : highest;
    if (top >= cursor) push(cursor, top, { ret: defaultAction });
    if (top < domainHi) push(Math.max(cursor, top + 1), domainHi, beyond);
    emitTree(a, intervals, 0, intervals.length, arch.bits);
  }

  function emitTree(a: Assembler, intervals: Interval[], from: number, to: number, bits: 32 | 64): void {
    if (to - from === 1) {
      emitOutcome(a, intervals[from].outcome, bits);
      return;
    }
    const mid = (from + to) >> 1;
    const right = a.label();
    const left = a.label();
    a.jump(BPF.JGE_K, intervals[mid].lo, right, left);
    a.place(left);
    emitTree(a, intervals, from, mid, bits);
    a.place(right);
    emitTree(a, intervals, mid, to, bits);
  }

  function emitOutcome(a: Assembler, outcome: Outcome, bits: 32 | 64): void {
    if ('ret' in outcome) {
      a.ret(outcome.ret);
      return;
    }
    for (const rule of outcome.rules) {
      const next = a.label();
      for (const c of rule.conditions) emitCondition(a, c, bits, next);
      a.ret(rule.action);
      a.place(next);
    }
    a.ret(defaultAction);
  }

  const filter = asm.assemble();
  const count = filter.length / 8;
  if (count > BPF_MAXINSNS) {
    throw new HuskError(`${where}: linux.seccomp compiles to ${count} BPF instructions, more than the kernel's limit of ${BPF_MAXINSNS}`);
  }
  return { filter, flags, notify };
}

/**
 * Code that falls through when the condition holds and jumps to `fail` when it does not. The
 * accumulator is clobbered (the number is not needed after the dispatch).
 */
function emitCondition(a: Assembler, c: Condition, bits: 32 | 64, fail: Label): void {
  const lowOffset = SECCOMP_DATA.args + 8 * c.index; // little-endian: low word first
  const highOffset = lowOffset + 4;
  const low = (v: bigint) => Number(v & 0xffffffffn);
  const high = (v: bigint) => Number(v >> 32n);
  const pass = a.label();

  if (c.op === 'SCMP_CMP_MASKED_EQ') {
    if (bits === 64) {
      const next = a.label();
      a.load(highOffset);
      a.and(high(c.value));
      a.jump(BPF.JEQ_K, high(c.valueTwo), next, fail);
      a.place(next);
    }
    a.load(lowOffset);
    a.and(low(c.value));
    a.jump(BPF.JEQ_K, low(c.valueTwo), pass, fail);
    a.place(pass);
    return;
  }

  // The low word decides when the high words are equal (or ignored on 32-bit ABIs).
  const lowTest: Record<Exclude<Operator, 'SCMP_CMP_MASKED_EQ'>, [number, boolean]> = {
    // [jump, does "jump true" mean the condition holds?]
    SCMP_CMP_EQ: [BPF.JEQ_K, true],
    SCMP_CMP_NE: [BPF.JEQ_K, false],
    SCMP_CMP_GT: [BPF.JGT_K, true],
    SCMP_CMP_GE: [BPF.JGE_K, true],
    SCMP_CMP_LT: [BPF.JGE_K, false],
    SCMP_CMP_LE: [BPF.JGT_K, false],
  };
  const [lowJump, holds] = lowTest[c.op];

  if (bits === 64) {
    const value = high(c.value);
    const lowWord = a.label();
    a.load(highOffset);
    switch (c.op) {
      case 'SCMP_CMP_EQ':
        a.jump(BPF.JEQ_K, value, lowWord, fail);
        break;
      case 'SCMP_CMP_NE':
        a.jump(BPF.JEQ_K, value, lowWord, pass);
        break;
      case 'SCMP_CMP_GT':
      case 'SCMP_CMP_GE': {
        const equal = a.label();
        a.jump(BPF.JGT_K, value, pass, equal);
        a.place(equal);
        a.jump(BPF.JEQ_K, value, lowWord, fail);
        break;
      }
      case 'SCMP_CMP_LT':
      case 'SCMP_CMP_LE': {
        const equal = a.label();
        a.jump(BPF.JGT_K, value, fail, equal);
        a.place(equal);
        a.jump(BPF.JEQ_K, value, lowWord, pass);
        break;
      }
    }
    a.place(lowWord);
  }
  a.load(lowOffset);
  if (holds) a.jump(lowJump, low(c.value), pass, fail);
  else a.jump(lowJump, low(c.value), fail, pass);
  a.place(pass);
}
