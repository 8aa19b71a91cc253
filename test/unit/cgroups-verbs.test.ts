// What the cgroup verbs read from their command line and how update merges, without a
// container: runc's flag semantics, go-units sizes, Go durations, the event lines.
import { describe, expect, it } from 'vitest';
import { mergeResources, parseDuration } from '../../src/runtime/cgroupVerbs';
import { emptyStats, eventJson, parseCpuList, parseU64, U64_MAX } from '../../src/cgroups/stats';
import { ramInBytes, resourcesFromFlags } from '../../src/runtime/resources';

describe('update flags as runc reads them', () => {
  it('memory sizes in go-units binary multiples, -1 for none', () => {
    expect(ramInBytes('1024')).toBe(1024);
    expect(ramInBytes('200M')).toBe(200 * 2 ** 20);
    expect(ramInBytes('1.5g')).toBe(1.5 * 2 ** 30);
    expect(ramInBytes('64kb')).toBe(65536);
    expect(ramInBytes('2 GiB')).toBe(2 * 2 ** 30);
    expect(() => ramInBytes('lots')).toThrow("invalid size: 'lots'");
  });
  it('every flag to its field', () => {
    expect(resourcesFromFlags({
      memory: '100M', memorySwap: '-1', memoryReservation: '50M', cpuShare: '512', cpuQuota: '-1', cpuPeriod: '100000', cpuBurst: '0',
      cpuRtPeriod: '1000000', cpuRtRuntime: '5000', cpusetCpus: '0', cpusetMems: '0', cpuIdle: '1', pidsLimit: '42', blkioWeight: '300',
    })).toEqual({
      blockIO: { weight: 300 },
      pids: { limit: 42 },
      memory: { limit: 104857600, swap: -1, reservation: 52428800 },
      cpu: { cpus: '0', mems: '0', idle: 1, burst: 0, period: 100000, realtimePeriod: 1000000, shares: 512, quota: -1, realtimeRuntime: 5000 },
    });
  });
  it('--cpu-shares is taken as runc\'s --cpu-share; --memory -1 alone makes swap unlimited too', () => {
    expect(resourcesFromFlags({ cpuShares: '100' })).toEqual({ cpu: { shares: 100 } });
    expect(resourcesFromFlags({ memory: '-1' })).toEqual({ memory: { limit: -1, swap: -1 } });
  });
  it('0 for pids and blkio weight means "unchanged"', () => {
    expect(resourcesFromFlags({ pidsLimit: '0', blkioWeight: '0' })).toEqual({});
  });
  it('refuses a value that is not a number, naming the flag', () => {
    expect(() => resourcesFromFlags({ cpuPeriod: '-5' })).toThrow('invalid value for cpu-period: strconv.ParseUint: parsing "-5": invalid syntax');
    expect(() => resourcesFromFlags({ memory: 'x' })).toThrow("invalid value for memory: invalid size: 'x'");
  });
});

describe('update merges into the container\'s resources', () => {
  it('field by field in a section, lists replaced, other sections kept', () => {
    expect(mergeResources(
      { memory: { limit: 100, swap: 300 }, pids: { limit: 10 }, devices: [{ allow: false, access: 'rwm' }] },
      { memory: { limit: 200 }, hugepageLimits: [{ pageSize: '2MB', limit: 0 }] },
    )).toEqual({
      memory: { limit: 200, swap: 300 }, pids: { limit: 10 }, devices: [{ allow: false, access: 'rwm' }], hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
    });
  });
});

describe('--interval (Go durations)', () => {
  it.each([
    ['5s', 5000], ['100ms', 100], ['1m30s', 90000], ['1.5h', 5400000], ['250us', 0.25], ['0', 0],
  ])('%s -> %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it('refuses what Go refuses', () => {
    expect(() => parseDuration('5')).toThrow('invalid value "5" for flag -interval: parse error');
    expect(() => parseDuration('fast')).toThrow('parse error');
  });
});

describe('event lines', () => {
  it('an OOM event has no data', () => {
    expect(eventJson('oom', 'c1')).toBe('{"type":"oom","id":"c1"}');
  });
  it('a stats event of an empty cgroup is what runc prints for one', () => {
    expect(eventJson('stats', 'c<1>', emptyStats())).toBe(
      '{"type":"stats","id":"c\\u003c1\\u003e","data":{"cpu":{"usage":{"kernel":0,"user":0},"throttling":{}},' +
        '"cpuset":{"cpu_exclusive":0,"mem_hardwall":0,"mem_exclusive":0,"memory_migrate":0,"memory_spread_page":0,"memory_spread_slab":0,"memory_pressure":0,"sched_load_balance":0,"sched_relax_domain_level":0},' +
        '"memory":{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},' +
        '"pids":{},"blkio":{},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}}',
    );
  });
  it('cgroup numbers: max is 2^64-1, v1\'s negative values 0', () => {
    expect(parseU64('max\n')).toBe(U64_MAX);
    expect(parseU64('-1')).toBe(0n);
    expect(parseU64('9223372036854771712')).toBe(9223372036854771712n);
    expect(parseCpuList('0-2,5\n')).toEqual([0, 1, 2, 5]);
  });
});
