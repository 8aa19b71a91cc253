// A small classic-BPF assembler for seccomp filters: instructions whose jumps name labels,
// laid out with trampolines where a conditional jump cannot reach, and encoded as the packed
// struct sock_filter[] that seccomp(2) takes. It knows nothing of seccomp's policy.

/** The classic BPF opcodes a seccomp filter uses (linux/bpf_common.h). */
export const BPF = {
  LD_W_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS
  ALU_AND_K: 0x54, // BPF_ALU | BPF_AND | BPF_K
  JA: 0x05, // BPF_JMP | BPF_JA
  JEQ_K: 0x15,
  JGT_K: 0x25,
  JGE_K: 0x35,
  JSET_K: 0x45,
  RET_K: 0x06,
} as const;

/** A place in the program that jumps name; bound to an instruction by Assembler.place. */
export class Label {
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
export class Assembler {
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
        const far = (['jt', 'jf'] as const).filter((which) => offset(i, insn[which]!) > 255);
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
