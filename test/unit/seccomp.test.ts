// The seccomp compiler (src/linux/seccomp.ts): the program's shape, then what it returns for
// synthetic system calls, run by a small classic-BPF interpreter of the opcodes the kernel
// accepts in a seccomp filter, then Docker's and Podman's default profiles.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { HuskError } from '../../src/errors';
import {
  AUDIT_ARCH,
  BPF_MAXINSNS,
  BPF_OPCODES as BPF,
  SECCOMP_FILTER_FLAG as FLAG,
  SECCOMP_RET as RET,
  X32_SYSCALL_BIT,
  compileSeccomp,
  type CompileOptions,
} from '../../src/linux/seccomp';
import type { Seccomp } from '../../src/spec/types';
import { AARCH64_SYSCALLS } from '../../src/linux/syscalls/aarch64';
import { ARM_SYSCALLS } from '../../src/linux/syscalls/arm';
import { I386_SYSCALLS } from '../../src/linux/syscalls/i386';
import { X32_SYSCALLS } from '../../src/linux/syscalls/x32';
import { X86_64_SYSCALLS } from '../../src/linux/syscalls/x86_64';
import { dockerProfile, ociSeccomp, podmanProfile } from '../seccomp-profiles';

// ------------------------------------------------------------------------- the interpreter

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

function decode(filter: Buffer): Insn[] {
  expect(filter.length % 8).toBe(0);
  const out: Insn[] = [];
  for (let i = 0; i < filter.length; i += 8) {
    out.push({ code: filter.readUInt16LE(i), jt: filter[i + 2], jf: filter[i + 3], k: filter.readUInt32LE(i + 4) });
  }
  return out;
}

interface SeccompData {
  nr: number;
  arch?: number;
  args?: (bigint | number)[];
}

/** Runs the filter on one struct seccomp_data (little-endian, as on x86_64 and aarch64). */
function run(filter: Buffer, data: SeccompData): number {
  const mem = Buffer.alloc(64);
  mem.writeUInt32LE(data.nr >>> 0, 0);
  mem.writeUInt32LE((data.arch ?? AUDIT_ARCH.X86_64) >>> 0, 4);
  mem.writeBigUInt64LE(0x401000n, 8);
  (data.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  const prog = decode(filter);
  let A = 0;
  let pc = 0;
  for (;;) {
    if (pc >= prog.length) throw new Error(`ran off the end of the program at ${pc}`);
    const { code, jt, jf, k } = prog[pc];
    switch (code) {
      case BPF.LD_W_ABS:
        if (k % 4 !== 0 || k > 60) throw new Error(`bad load offset ${k} at ${pc}`);
        A = mem.readUInt32LE(k);
        pc += 1;
        break;
      case BPF.ALU_AND_K:
        A = (A & k) >>> 0;
        pc += 1;
        break;
      case BPF.JA:
        pc += 1 + k;
        break;
      case BPF.JEQ_K:
        pc += 1 + (A === k ? jt : jf);
        break;
      case BPF.JGT_K:
        pc += 1 + (A > k ? jt : jf);
        break;
      case BPF.JGE_K:
        pc += 1 + (A >= k ? jt : jf);
        break;
      case BPF.JSET_K:
        pc += 1 + ((A & k) !== 0 ? jt : jf);
        break;
      case BPF.RET_K:
        return k;
      default:
        throw new Error(`opcode 0x${code.toString(16)} at ${pc} is not one seccomp accepts`);
    }
  }
}

/** What the kernel's checks (bpf_check_classic, seccomp_check_filter) require. */
function checkStructure(filter: Buffer): Insn[] {
  const prog = decode(filter);
  expect(prog.length).toBeGreaterThan(0);
  expect(prog.length).toBeLessThanOrEqual(BPF_MAXINSNS);
  prog.forEach((insn, pc) => {
    const allowed: number[] = Object.values(BPF);
    expect(allowed, `opcode at ${pc}`).toContain(insn.code);
    if (insn.code === BPF.LD_W_ABS) {
      expect(insn.k % 4, `load at ${pc}`).toBe(0);
      expect(insn.k, `load at ${pc}`).toBeLessThan(64);
    } else if (insn.code === BPF.JA) {
      expect(pc + 1 + insn.k, `ja at ${pc}`).toBeLessThan(prog.length);
    } else if ([BPF.JEQ_K, BPF.JGT_K, BPF.JGE_K, BPF.JSET_K].includes(insn.code as 0x15)) {
      expect(pc + 1 + insn.jt, `jt at ${pc}`).toBeLessThan(prog.length);
      expect(pc + 1 + insn.jf, `jf at ${pc}`).toBeLessThan(prog.length);
    }
  });
  expect(prog[prog.length - 1].code).toBe(BPF.RET_K);
  return prog;
}

// ---------------------------------------------------------------------------- helpers

const X64 = X86_64_SYSCALLS;
const errno = (n: number) => (RET.ERRNO | n) >>> 0;
const EPERM = errno(1);
const ENOSYS = errno(38);

// `seccomp` is a linux.seccomp as it may stand in a config.json, valid or not: the compiler
// validates it (and the tests below give it wrong actions, operators and names on purpose).
function compile(seccomp: Record<string, unknown>, opts: CompileOptions = {}) {
  const warnings: string[] = [];
  const out = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', ...seccomp } as Seccomp, {
    arch: 'x64',
    warn: (m) => warnings.push(m),
    ...opts,
  });
  checkStructure(out.filter);
  return { ...out, warnings, call: (nr: number, args: (bigint | number)[] = [], arch?: number) => run(out.filter, { nr, args, arch }) };
}

