// Rules -> the classic BPF program for this host's architectures: the architecture check
// first, then per architecture a balanced binary search over the intervals of system call
// numbers that share an outcome, each leaf returning an action or testing a rule's
// conditions. The layout and encoding of the instructions are the assembler's.
import { HuskError } from '../../errors';
import type { Seccomp } from '../../spec/types';
import { AUDIT_ARCH, BPF_MAXINSNS, SECCOMP_DATA, SECCOMP_RET, X32_SYSCALL_BIT } from './abi';
import { ARCHES, hostArches, type ArchDef } from './arches';
import { Assembler, BPF, type Label } from './assembler';
import { seccompRules, type Condition, type Operator, type Rule } from './rules';

const ENOSYS = 38;

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
  const { defaultAction, listed, rules, flags, notify } = seccompRules(seccomp, { where, warn });

  // Architectures in the filter: the native one, then listed ones this kernel can report.
  const possible = hostArches(opts.arch ?? process.arch);
  const inFilter = new Set<string>([possible[0], ...possible.filter((name) => listed.has(name))]);

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
    const limit = `more than the kernel's limit of ${BPF_MAXINSNS}`;
    throw new HuskError(`${where}: linux.seccomp compiles to ${count} BPF instructions, ${limit}`);
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
