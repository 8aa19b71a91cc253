// The cgroup v1 -> v2 conversions, value by value as runc and crun compute them.
import { describe, expect, it } from 'vitest';
import { blkioWeightToIoWeight, cpuMax, cpuSharesToWeight, decimal, memorySwapToV2, pidsMax, v2Number } from '../../src/cgroups/convert';

describe('cpu.shares -> cpu.weight (opencontainers/cgroups, crun >= 1.23)', () => {
  it.each([
    [0, 0], // unset
    [1, 1],
    [2, 1], // minimum
    [3, 2],
    [10, 4],
    [100, 17],
    [512, 59],
    [1024, 100], // the defaults map onto each other
    [2048, 174],
    [4096, 303],
    [10000, 627],
    [100000, 4340],
    [262143, 10000],
    [262144, 10000], // maximum
    [1000000, 10000],
  ])('%i -> %i', (shares, weight) => expect(cpuSharesToWeight(shares)).toBe(weight));
});

describe('blkio.weight -> io.weight (linear, [10, 1000] -> [1, 10000])', () => {
  it.each([
    [0, 0],
    [10, 1],
    [100, 910],
    [500, 4950],
    [1000, 10000],
  ])('%i -> %i', (w, io) => expect(blkioWeightToIoWeight(w)).toBe(io));
});

describe('memory.swap (memory+swap) -> memory.swap.max (swap alone)', () => {
  it.each([
    // [swap, memory, v2 swap]
    [0, -1, -1], // unlimited memory, swap not given: unlimited swap too
    [0, 100, 0], // not given: left alone
    [-1, 100, -1], // unlimited
    [300, -1, 300], // unlimited memory: swap as is
    [300, 100, 200],
    [100, 100, 0], // the same value: no swap
  ])('swap %i, memory %i -> %i', (swap, memory, out) => expect(memorySwapToV2(swap, memory)).toBe(out));

  it('refuses what cannot be converted, naming the field', () => {
    expect(() => memorySwapToV2(300, 0)).toThrow('linux.resources.memory.swap: unable to set swap limit without memory limit');
    expect(() => memorySwapToV2(300, -5)).toThrow('linux.resources.memory.limit: invalid memory value: -5');
    expect(() => memorySwapToV2(50, 100)).toThrow('linux.resources.memory.swap: memory+swap limit should be >= memory limit');
  });
});

describe('cpu.max from quota and period (runc)', () => {
  it.each([
    [undefined, undefined, ''],
    [0, 0, ''],
    [50000, undefined, '50000'],
    [50000, 100000, '50000 100000'],
    [-1, undefined, 'max'],
    [-1, 200000, 'max 200000'],
    [undefined, 200000, 'max 200000'],
  ])('quota %j period %j -> %j', (quota, period, out) => expect(cpuMax(quota, period)).toBe(out));
});

describe('numbers as the kernel takes them', () => {
  it('v2 files: 0 unset, -1 max', () => {
    expect(v2Number(0)).toBe('');
    expect(v2Number(undefined)).toBe('');
    expect(v2Number(-1)).toBe('max');
    expect(v2Number(104857600)).toBe('104857600');
  });
  it('pids.max: negative is max, 0 is left alone', () => {
    expect(pidsMax(0)).toBe('');
    expect(pidsMax(-1)).toBe('max');
    expect(pidsMax(-7)).toBe('max');
    expect(pidsMax(64)).toBe('64');
  });
  it('never an exponent or a fraction', () => {
    expect(decimal(1e21)).toBe('1000000000000000000000');
    expect(decimal(12.7)).toBe('12');
  });
});