function compileError(seccomp: Record<string, unknown>): string {
  try {
    compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', ...seccomp } as unknown as Seccomp, { arch: 'x64' });
  } catch (err) {
    expect(err).toBeInstanceOf(HuskError);
    return (err as Error).message;
  }
  throw new Error('compiled without an error');
}

// ---------------------------------------------------------------------------- structure

describe('the program', () => {
  it('checks the architecture first and kills a call from an architecture not in the filter', () => {
    const f = compile({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    const prog = decode(f.filter);
    expect(prog[0]).toEqual({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: 4 });
    expect(prog[1]).toMatchObject({ code: BPF.JEQ_K, k: AUDIT_ARCH.X86_64 });
    expect(prog[2]).toEqual({ code: BPF.RET_K, jt: 0, jf: 0, k: RET.KILL_THREAD });
    expect(f.call(X64.mkdir, [], AUDIT_ARCH.I386)).toBe(RET.KILL_THREAD);
    expect(f.call(X64.mkdir, [], AUDIT_ARCH.AARCH64)).toBe(RET.KILL_THREAD);
    expect(f.call(X64.mkdir)).toBe(EPERM);
  });

  it('ends with the default action and loads only seccomp_data words', () => {
    const f = compile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 5, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
    const prog = decode(f.filter);
    expect(prog[prog.length - 1]).toEqual({ code: BPF.RET_K, jt: 0, jf: 0, k: errno(5) });
    expect(f.call(X64.read)).toBe(RET.ALLOW);
    expect(f.call(X64.write)).toBe(errno(5));
  });

  it('is small: a profile with no rules is the arch check, the x32 split and two returns', () => {
    const f = compile({ defaultAction: 'SCMP_ACT_ALLOW' });
    expect(decode(f.filter).length).toBeLessThanOrEqual(7);
    expect(f.call(X64.read)).toBe(RET.ALLOW);
  });

  it('lays out far jumps through trampolines and still decides every call right', () => {
    // 300 system calls with a condition each: the binary search's first jump spans far more
    // than 255 instructions.
    const names = Object.keys(X64).filter((n) => X64[n] < 335).slice(0, 300);
    const f = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: names.map((n) => ({ names: [n], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: X64[n], op: 'SCMP_CMP_EQ' }] })),
    });
    const prog = decode(f.filter);
    expect(prog.length).toBeGreaterThan(1000);
    expect(prog.some((i) => i.code === BPF.JA)).toBe(true);
    for (const n of names) {
      expect(f.call(X64[n], [0, X64[n]]), n).toBe(RET.ALLOW);
      expect(f.call(X64[n], [0, X64[n] + 1]), n).toBe(EPERM);
    }
  });

  it('refuses a profile that does not fit in 4096 instructions', () => {
    const syscalls = Array.from({ length: 1000 }, (_, i) => ({
      names: ['ioctl'],
      action: 'SCMP_ACT_ERRNO',
      args: [{ index: 1, value: i, op: 'SCMP_CMP_EQ' }],
    }));
    expect(compileError({ syscalls })).toMatch(/^config\.json: linux\.seccomp compiles to \d+ BPF instructions, more than the kernel's limit of 4096$/);
  });
});

// ---------------------------------------------------------------------------- actions

