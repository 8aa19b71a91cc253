// The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program compiled from a
// DeviceState (devicerules.ts), as bytes ready for bpf(BPF_PROG_LOAD).
//
// The kernel runs it on every device open and mknod with a struct bpf_cgroup_dev_ctx:
//   u32 access_type   low 16 bits: BPF_DEVCG_DEV_BLOCK (1) or BPF_DEVCG_DEV_CHAR (2);
//                     high 16 bits: BPF_DEVCG_ACC_MKNOD (1) | READ (2) | WRITE (4)
//   u32 major, u32 minor
// and allows the access when it returns 1. The program (the shape runc and crun generate):
//
//   r2 = ctx->access_type & 0xffff     device type
//   r3 = ctx->access_type >> 16        requested access
//   r4 = ctx->major
//   r5 = ctx->minor
//   for each exception: if type, major, minor (unless any) and access match, return !default
//   return default
//
// "Access match" follows the kernel's v1 rules, so both versions answer alike: with a deny
// default an exception must cover every requested bit; with an allow default an exception
// that shares any bit denies.
import { HuskError } from '../errors';
import { ACCESS_ALL, type DeviceState } from './devicerules';

/** struct bpf_insn. */
export interface BpfInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

// Opcodes used (linux/bpf.h, linux/bpf_common.h): class | op | source/size.
export const OP = {
  LDX_MEM_W: 0x61, // BPF_LDX | BPF_MEM | BPF_W
  ALU32_AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K
  ALU32_RSH_K: 0x74, // BPF_ALU | BPF_RSH | BPF_K
  ALU32_MOV_K: 0xb4, // BPF_ALU | BPF_MOV | BPF_K
  ALU32_MOV_X: 0xbc, // BPF_ALU | BPF_MOV | BPF_X
  JNE_K: 0x55, // BPF_JMP | BPF_JNE | BPF_K
  JNE_X: 0x5d, // BPF_JMP | BPF_JNE | BPF_X
  JEQ_K: 0x15, // BPF_JMP | BPF_JEQ | BPF_K
  EXIT: 0x95, // BPF_JMP | BPF_EXIT
} as const;

export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;

/** The license the program is loaded with (it calls no helper, so any string does). */
export const DEVICE_FILTER_LICENSE = 'Apache';

const insn = (code: number, dst = 0, src = 0, off = 0, imm = 0): BpfInsn => ({ code, dst, src, off, imm });

/** The instructions of the filter for a device state. */
export function deviceFilter(state: DeviceState): BpfInsn[] {
  const out: BpfInsn[] = [
    insn(OP.LDX_MEM_W, 2, 1, 0),
    insn(OP.ALU32_AND_K, 2, 0, 0, 0xffff),
    insn(OP.LDX_MEM_W, 3, 1, 0),
    insn(OP.ALU32_RSH_K, 3, 0, 0, 16),
    insn(OP.LDX_MEM_W, 4, 1, 4),
    insn(OP.LDX_MEM_W, 5, 1, 8),
  ];
  const verdict = state.defaultAllow ? 0 : 1; // what an exception says
  for (const e of state.exceptions) {
    for (const n of [e.major, e.minor]) {
      if (!Number.isInteger(n) || n < -1 || n > 0x7fffffff) throw new HuskError(`device rule ${e.type} ${e.major}:${e.minor}: invalid device number`);
    }
    // Each "goto next" is patched once the block's length is known.
    const block: { i: BpfInsn; next?: boolean }[] = [];
    block.push({ i: insn(OP.JNE_K, 2, 0, 0, e.type === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR), next: true });
    if (e.major !== -1) block.push({ i: insn(OP.JNE_K, 4, 0, 0, e.major), next: true });
    if (e.minor !== -1) block.push({ i: insn(OP.JNE_K, 5, 0, 0, e.minor), next: true });
    if (!state.defaultAllow) {
      // Allowed only if the exception grants every requested bit: (r3 & access) == r3.
      if (e.access !== ACCESS_ALL) {
        block.push({ i: insn(OP.ALU32_MOV_X, 1, 3) });
        block.push({ i: insn(OP.ALU32_AND_K, 1, 0, 0, e.access) });
        block.push({ i: insn(OP.JNE_X, 1, 3), next: true });
      }
    } else {
      // Denied if the request shares any bit with the exception: (r3 & access) != 0.
      block.push({ i: insn(OP.ALU32_MOV_X, 1, 3) });
      block.push({ i: insn(OP.ALU32_AND_K, 1, 0, 0, e.access) });
      block.push({ i: insn(OP.JEQ_K, 1, 0, 0, 0), next: true });
    }
    block.push({ i: insn(OP.ALU32_MOV_K, 0, 0, 0, verdict) });
    block.push({ i: insn(OP.EXIT) });
    block.forEach((b, k) => {
      // A jump at k skips to the first instruction after the block: off = len - k - 1.
      if (b.next) b.i.off = block.length - k - 1;
      out.push(b.i);
    });
  }
  out.push(insn(OP.ALU32_MOV_K, 0, 0, 0, state.defaultAllow ? 1 : 0));
  out.push(insn(OP.EXIT));
  return out;
}

/** The program as the kernel takes it: 8 bytes per instruction, little-endian. */
export function encodeProgram(insns: BpfInsn[]): Buffer {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((x, k) => {
    buf.writeUInt8(x.code, k * 8);
    buf.writeUInt8(((x.src & 0xf) << 4) | (x.dst & 0xf), k * 8 + 1);
    buf.writeInt16LE(x.off, k * 8 + 2);
    buf.writeInt32LE(x.imm | 0, k * 8 + 4);
  });
  return buf;
}
