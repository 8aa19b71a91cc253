// Device rules: the v1 semantics emulated (devicerules.ts), and the cgroup v2 eBPF program
// (devicefilter.ts) run in a small interpreter of the instructions it uses, which must give
// the kernel's v1 answer for every device and access.
import { describe, expect, it } from 'vitest';
import { BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, deviceFilter, encodeProgram, OP, type BpfInsn } from '../../src/cgroups/devicefilter';
import {
  ACCESS,
  accessBits,
  containerDeviceRules,
  deviceAllowed,
  emulate,
  rulesFromSpec,
  v1RuleLine,
  type DeviceRule,
  type DeviceState,
} from '../../src/cgroups/devicerules';
import { programFor } from '../../src/cgroups/v2/devices';

/** Runs a BPF_PROG_TYPE_CGROUP_DEVICE program on one bpf_cgroup_dev_ctx; returns r0. */
function run(program: Buffer, type: number, access: number, major: number, minor: number): number {
  const ctx = Buffer.alloc(12);
  ctx.writeUInt32LE(((access << 16) | type) >>> 0, 0);
  ctx.writeUInt32LE(major, 4);
  ctx.writeUInt32LE(minor, 8);
  const r = new Array<bigint>(11).fill(0n);
  const u32 = (x: bigint) => x & 0xffffffffn;
  const n = program.length / 8;
  for (let pc = 0, steps = 0; pc < n; pc++) {
    if (++steps > 10_000) throw new Error('program does not end');
    const code = program.readUInt8(pc * 8);
    const regs = program.readUInt8(pc * 8 + 1);
    const dst = regs & 0xf;
    const src = regs >> 4;
    const off = program.readInt16LE(pc * 8 + 2);
    const imm = BigInt(program.readInt32LE(pc * 8 + 4));
    const immU64 = imm & 0xffffffffffffffffn; // sign-extended, as the kernel compares it
    switch (code) {
      case OP.LDX_MEM_W:
        if (src !== 1 || off < 0 || off > 8) throw new Error(`load outside the context at ${pc}`);
        r[dst] = BigInt(ctx.readUInt32LE(off));
        break;
      case OP.ALU32_AND_K:
        r[dst] = u32(r[dst] & u32(imm));
        break;
      case OP.ALU32_RSH_K:
        r[dst] = u32(r[dst]) >> imm;
        break;
      case OP.ALU32_MOV_K:
        r[dst] = u32(imm);
        break;
      case OP.ALU32_MOV_X:
        r[dst] = u32(r[src]);
        break;
      case OP.JNE_K:
        if (r[dst] !== immU64) pc += off;
        break;
      case OP.JEQ_K:
        if (r[dst] === immU64) pc += off;
        break;
      case OP.JNE_X:
        if (r[dst] !== r[src]) pc += off;
        break;
      case OP.EXIT:
        return Number(r[0]);
      default:
        throw new Error(`unknown opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const DEVICES: ['c' | 'b', number, number][] = [
  ['c', 1, 3], ['c', 1, 5], ['c', 1, 7], ['c', 1, 8], ['c', 1, 9], ['c', 1, 11], ['c', 5, 0], ['c', 5, 1], ['c', 5, 2],
  ['c', 10, 200], ['c', 10, 229], ['c', 136, 0], ['c', 136, 7], ['c', 4, 64], ['b', 7, 0], ['b', 8, 0], ['b', 8, 1], ['b', 253, 0],
];
const ACCESSES = [1, 2, 3, 4, 5, 6, 7];

/** Every device and access: the program must answer exactly as the kernel's v1 rules. */
function expectProgramMatches(state: DeviceState) {
  const program = encodeProgram(deviceFilter(state));
  for (const [t, major, minor] of DEVICES) {
    for (const access of ACCESSES) {
      const expected = deviceAllowed(state, t, major, minor, access) ? 1 : 0;
      const got = run(program, t === 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, access, major, minor);
      expect(got, `${t} ${major}:${minor} access ${access}`).toBe(expected);
    }
  }
}

const r = (allow: boolean, type: 'a' | 'c' | 'b', major: number, minor: number, access: string): DeviceRule => ({ allow, type, major, minor, access: accessBits(access) });

describe('device rules as the v1 controller applies them', () => {
  it('the default config (deny all) plus runc\'s allow list is runc\'s devices.list', () => {
    const state = emulate(containerDeviceRules([{ allow: false, access: 'rwm' }]));
    expect(state.defaultAllow).toBe(false);
    // What `cat devices.list` shows under runc on this machine.
    expect(state.exceptions.map(v1RuleLine)).toEqual([
      'c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:8 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 1:5 rwm', 'c 1:9 rwm', 'c 136:* rwm', 'c 5:2 rwm', 'c 10:200 rwm',
    ]);
  });
  it('an unlisted device is denied, a listed one allowed, mknod of anything allowed', () => {
    const state = emulate(containerDeviceRules([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' }]));
    expect(deviceAllowed(state, 'c', 1, 11, ACCESS.w)).toBe(false);
    expect(deviceAllowed(state, 'c', 10, 229, ACCESS.r | ACCESS.w)).toBe(true);
    expect(deviceAllowed(state, 'b', 8, 0, ACCESS.m)).toBe(true);
    expect(deviceAllowed(state, 'b', 8, 0, ACCESS.r)).toBe(false);
  });
  it('"a" resets, in either direction', () => {
    expect(emulate([r(true, 'a', -1, -1, 'rwm')])).toEqual({ defaultAllow: true, exceptions: [] });
    expect(emulate([r(true, 'a', -1, -1, 'rwm'), r(false, 'c', 1, 3, 'w'), r(false, 'a', -1, -1, 'rwm')])).toEqual({ defaultAllow: false, exceptions: [] });
  });
  it('a rule in the default\'s direction takes bits from the exception with the same numbers only', () => {
    const s = emulate([r(true, 'c', 1, 3, 'rwm'), r(false, 'c', 1, 3, 'w'), r(true, 'c', -1, -1, 'r'), r(false, 'c', 1, 5, 'r')]);
    expect(s.exceptions.map(v1RuleLine)).toEqual(['c 1:3 rm', 'c *:* r']);
    // The wildcard still allows reading 1:5: the kernel does not punch holes into it.
    expect(deviceAllowed(s, 'c', 1, 5, ACCESS.r)).toBe(true);
  });
  it('an allow-all default with denied devices', () => {
    const s = emulate([r(true, 'a', -1, -1, 'rwm'), r(false, 'c', 1, 11, 'w'), r(false, 'b', 8, -1, 'rwm')]);
    expect(deviceAllowed(s, 'c', 1, 11, ACCESS.r)).toBe(true);
    expect(deviceAllowed(s, 'c', 1, 11, ACCESS.r | ACCESS.w)).toBe(false);
    expect(deviceAllowed(s, 'b', 8, 3, ACCESS.m)).toBe(false);
  });
  it('reads OCI rules as runc does: no type is "a", no numbers are any', () => {
    expect(rulesFromSpec([{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, access: 'r' }])).toEqual([
      { allow: true, type: 'a', major: -1, minor: -1, access: 7 },
      { allow: false, type: 'c', major: 1, minor: -1, access: 2 },
    ]);
    expect(() => rulesFromSpec([{ allow: true, type: 'c', access: '' }])).toThrow('config.json: linux.resources.devices[0].access: device access at 0 field cannot be empty');
    expect(() => accessBits('rx')).toThrow('device access "rx": unknown access "x" (only r, w and m)');
  });
});

describe('the cgroup v2 device program', () => {
  it('matches the v1 answers for the default config', () => {
    expectProgramMatches(emulate(containerDeviceRules([{ allow: false, access: 'rwm' }])));
  });
  it('matches them for partial access, wildcards and extra devices', () => {
    expectProgramMatches(emulate(containerDeviceRules([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' },
      { allow: true, type: 'b', major: 8, access: 'r' },
      { allow: false, type: 'c', major: 1, minor: 3, access: 'w' },
    ])));
  });
  it('matches them with an allow-all default', () => {
    expectProgramMatches(emulate([r(true, 'a', -1, -1, 'rwm'), r(false, 'c', 1, 11, 'w'), r(false, 'b', 8, -1, 'rwm'), r(false, 'c', 136, -1, 'rw')]));
  });
  it('denies everything with no rule at all, allows everything after "a" allow', () => {
    expect(run(encodeProgram(deviceFilter(emulate([]))), BPF_DEVCG_DEV_CHAR, ACCESS.r, 1, 3)).toBe(0);
    expect(run(encodeProgram(deviceFilter(emulate([r(true, 'a', -1, -1, 'rwm')]))), BPF_DEVCG_DEV_BLOCK, 7, 8, 0)).toBe(1);
  });
  it('is the expected instructions, byte for byte, for one exception', () => {
    const insns: BpfInsn[] = deviceFilter({ defaultAllow: false, exceptions: [{ type: 'c', major: 1, minor: 3, access: ACCESS.r }] });
    expect(encodeProgram(insns).toString('hex').match(/.{16}/g)).toEqual([
      '6112000000000000', // r2 = *(u32 *)(r1 + 0)
      '54020000ffff0000', // w2 &= 0xffff
      '6113000000000000', // r3 = *(u32 *)(r1 + 0)
      '7403000010000000', // r3 >>= 16 (w3)
      '6114040000000000', // r4 = *(u32 *)(r1 + 4)
      '6115080000000000', // r5 = *(u32 *)(r1 + 8)
      '5502070002000000', // if r2 != 2 (char) goto +7
      '5504060001000000', // if r4 != 1 goto +6
      '5505050003000000', // if r5 != 3 goto +5
      'bc31000000000000', // w1 = w3
      '5401000002000000', // w1 &= 2 (read)
      '5d31020000000000', // if r1 != r3 goto +2
      'b400000001000000', // w0 = 1
      '9500000000000000', // exit
      'b400000000000000', // w0 = 0
      '9500000000000000', // exit
    ]);
  });
  it('programFor: the container\'s program is whole instructions', () => {
    expect(programFor([{ allow: false, access: 'rwm' }]).length % 8).toBe(0);
  });
});