describe('actions', () => {
  const withAction = (action: string, extra: Record<string, unknown> = {}) =>
    compile({ syscalls: [{ names: ['mkdir'], action, ...extra }] }).call(X64.mkdir);

  it('maps every action to its SECCOMP_RET value', () => {
    expect(withAction('SCMP_ACT_KILL')).toBe(RET.KILL_THREAD);
    expect(withAction('SCMP_ACT_KILL_THREAD')).toBe(RET.KILL_THREAD);
    expect(withAction('SCMP_ACT_KILL_PROCESS')).toBe(RET.KILL_PROCESS);
    expect(withAction('SCMP_ACT_TRAP')).toBe(RET.TRAP);
    expect(withAction('SCMP_ACT_LOG')).toBe(RET.LOG);
    expect(compile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ALLOW' }] }).call(X64.mkdir)).toBe(RET.ALLOW);
  });

  it('returns errnoRet, EPERM without it, and the same for TRACE', () => {
    expect(withAction('SCMP_ACT_ERRNO', { errnoRet: 38 })).toBe(ENOSYS);
    expect(withAction('SCMP_ACT_ERRNO')).toBe(EPERM);
    expect(withAction('SCMP_ACT_ERRNO', { errnoRet: 0 })).toBe(errno(0));
    expect(withAction('SCMP_ACT_TRACE', { errnoRet: 7 })).toBe((RET.TRACE | 7) >>> 0);
    expect(withAction('SCMP_ACT_TRACE')).toBe((RET.TRACE | 1) >>> 0);
  });

  it('uses defaultErrnoRet for the default action', () => {
    const f = compile({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 13, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
    expect(f.call(X64.mkdir)).toBe(errno(13));
    expect(f.call(X64.read)).toBe(RET.ALLOW);
    expect(compile({ defaultAction: 'SCMP_ACT_ERRNO' }).call(X64.mkdir)).toBe(EPERM);
  });

  it('drops a rule whose action is the default one, as runc does', () => {
    // The unconditional ERRNO(EPERM) rule equals the default, so it cannot override the
    // conditional ALLOW (libseccomp would let an unconditional rule win otherwise).
    const f = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['personality'], action: 'SCMP_ACT_ERRNO' },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
      ],
    });
    expect(f.call(X64.personality, [8])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [9])).toBe(EPERM);
  });

  it('notify: marks the result, adds NEW_LISTENER, and returns USER_NOTIF for the rule', () => {
    const f = compile({ listenerPath: '/run/agent.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
    expect(f.notify).toBe(true);
    expect(f.flags).toBe(FLAG.NEW_LISTENER);
    expect(f.call(X64.mkdir)).toBe(RET.USER_NOTIF);
    expect(f.call(X64.read)).toBe(RET.ALLOW);
    const plain = compile({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    expect(plain.notify).toBe(false);
    expect(plain.flags).toBe(0);
  });

  it('refuses what runc refuses for notify', () => {
    expect(compileError({ defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/x' })).toBe(
      'config.json: linux.seccomp.defaultAction "SCMP_ACT_NOTIFY" cannot be the default action',
    );
    expect(compileError({ listenerPath: '/x', syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_NOTIFY' }] })).toBe(
      'config.json: linux.seccomp.syscalls[0] SCMP_ACT_NOTIFY cannot be used for the write system call',
    );
    expect(compileError({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] })).toBe(
      'config.json: linux.seccomp.listenerPath must be set when a rule uses SCMP_ACT_NOTIFY',
    );
  });

  it('names what is wrong, and where', () => {
    expect(compileError({ syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, {}, {}, { names: ['mkdir'], action: 'SCMP_ACT_FOO' }] }))
      .toBe('config.json: linux.seccomp.syscalls[1].action undefined is not an action');
    expect(compileError({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_FOO' }] })).toBe(
      'config.json: linux.seccomp.syscalls[0].action "SCMP_ACT_FOO" is not an action',
    );
    expect(compileError({ defaultAction: 'SCMP_ACT_NOPE' })).toBe('config.json: linux.seccomp.defaultAction "SCMP_ACT_NOPE" is not an action');
    expect(compileError({ architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_VAX'] })).toBe(
      'config.json: linux.seccomp.architectures[1] "SCMP_ARCH_VAX" is not an architecture',
    );
    expect(compileError({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XX' }] }] })).toBe(
      'config.json: linux.seccomp.syscalls[0].args[0].op "SCMP_CMP_XX" is not an operator',
    );
    expect(compileError({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] })).toBe(
      'config.json: linux.seccomp.syscalls[0].args[0].index 6 must be an argument index from 0 to 5',
    );
    expect(compileError({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 70000 }] })).toBe(
      'config.json: linux.seccomp.syscalls[0].errnoRet 70000 must be an integer from 0 to 65535',
    );
    expect(compileError({ flags: ['SECCOMP_FILTER_FLAG_NOPE'] })).toBe(
      'config.json: linux.seccomp.flags[0] "SECCOMP_FILTER_FLAG_NOPE" is not a seccomp filter flag',
    );
    expect(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }, { arch: 'riscv64' })).toThrow(
      'seccomp: unsupported host architecture "riscv64"',
    );
  });
});

// ---------------------------------------------------------------------------- flags

describe('flags', () => {
  it('maps the spec flags to seccomp(2) flag bits', () => {
    expect(compile({ flags: ['SECCOMP_FILTER_FLAG_TSYNC'] }).flags).toBe(FLAG.TSYNC);
    expect(compile({ flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }).flags).toBe(FLAG.LOG | FLAG.SPEC_ALLOW);
    expect(FLAG).toMatchObject({ TSYNC: 1, LOG: 2, SPEC_ALLOW: 4, NEW_LISTENER: 8, TSYNC_ESRCH: 16, WAIT_KILLABLE_RECV: 32 });
  });

  it('adds TSYNC_ESRCH to TSYNC with a listener, which the kernel requires', () => {
    const f = compile({ flags: ['SECCOMP_FILTER_FLAG_TSYNC'], listenerPath: '/x', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
    expect(f.flags).toBe(FLAG.TSYNC | FLAG.NEW_LISTENER | FLAG.TSYNC_ESRCH);
  });

  it('keeps WAIT_KILLABLE_RECV with a listener and drops it, with a warning, without one', () => {
    const notify = compile({ flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'], listenerPath: '/x', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] });
    expect(notify.flags).toBe(FLAG.WAIT_KILLABLE_RECV | FLAG.NEW_LISTENER);
    const plain = compile({ flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] });
    expect(plain.flags).toBe(0);
    expect(plain.warnings).toEqual([
      'config.json: linux.seccomp.flags[0] SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule uses SCMP_ACT_NOTIFY',
    ]);
  });
});

// ---------------------------------------------------------------------------- arguments

describe('argument conditions', () => {
  type Op = 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT';
  const holds: Record<Op, (a: bigint, v: bigint) => boolean> = {
    SCMP_CMP_NE: (a, v) => a !== v,
    SCMP_CMP_LT: (a, v) => a < v,
    SCMP_CMP_LE: (a, v) => a <= v,
    SCMP_CMP_EQ: (a, v) => a === v,
    SCMP_CMP_GE: (a, v) => a >= v,
    SCMP_CMP_GT: (a, v) => a > v,
  };
  // Halves that differ, so a compiler comparing only one word, or the words in the wrong
  // order, or signed, gets some of these wrong.
  const value = 0x00000005_80000000n;
  const probes = [
    value,
    value - 1n,
    value + 1n,
    0x00000005_00000000n,
    0x00000005_ffffffffn,
    0x00000004_80000000n,
    0x00000004_ffffffffn,
    0x00000006_00000000n,
    0x00000006_7fffffffn,
    0x80000005_80000000n,
    0n,
    0x00000000_80000000n,
    0xffffffff_ffffffffn,
  ];

  for (const op of Object.keys(holds) as Op[]) {
    it(`${op} compares all 64 bits, unsigned`, () => {
      const f = compile({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 99, args: [{ index: 2, value: Number(value), op }] }] });
      for (const a of probes) {
        const expected = holds[op](a, value) ? errno(99) : RET.ALLOW;
        expect(f.call(X64.mkdir, [0, 0, a]), `${op} 0x${a.toString(16)}`).toBe(expected);
      }
    });
  }

  it('SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo on both words', () => {
    const mask = 0x0000ff00_000000ffn;
    const want = 0x00001200_00000034n;
    const f = compile({
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: Number(mask), valueTwo: Number(want), op: 'SCMP_CMP_MASKED_EQ' }] }],
    });
    for (const a of [want, want | 0xffff00ff_ffffff00n, 0x00001200_00000035n, 0x00001300_00000034n, 0n, 0x34n, 0x00001200_00000000n]) {
      const expected = (a & mask) === want ? EPERM : RET.ALLOW;
      expect(f.call(X64.mkdir, [a]), `0x${a.toString(16)}`).toBe(expected);
    }
  });

  it('reads the right argument', () => {
    const f = compile({ syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 5, value: 7, op: 'SCMP_CMP_EQ' }] }] });
    expect(f.call(X64.mkdir, [7, 7, 7, 7, 7, 0])).toBe(RET.ALLOW);
    expect(f.call(X64.mkdir, [0, 0, 0, 0, 0, 7])).toBe(EPERM);
  });

  it('ANDs the conditions of one rule', () => {
    const f = compile({
      syscalls: [
        { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [{ index: 0, value: 16, op: 'SCMP_CMP_EQ' }, { index: 2, value: 9, op: 'SCMP_CMP_EQ' }] },
      ],
    });
    expect(f.call(X64.socket, [16, 3, 9])).toBe(errno(22));
    expect(f.call(X64.socket, [16, 3, 0])).toBe(RET.ALLOW);
    expect(f.call(X64.socket, [2, 3, 9])).toBe(RET.ALLOW);
  });

  it('ORs rules for the same system call, the first matching one deciding', () => {
    const f = compile({
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 4294967295, op: 'SCMP_CMP_EQ' }] },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index: 0, value: 100, op: 'SCMP_CMP_GT' }] },
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 8, args: [{ index: 0, value: 50, op: 'SCMP_CMP_GT' }] },
      ],
    });
    expect(f.call(X64.personality, [0])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [8])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [0xffffffff])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [1])).toBe(EPERM);
    expect(f.call(X64.personality, [200])).toBe(errno(7));
    expect(f.call(X64.personality, [60])).toBe(errno(8));
  });

  it('lets an unconditional rule override the conditional ones, as libseccomp does in runc', () => {
    for (const order of [0, 1]) {
      const rules = [
        { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 512, op: 'SCMP_CMP_EQ' }] },
        { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 7 },
      ];
      const f = compile({ syscalls: order ? rules.reverse() : rules });
      expect(f.call(X64.unshare, [512])).toBe(errno(7));
      expect(f.call(X64.unshare, [0])).toBe(errno(7));
    }
    // Of two unconditional rules, the first one.
    const two = compile({ syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }, { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 22 }] });
    expect(two.call(X64.unshare)).toBe(errno(13));
  });

  it('turns a rule comparing one argument twice into one rule per comparison, as runc does', () => {
    const f = compile({
      syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 512, op: 'SCMP_CMP_GE' }, { index: 0, value: 1024, op: 'SCMP_CMP_LE' }] }],
    });
    expect(f.call(X64.unshare, [0])).toBe(EPERM);
    expect(f.call(X64.unshare, [0x20000])).toBe(EPERM);
    expect(f.call(X64.unshare, [700])).toBe(EPERM);
  });

  it('refuses two rules with the same conditions and different actions, as runc does', () => {
    const cond = [{ index: 0, value: 512, op: 'SCMP_CMP_EQ' }];
    expect(
      compileError({
        syscalls: [
          { names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: cond },
          { names: ['mkdir', 'unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: cond },
        ],
      }),
    ).toBe('config.json: linux.seccomp.syscalls[1] repeats the conditions of linux.seccomp.syscalls[0] for "unshare" with another action');
    // The same action twice is fine, and so is a clash with a rule that runc drops (the
    // default action).
    compile({ syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', args: cond }, { names: ['unshare'], action: 'SCMP_ACT_ERRNO', args: cond }] });
    const dropped = compile({ syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ALLOW', args: cond }, { names: ['unshare'], action: 'SCMP_ACT_ERRNO', args: cond }] });
    expect(dropped.call(X64.unshare, [512])).toBe(EPERM);
  });

  it('takes 18446744073709551615 (2^64 after JSON.parse) as all ones', () => {
    const f = compile({
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: JSON.parse('18446744073709551615'), op: 'SCMP_CMP_EQ' }] }],
    });
    expect(f.call(X64.mkdir, [0xffffffff_ffffffffn])).toBe(EPERM);
    expect(f.call(X64.mkdir, [0xffffffffn])).toBe(RET.ALLOW);
  });
});

