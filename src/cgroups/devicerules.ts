// Device access rules, with one meaning on both cgroup versions.
//
// linux.resources.devices is a list applied in order, with the semantics of the cgroup v1
// devices controller (the kernel's devices.allow / devices.deny): an "a" rule resets
// everything to allow-all or deny-all; any other rule either adds an exception to the
// default or takes access bits away from an exception that names exactly the same
// type:major:minor. As in runc, the list starts from deny-all and runc's default allow list
// is appended after the config's own rules.
//
// DeviceState is the result of that emulation: a default and a list of exceptions. The v1
// manager writes it into devices.deny/devices.allow; the v2 manager compiles it into the
// eBPF program (devicefilter.ts). deviceAllowed() is the kernel's check, so the unit tests can
// hold the eBPF program to exactly the same answers.
import { HuskError } from '../errors';
import type { DeviceCgroupRule } from '../spec/types';

/** The access bits, with the values of the kernel's BPF_DEVCG_ACC_*. */
export const ACCESS = { m: 1, r: 2, w: 4 } as const;
export const ACCESS_ALL = 7;

export interface DeviceRule {
  allow: boolean;
  /** a: every device (only meaningful as a reset); c: character; b: block. */
  type: 'a' | 'c' | 'b';
  /** -1: any. */
  major: number;
  /** -1: any. */
  minor: number;
  /** ACCESS bits. */
  access: number;
}

export interface DeviceException {
  type: 'c' | 'b';
  major: number;
  minor: number;
  access: number;
}

export interface DeviceState {
  /** true: everything not excepted is allowed (v1's "blacklist" mode). */
  defaultAllow: boolean;
  exceptions: DeviceException[];
}

const rule = (type: 'c' | 'b', major: number, minor: number, access: string): DeviceRule => ({ allow: true, type, major, minor, access: accessBits(access) });

/** runc's AllowedDevices (libcontainer/specconv), in its order: appended after the config's rules. */
export const DEFAULT_ALLOWED_DEVICES: readonly DeviceRule[] = [
  rule('c', -1, -1, 'm'), // mknod of any character device
  rule('b', -1, -1, 'm'), // mknod of any block device
  rule('c', 1, 3, 'rwm'), // /dev/null
  rule('c', 1, 8, 'rwm'), // /dev/random
  rule('c', 1, 7, 'rwm'), // /dev/full
  rule('c', 5, 0, 'rwm'), // /dev/tty
  rule('c', 1, 5, 'rwm'), // /dev/zero
  rule('c', 1, 9, 'rwm'), // /dev/urandom
  rule('c', 136, -1, 'rwm'), // /dev/pts/*
  rule('c', 5, 2, 'rwm'), // /dev/ptmx
  rule('c', 10, 200, 'rwm'), // /dev/net/tun
];

export function accessBits(access: string): number {
  let bits = 0;
  for (const ch of access) {
    const bit = ACCESS[ch as keyof typeof ACCESS];
    if (bit === undefined) throw new HuskError(`device access ${JSON.stringify(access)}: unknown access ${JSON.stringify(ch)} (only r, w and m)`);
    bits |= bit;
  }
  return bits;
}

export function accessString(bits: number): string {
  return `${bits & ACCESS.r ? 'r' : ''}${bits & ACCESS.w ? 'w' : ''}${bits & ACCESS.m ? 'm' : ''}`;
}

/** linux.resources.devices -> rules (runc's specconv: no type means "a", no major/minor means any). */
export function rulesFromSpec(devices: DeviceCgroupRule[] | undefined): DeviceRule[] {
  return (devices ?? []).map((d, i) => {
    const at = `linux.resources.devices[${i}]`;
    if (!d.access) throw new HuskError(`config.json: ${at}.access: device access at ${i} field cannot be empty`);
    const major = d.major ?? -1;
    const minor = d.minor ?? -1;
    for (const [name, n] of [['major', major], ['minor', minor]] as const) {
      if (!Number.isInteger(n) || n < -1 || n > 0x7fffffff) throw new HuskError(`config.json: ${at}.${name}: ${n} is not a device number`);
    }
    return { allow: d.allow, type: d.type ?? 'a', major, minor, access: accessBits(d.access) };
  });
}

/** The config's rules followed by the default allow list. */
export function containerDeviceRules(devices: DeviceCgroupRule[] | undefined): DeviceRule[] {
  return [...rulesFromSpec(devices), ...DEFAULT_ALLOWED_DEVICES];
}

/** Applies rules in order, as the v1 devices controller does, starting from deny-all. */
export function emulate(rules: readonly DeviceRule[], start: DeviceState = { defaultAllow: false, exceptions: [] }): DeviceState {
  let state: DeviceState = { defaultAllow: start.defaultAllow, exceptions: start.exceptions.map((e) => ({ ...e })) };
  for (const r of rules) {
    if (r.type === 'a') {
      state = { defaultAllow: r.allow, exceptions: [] };
      continue;
    }
    const same = state.exceptions.find((e) => e.type === r.type && e.major === r.major && e.minor === r.minor);
    if (r.allow !== state.defaultAllow) {
      // An exception to the default: add it, or widen the one for the same device.
      if (same) same.access |= r.access;
      else state.exceptions.push({ type: r.type, major: r.major, minor: r.minor, access: r.access });
    } else if (same) {
      // The same direction as the default: take these access bits out of its exception.
      same.access &= ~r.access;
      if (same.access === 0) state.exceptions = state.exceptions.filter((e) => e !== same);
    }
  }
  return state;
}

function matches(e: DeviceException, type: 'c' | 'b', major: number, minor: number): boolean {
  return e.type === type && (e.major === -1 || e.major === major) && (e.minor === -1 || e.minor === minor);
}

/**
 * The kernel's answer for one access: with a deny default, one exception must grant every
 * requested bit; with an allow default, any exception that shares a bit denies it.
 */
export function deviceAllowed(state: DeviceState, type: 'c' | 'b', major: number, minor: number, access: number): boolean {
  if (!state.defaultAllow) {
    return state.exceptions.some((e) => matches(e, type, major, minor) && (access & ~e.access) === 0);
  }
  return !state.exceptions.some((e) => matches(e, type, major, minor) && (access & e.access) !== 0);
}

/** "c 1:3 rwm", "b *:* m", "a": the line devices.allow/devices.deny take. */
export function v1RuleLine(e: { type: 'a' | 'c' | 'b'; major: number; minor: number; access: number }): string {
  if (e.type === 'a') return 'a';
  const n = (x: number) => (x === -1 ? '*' : String(x));
  return `${e.type} ${n(e.major)}:${n(e.minor)} ${accessString(e.access)}`;
}
