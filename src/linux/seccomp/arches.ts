// The architectures husk compiles filters for: each one's audit number, system call table and
// argument width, which ones a host's kernel can run, and every name runc accepts.
import { HuskError } from '../../errors';
import { AARCH64_SYSCALLS } from '../syscalls/aarch64';
import { ARM_SYSCALLS } from '../syscalls/arm';
import { I386_SYSCALLS } from '../syscalls/i386';
import { X32_SYSCALLS } from '../syscalls/x32';
import { X86_64_SYSCALLS } from '../syscalls/x86_64';
import { AUDIT_ARCH } from './abi';

export interface ArchDef {
  /** The SCMP_ARCH_* name. */
  name: string;
  audit: number;
  table: Readonly<Record<string, number>>;
  /** Argument width libseccomp compares (ARCH_SIZE_32 for i386, x32 and arm). */
  bits: 32 | 64;
}

export const ARCHES: Record<string, ArchDef> = {
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
export const KNOWN_ARCHES = new Set([
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64',
  'SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64',
  'SCMP_ARCH_MIPSEL64N32', 'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_RISCV64',
  'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_LOONGARCH64',
]);

/** The architectures a filter on this host can meet, the native one first. */
export function hostArches(arch: string): string[] {
  const key = HOSTS[arch] ? arch : Object.keys(HOSTS).find((k) => HOSTS[k][0] === arch);
  if (!key) throw new HuskError(`seccomp: unsupported host architecture ${JSON.stringify(arch)}`);
  return HOSTS[key];
}