// ---------------------------------------------------------------------------- names

describe('system call names', () => {
  it('skips names no architecture knows, with a warning, and keeps the rest of the rule', () => {
    const f = compile({ syscalls: [{ names: ['no_such_syscall', 'mkdir'], action: 'SCMP_ACT_ERRNO' }] });
    expect(f.warnings).toEqual(['config.json: linux.seccomp.syscalls[0]: unknown system call "no_such_syscall" ignored']);
    expect(f.call(X64.mkdir)).toBe(EPERM);
  });

  it('skips, silently, names that exist only on other architectures', () => {
    const f = compile({ architectures: ['SCMP_ARCH_X86'], syscalls: [{ names: ['_llseek', 'chown32'], action: 'SCMP_ACT_ERRNO' }] });
    expect(f.warnings).toEqual([]);
    expect(f.call(I386_SYSCALLS._llseek, [], AUDIT_ARCH.I386)).toBe(EPERM);
    expect(f.call(X64.mkdir)).toBe(RET.ALLOW);
  });

  it('looks names up in the generated tables', () => {
    expect(X64).toMatchObject({ read: 0, write: 1, openat: 257, execve: 59, clone: 56, clone3: 435, kexec_load: 246 });
    expect(I386_SYSCALLS).toMatchObject({ read: 3, socketcall: 102, socket: 359 });
    expect(X32_SYSCALLS).toMatchObject({ read: X32_SYSCALL_BIT + 0, execve: X32_SYSCALL_BIT + 520 });
    expect(AARCH64_SYSCALLS).toMatchObject({ read: 63, openat: 56, clone: 220 });
    expect(AARCH64_SYSCALLS).not.toHaveProperty('open');
    expect(ARM_SYSCALLS).toMatchObject({ read: 3, set_tls: 0xf0005 });
  });
});

