// cgroup v2 devices: there are no devices.allow/deny files; access is decided by an eBPF
// program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup. husk compiles the rules into
// that program (devicefilter.ts) and the addon loads and attaches it:
//
//   bpf(BPF_PROG_LOAD)    the instructions, license "Apache"           -> program fd
//   bpf(BPF_PROG_QUERY)   the programs attached to the cgroup before    -> their ids
//   bpf(BPF_PROG_ATTACH)  the new one, BPF_F_ALLOW_MULTI, to the cgroup directory's fd
//   bpf(BPF_PROG_DETACH)  then the old ones (on update), so there is never a moment without a filter
//
// (native/bpf.cc.) Without them (an older addon), the rules cannot be enforced on cgroup v2:
// husk then says so with a warning naming linux.resources.devices.
import * as fs from 'fs';
import { HuskError, reason } from '../../errors';
import { native } from '../../native';
import { trace } from '../../host/trace';
import type { DeviceCgroupRule } from '../../spec/types';
import { deviceFilter, DEVICE_FILTER_LICENSE, encodeProgram } from '../devicefilter';
import { containerDeviceRules, emulate } from '../devicerules';
import type { CgroupDir } from '../fs';

export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
export const BPF_CGROUP_DEVICE = 6;
export const BPF_F_ALLOW_MULTI = 2;

/** The addon functions this needs; optional until the addon has them. */
export interface BpfPrimitives {
  bpfProgLoad(progType: number, insns: Buffer, license: string): number;
  bpfProgQuery(targetFd: number, attachType: number): number[];
  bpfProgAttach(progFd: number, targetFd: number, attachType: number, flags: number): void;
  bpfProgGetFdById(id: number): number;
  bpfProgDetach(progFd: number, targetFd: number, attachType: number): void;
}

export function bpfPrimitives(): BpfPrimitives | undefined {
  try {
    const n = native as unknown as Partial<BpfPrimitives>;
    const names: (keyof BpfPrimitives)[] = ['bpfProgLoad', 'bpfProgQuery', 'bpfProgAttach', 'bpfProgGetFdById', 'bpfProgDetach'];
    return names.every((k) => typeof n[k] === 'function') ? (n as BpfPrimitives) : undefined;
  } catch {
    return undefined;
  }
}

/** The program for a container's rules (its own, then runc's default allow list). */
export function programFor(rules: DeviceCgroupRule[] | undefined): Buffer {
  return encodeProgram(deviceFilter(emulate(containerDeviceRules(rules))));
}

export function apply(dir: CgroupDir, rules: DeviceCgroupRule[] | undefined, warn: (msg: string) => void, bpf: BpfPrimitives | undefined): void {
  const program = programFor(rules);
  if (!bpf) {
    warn(`linux.resources.devices: device rules are not enforced on this cgroup v2 host: husk's addon cannot load the eBPF device program yet (only the devices created in the container exist there)`);
    return;
  }
  const what = 'linux.resources.devices';
  const dirFd = fs.openSync(dir.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const old = bpf.bpfProgQuery(dirFd, BPF_CGROUP_DEVICE);
    let progFd: number;
    try {
      progFd = bpf.bpfProgLoad(BPF_PROG_TYPE_CGROUP_DEVICE, program, DEVICE_FILTER_LICENSE);
    } catch (err) {
      throw new HuskError(`${what}: bpf(BPF_PROG_LOAD) of the device program (${program.length / 8} instructions): ${reason(err)}`, { cause: err });
    }
    trace('husk', `bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, ${program.length / 8} insns) = ${progFd}`,
      { kind: 'devicesProgram', action: 'load', instructions: program.length / 8 });
    try {
      bpf.bpfProgAttach(progFd, dirFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI);
      trace('husk', `bpf(BPF_PROG_ATTACH, ${progFd}, ${JSON.stringify(dir.dir)}, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) = 0`,
        { kind: 'devicesProgram', action: 'attach', dir: dir.dir });
    } catch (err) {
      throw new HuskError(`${what}: bpf(BPF_PROG_ATTACH) to ${dir.dir}: ${reason(err)}`, { cause: err });
    } finally {
      fs.closeSync(progFd);
    }
    for (const id of old) {
      const oldFd = bpf.bpfProgGetFdById(id);
      try {
        bpf.bpfProgDetach(oldFd, dirFd, BPF_CGROUP_DEVICE);
        trace('husk', `bpf(BPF_PROG_DETACH, program ${id}, ${JSON.stringify(dir.dir)}) = 0`,
          { kind: 'devicesProgram', action: 'detach', dir: dir.dir });
      } catch (err) {
        throw new HuskError(`${what}: bpf(BPF_PROG_DETACH) of the previous device program ${id} from ${dir.dir}: ${reason(err)}`, { cause: err });
      } finally {
        fs.closeSync(oldFd);
      }
    }
  } finally {
    fs.closeSync(dirFd);
  }
}