// ---------------------------------------------------------------------------- architectures

describe('architectures', () => {
  const rules = { syscalls: [{ names: ['mkdir', 'read'], action: 'SCMP_ACT_ERRNO', errnoRet: 5 }] };

  it('filters x86 calls with the x86 numbers when SCMP_ARCH_X86 is listed', () => {
    const f = compile({ ...rules, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'] });
    expect(f.call(I386_SYSCALLS.mkdir, [], AUDIT_ARCH.I386)).toBe(errno(5));
    expect(f.call(I386_SYSCALLS.read, [], AUDIT_ARCH.I386)).toBe(errno(5));
    // 83, x86_64's mkdir, is symlink on x86: allowed.
    expect(f.call(X64.mkdir, [], AUDIT_ARCH.I386)).toBe(RET.ALLOW);
    expect(f.call(X64.mkdir)).toBe(errno(5));
  });

  it('tells x32 from x86_64 by __X32_SYSCALL_BIT and kills x32 calls unless SCMP_ARCH_X32 is listed', () => {
    const without = compile({ ...rules, architectures: ['SCMP_ARCH_X86_64'] });
    expect(without.call(X32_SYSCALLS.read)).toBe(RET.KILL_THREAD);
    expect(without.call(X32_SYSCALLS.getpid)).toBe(RET.KILL_THREAD);
    expect(without.call(X64.read)).toBe(errno(5));
    const withX32 = compile({ ...rules, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'] });
    expect(withX32.call(X32_SYSCALLS.read)).toBe(errno(5));
    expect(withX32.call(X32_SYSCALLS.mkdir)).toBe(errno(5));
    expect(withX32.call(X32_SYSCALLS.getpid)).toBe(RET.ALLOW);
    expect(withX32.call(X64.read)).toBe(errno(5));
    expect(withX32.call(X64.getpid)).toBe(RET.ALLOW);
  });

  it('ignores architectures this host never reports, and keeps the native one when none is listed', () => {
    const f = compile({ ...rules, architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_PPC64LE'] });
    expect(f.call(X64.mkdir)).toBe(errno(5));
    expect(f.call(AARCH64_SYSCALLS.mkdirat, [], AUDIT_ARCH.AARCH64)).toBe(RET.KILL_THREAD);
    expect(decode(f.filter).filter((i) => i.code === BPF.JEQ_K && i.k === AUDIT_ARCH.AARCH64)).toEqual([]);
  });

  it('compiles for an aarch64 host, with arm as its compat architecture', () => {
    const f = compile(
      { syscalls: [{ names: ['mkdirat', 'read'], action: 'SCMP_ACT_ERRNO', errnoRet: 5 }], architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] },
      { arch: 'arm64' },
    );
    expect(f.call(AARCH64_SYSCALLS.mkdirat, [], AUDIT_ARCH.AARCH64)).toBe(errno(5));
    expect(f.call(AARCH64_SYSCALLS.getpid, [], AUDIT_ARCH.AARCH64)).toBe(RET.ALLOW);
    expect(f.call(ARM_SYSCALLS.read, [], AUDIT_ARCH.ARM)).toBe(errno(5));
    expect(f.call(ARM_SYSCALLS.mkdirat, [], AUDIT_ARCH.ARM)).toBe(errno(5));
    expect(f.call(X64.read, [], AUDIT_ARCH.X86_64)).toBe(RET.KILL_THREAD);
  });

  it('compares only the low 32 bits on 32-bit ABIs, as libseccomp does', () => {
    const f = compile({
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 0x1_00000008, op: 'SCMP_CMP_EQ' }] }],
    });
    expect(f.call(I386_SYSCALLS.personality, [8], AUDIT_ARCH.I386)).toBe(EPERM);
    expect(f.call(X64.personality, [8])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [0x1_00000008n])).toBe(EPERM);
  });
});

// ------------------------------------------------------------------------- the ENOSYS stub

describe('ENOSYS above the profile (runc\'s -ENOSYS stub)', () => {
  const profile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [{ names: ['read', 'write', 'openat', 'mkdir', 'kexec_load'], action: 'SCMP_ACT_ALLOW' }],
  };

  it('returns ENOSYS for numbers above the highest named system call of a listed architecture', () => {
    const f = compile({ ...profile, architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'] });
    const highest = X64.openat; // 257, the highest of the five on x86_64
    expect(f.call(highest)).toBe(RET.ALLOW);
    expect(f.call(highest - 1)).toBe(EPERM);
    expect(f.call(highest + 1)).toBe(ENOSYS);
    expect(f.call(X64.clone3)).toBe(ENOSYS);
    expect(f.call(-1)).toBe(ENOSYS);
    expect(f.call(I386_SYSCALLS.openat + 1, [], AUDIT_ARCH.I386)).toBe(ENOSYS);
    expect(f.call(I386_SYSCALLS.openat - 1, [], AUDIT_ARCH.I386)).toBe(EPERM);
    // On x32 the highest is kexec_load, an x32-only number (528).
    expect(X32_SYSCALLS.kexec_load).toBe(X32_SYSCALL_BIT + 528);
    expect(f.call(X32_SYSCALLS.openat + 1)).toBe(EPERM);
    expect(f.call(X32_SYSCALLS.kexec_load + 1)).toBe(ENOSYS);
  });

  it('counts names whose rule equals the default action', () => {
    const f = compile({
      ...profile,
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [...profile.syscalls, { names: ['clone3'], action: 'SCMP_ACT_ERRNO' }],
    });
    expect(f.call(X64.clone3)).toBe(EPERM);
    expect(f.call(X64.clone3 + 1)).toBe(ENOSYS);
  });

  it('needs listed architectures and a default action that refuses', () => {
    expect(compile(profile).call(X64.openat + 1)).toBe(EPERM);
    const allow = compile({ ...profile, defaultAction: 'SCMP_ACT_LOG', architectures: ['SCMP_ARCH_X86_64'] });
    expect(allow.call(X64.openat + 1)).toBe(RET.LOG);
  });
});

// ---------------------------------------------------------------------- the engines' profiles

describe("Docker's default profile", () => {
  // The first read fetches the profile's Debian package (test/seccomp-profiles.ts), which can
  // take longer than a test may on a busy machine; the tests then use the copy in memory.
  beforeAll(() => void dockerProfile(), 60_000);
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const CLONE_NEWUSER = 0x10000000;
  const CLONE_NEWNS = 0x00020000;
  const forkFlags = 0x01200011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, as glibc's fork

  it('compiles well under the limit and allows what a container normally does', () => {
    const seccomp = ociSeccomp(dockerProfile(), { capabilities: caps, arch: 'amd64', kernel: '6.1.0' });
    expect(seccomp.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const f = compile(seccomp);
    const count = f.filter.length / 8;
    console.log(`Docker's default profile (x86_64, x86, x32): ${count} BPF instructions; warnings: ${f.warnings.length}`);
    expect(count).toBeLessThan(1500);
    for (const name of ['read', 'write', 'openat', 'execve', 'exit_group', 'mmap', 'futex', 'rt_sigaction']) {
      expect(f.call(X64[name]), name).toBe(RET.ALLOW);
      expect(f.call(X32_SYSCALLS[name]), `x32 ${name}`).toBe(RET.ALLOW);
    }
    for (const name of ['read', 'write', 'openat', 'execve']) expect(f.call(I386_SYSCALLS[name], [], AUDIT_ARCH.I386), `x86 ${name}`).toBe(RET.ALLOW);
    expect(f.call(X64.ptrace)).toBe(RET.ALLOW); // allowed from kernel 4.8
  });

  it('refuses the dangerous calls with EPERM, clone with namespace flags, and clone3 with ENOSYS', () => {
    const f = compile(ociSeccomp(dockerProfile(), { capabilities: caps, arch: 'amd64', kernel: '6.1.0' }));
    for (const name of ['kexec_load', 'unshare', 'mount', 'keyctl', 'reboot', 'swapon', 'init_module', 'bpf', 'setns', 'chroot', 'pivot_root']) {
      expect(f.call(X64[name]), name).toBe(EPERM);
    }
    expect(f.call(X64.clone, [forkFlags])).toBe(RET.ALLOW);
    expect(f.call(X64.clone, [forkFlags | CLONE_NEWUSER])).toBe(EPERM);
    expect(f.call(X64.clone, [CLONE_NEWNS])).toBe(EPERM);
    expect(f.call(I386_SYSCALLS.clone, [forkFlags | CLONE_NEWUSER], AUDIT_ARCH.I386)).toBe(EPERM);
    expect(f.call(X64.clone3)).toBe(ENOSYS);
    expect(f.call(X64.personality, [0xffffffff])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [0x0008])).toBe(RET.ALLOW);
    expect(f.call(X64.personality, [0x0001])).toBe(EPERM);
    // A number above every system call the profile names: ENOSYS, so libc can fall back.
    expect(f.call(1000)).toBe(ENOSYS);
  });

  it('follows the capabilities: with CAP_SYS_ADMIN, clone is unconditional and mount allowed', () => {
    const f = compile(ociSeccomp(dockerProfile(), { capabilities: [...caps, 'CAP_SYS_ADMIN'], arch: 'amd64', kernel: '6.1.0' }));
    expect(f.call(X64.clone, [forkFlags | CLONE_NEWUSER])).toBe(RET.ALLOW);
    expect(f.call(X64.mount)).toBe(RET.ALLOW);
    expect(f.call(X64.unshare)).toBe(RET.ALLOW);
    expect(f.call(X64.kexec_load)).toBe(EPERM);
  });

  it('compiles for aarch64 too', () => {
    const seccomp = ociSeccomp(dockerProfile(), { capabilities: caps, arch: 'arm64', kernel: '6.1.0' });
    expect(seccomp.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    const f = compile(seccomp, { arch: 'arm64' });
    console.log(`Docker's default profile (aarch64, arm): ${f.filter.length / 8} BPF instructions`);
    expect(f.call(AARCH64_SYSCALLS.openat, [], AUDIT_ARCH.AARCH64)).toBe(RET.ALLOW);
    expect(f.call(AARCH64_SYSCALLS.unshare, [], AUDIT_ARCH.AARCH64)).toBe(EPERM);
    expect(f.call(AARCH64_SYSCALLS.clone, [CLONE_NEWUSER], AUDIT_ARCH.AARCH64)).toBe(EPERM);
    expect(f.call(ARM_SYSCALLS.set_tls, [], AUDIT_ARCH.ARM)).toBe(RET.ALLOW);
  });
});

describe("Podman's default profile", () => {
  const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];

  it('compiles, returns ENOSYS by default and EPERM for the listed refusals', () => {
    const f = compile(ociSeccomp(podmanProfile(), { capabilities: caps, arch: 'amd64', kernel: '6.1.0' }));
    console.log(`Podman's default profile (x86_64, x86, x32): ${f.filter.length / 8} BPF instructions`);
    expect(f.filter.length / 8).toBeLessThan(1500);
    expect(f.call(X64.read)).toBe(RET.ALLOW);
    expect(f.call(X64.kexec_load)).toBe(EPERM);
    expect(f.call(X64.add_key)).toBe(errno(38));
  });

  it('refuses audit netlink sockets without CAP_AUDIT_WRITE (ANDed conditions), with EINVAL', () => {
    const f = compile(ociSeccomp(podmanProfile(), { capabilities: caps, arch: 'amd64', kernel: '6.1.0' }));
    expect(f.call(X64.socket, [16, 3, 9])).toBe(errno(22));
    expect(f.call(X64.socket, [16, 3, 0])).toBe(RET.ALLOW);
    expect(f.call(X64.socket, [1, 1, 0])).toBe(RET.ALLOW);
    const audit = compile(ociSeccomp(podmanProfile(), { capabilities: [...caps, 'CAP_AUDIT_WRITE'], arch: 'amd64', kernel: '6.1.0' }));
    expect(audit.call(X64.socket, [16, 3, 9])).toBe(RET.ALLOW);
  });
});

// ------------------------------------------------------------------ the programs, byte for byte

// SHA-256 of the filters the compiler gave before src/linux/seccomp.ts was split into rules,
// assembler and compiler: a refactoring of the compiler must not change a single instruction.
describe('the compiled programs stay byte-identical', () => {
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const dockerCaps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  const cases: { name: string; seccomp: () => Seccomp; arch: string; sha256: string }[] = [
    {
      name: "Docker's default profile on x86_64",
      seccomp: () => ociSeccomp(dockerProfile(), { capabilities: dockerCaps, arch: 'amd64', kernel: '6.1.0' }) as Seccomp,
      arch: 'x64',
      sha256: 'c264c4f7f9bb655b52b7b8a56d116a6c66739105e05de7a9186d85121ec298ff',
    },
    {
      name: "Docker's default profile on aarch64",
      seccomp: () => ociSeccomp(dockerProfile(), { capabilities: dockerCaps, arch: 'arm64', kernel: '6.1.0' }) as Seccomp,
      arch: 'arm64',
      sha256: '6522f45138ee60c275c01172a96281831667a0ecc89fe6a39a5a2dd90d3a709f',
    },
    {
      name: "Podman's default profile on x86_64",
      seccomp: () => ociSeccomp(podmanProfile(), { capabilities: ['CAP_KILL'], arch: 'amd64', kernel: '6.1.0' }) as Seccomp,
      arch: 'x64',
      sha256: 'f95963b8b8b266ccb9c8f55769b143c54059a2bf0ea13dae967abac54c986007',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const compiled = compileSeccomp(c.seccomp(), { arch: c.arch, warn: () => {} });
      expect(sha256(compiled.filter)).toBe(c.sha256);
    });
  }
});
