// config.json `linux.seccomp` -> validated, normalised rules: the default action and each
// rule's action as the filter's return value, one rule per system call name in config order
// (split where runc splits it), the listed architectures, the seccomp(2) flags. Every error
// names the field (`linux.seccomp.syscalls[3].action`); what runc skips is skipped with a
// warning. No BPF here: compiler.ts turns the rules into a program.
import { HuskError } from '../../errors';
import type { Seccomp } from '../../spec/types';
import { SECCOMP_FILTER_FLAG, SECCOMP_RET } from './abi';
import { ARCHES, KNOWN_ARCHES } from './arches';

const EPERM = 1;

export type Operator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';
const OPERATORS: readonly Operator[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];

/** One comparison of a system call argument, its operands as unsigned 64-bit integers. */
export interface Condition {
  index: number;
  op: Operator;
  value: bigint;
  valueTwo: bigint;
}

/** One system call name with its action and its ANDed conditions. */
export interface Rule {
  name: string;
  action: number;
  conditions: Condition[];
  /** Where in config.json it came from, for messages: linux.seccomp.syscalls[3]. */
  at: string;
}

const FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: SECCOMP_FILTER_FLAG.TSYNC,
  SECCOMP_FILTER_FLAG_LOG: SECCOMP_FILTER_FLAG.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: SECCOMP_FILTER_FLAG.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV,
};

/** The filter's return value for an SCMP_ACT_* name (runc's getAction). */
function actionValue(
  action: unknown,
  errnoRet: unknown,
  at: { action: string; errnoRet: string },
  fail: (at: string, why: string) => never,
): number {
  const data = (): number => {
    if (errnoRet === undefined || errnoRet === null) return EPERM;
    if (typeof errnoRet !== 'number' || !Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > 0xffff) {
      fail(at.errnoRet, `${JSON.stringify(errnoRet)} must be an integer from 0 to 65535`);
    }
    return errnoRet as number;
  };
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SECCOMP_RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SECCOMP_RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SECCOMP_RET.TRAP;
    case 'SCMP_ACT_ERRNO':
      return (SECCOMP_RET.ERRNO | data()) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (SECCOMP_RET.TRACE | data()) >>> 0;
    case 'SCMP_ACT_ALLOW':
      return SECCOMP_RET.ALLOW;
    case 'SCMP_ACT_LOG':
      return SECCOMP_RET.LOG;
    case 'SCMP_ACT_NOTIFY':
      return SECCOMP_RET.USER_NOTIF;
    default:
      return fail(at.action, `${JSON.stringify(action)} is not an action`);
  }
}

/** A comparison operand as an unsigned 64-bit integer. */
function u64(
  v: unknown,
  at: string,
  fail: (at: string, why: string) => never,
  warn: (m: string) => void,
): bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(at, `${JSON.stringify(v)} must be an integer`);
  // JSON.parse keeps 53 bits: 18446744073709551615 arrives as 2^64, and means all ones.
  if (v === 2 ** 64) return (1n << 64n) - 1n;
  if (!Number.isSafeInteger(v)) {
    warn(`${at}: ${v} is beyond 2^53 and may have lost precision when config.json was parsed`);
  }
  return BigInt.asUintN(64, BigInt(v));
}

/** The conditions as one string, the same whatever their order (to find repeated ones). */
function canonical(conditions: Condition[]): string {
  return conditions
    .map((c) => `${c.index}:${c.op}:${c.value}:${c.valueTwo}`)
    .sort()
    .join(',');
}

/** A seccomp profile, validated and normalised. */
export interface SeccompRules {
  /** The default action's return value. */
  defaultAction: number;
  /** The architectures config.json lists (SCMP_ARCH_* names). */
  listed: Set<string>;
  /** One rule per system call name, in config order. */
  rules: Rule[];
  /** seccomp(2) flags: SECCOMP_FILTER_FLAG_*. */
  flags: number;
  /** Some rule returns SCMP_ACT_NOTIFY. */
  notify: boolean;
}

export interface RulesOptions {
  /** Prefix of error messages ("config.json"). */
  where: string;
  /** Told about what is skipped (unknown system call names, flags that cannot apply). */
  warn: (message: string) => void;
}

/** Validates linux.seccomp and turns it into rules; throws a HuskError naming the bad field. */
export function seccompRules(seccomp: Seccomp, opts: RulesOptions): SeccompRules {
  const { where, warn } = opts;
  const fail = (at: string, why: string): never => {
    throw new HuskError(`${where}: ${at} ${why}`);
  };
  const s = seccomp as unknown as Record<string, unknown>;

  // The default action.
  if (s.defaultAction === 'SCMP_ACT_NOTIFY') {
    fail('linux.seccomp.defaultAction', '"SCMP_ACT_NOTIFY" cannot be the default action');
  }
  const defaultAction = actionValue(
    s.defaultAction,
    s.defaultErrnoRet,
    { action: 'linux.seccomp.defaultAction', errnoRet: 'linux.seccomp.defaultErrnoRet' },
    fail,
  );

  // Architectures: the ones listed (the compiler keeps those this host's kernel can report).
  const listed = new Set<string>();
  const architectures = s.architectures ?? [];
  if (!Array.isArray(architectures)) fail('linux.seccomp.architectures', 'must be an array');
  (architectures as unknown[]).forEach((name, i) => {
    if (typeof name !== 'string' || !KNOWN_ARCHES.has(name)) {
      fail(`linux.seccomp.architectures[${i}]`, `${JSON.stringify(name)} is not an architecture`);
    }
    listed.add(name as string);
  });

  // Rules, one per system call name (runc's specconv), in config order.
  const rules: Rule[] = [];
  let notify = false;
  const syscalls = s.syscalls ?? [];
  if (!Array.isArray(syscalls)) fail('linux.seccomp.syscalls', 'must be an array');
  (syscalls as unknown[]).forEach((entry, i) => {
    const at = `linux.seccomp.syscalls[${i}]`;
    if (typeof entry !== 'object' || entry === null) fail(at, 'must be an object');
    const e = entry as Record<string, unknown>;
    const action = actionValue(e.action, e.errnoRet, { action: `${at}.action`, errnoRet: `${at}.errnoRet` }, fail);
    if (!Array.isArray(e.names) || e.names.length === 0) fail(`${at}.names`, 'must be a non-empty array');
    const names = e.names as unknown[];
    names.forEach((n, j) => {
      if (typeof n !== 'string' || n === '') fail(`${at}.names[${j}]`, 'must be a non-empty string');
    });
    if (action === SECCOMP_RET.USER_NOTIF) {
      notify = true;
      // runc refuses it: the write that hands the listener fd to the runtime would wait for
      // a listener that can only get the fd through that very write.
      // The init talks to husk over its sync socket after the filter is in: a notified call
      // there would wait for a listener that only gets the fd through that very call.
      for (const own of ['write', 'sendmsg', 'recvmsg']) {
        if (names.includes(own)) fail(at, `SCMP_ACT_NOTIFY cannot be used for the ${own} system call`);
      }
    }
    const args = e.args ?? [];
    if (!Array.isArray(args)) fail(`${at}.args`, 'must be an array');
    const conditions = (args as unknown[]).map((a, j): Condition => {
      const aat = `${at}.args[${j}]`;
      if (typeof a !== 'object' || a === null) fail(aat, 'must be an object');
      const arg = a as Record<string, unknown>;
      if (typeof arg.index !== 'number' || !Number.isInteger(arg.index) || arg.index < 0 || arg.index > 5) {
        fail(`${aat}.index`, `${JSON.stringify(arg.index)} must be an argument index from 0 to 5`);
      }
      if (!OPERATORS.includes(arg.op as Operator)) fail(`${aat}.op`, `${JSON.stringify(arg.op)} is not an operator`);
      return {
        index: arg.index as number,
        op: arg.op as Operator,
        value: u64(arg.value, `${aat}.value`, fail, warn),
        valueTwo: arg.valueTwo === undefined ? 0n : u64(arg.valueTwo, `${aat}.valueTwo`, fail, warn),
      };
    });
    // runc: "if two or more arguments have the same condition, revert to old behavior, adding
    // each condition as a separate rule".
    const indexes = conditions.map((c) => c.index);
    const split = new Set(indexes).size !== indexes.length;
    for (const name of names as string[]) {
      if (split) for (const c of conditions) rules.push({ name, action, conditions: [c], at });
      else rules.push({ name, action, conditions, at });
    }
  });
  if (notify && !s.listenerPath) {
    fail('linux.seccomp.listenerPath', 'must be set when a rule uses SCMP_ACT_NOTIFY');
  }

  // Flags.
  let flags = 0;
  const flagNames = s.flags ?? [];
  if (!Array.isArray(flagNames)) fail('linux.seccomp.flags', 'must be an array');
  (flagNames as unknown[]).forEach((f, i) => {
    const bit = typeof f === 'string' ? FLAGS[f] : undefined;
    if (bit === undefined) fail(`linux.seccomp.flags[${i}]`, `${JSON.stringify(f)} is not a seccomp filter flag`);
    if (bit === SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV && !notify) {
      const flag = `linux.seccomp.flags[${i}] SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`;
      warn(`${where}: ${flag} ignored: no rule uses SCMP_ACT_NOTIFY`);
      return;
    }
    flags |= bit!;
  });
  if (notify) {
    flags |= SECCOMP_FILTER_FLAG.NEW_LISTENER;
    // The kernel refuses TSYNC with NEW_LISTENER unless a failed sync reports ESRCH.
    if (flags & SECCOMP_FILTER_FLAG.TSYNC) flags |= SECCOMP_FILTER_FLAG.TSYNC_ESRCH;
  }

  // Names no architecture knows are skipped (runc logs them at debug level).
  const unknown = new Set<string>();
  for (const rule of rules) {
    if (unknown.has(rule.name)) continue;
    if (!Object.values(ARCHES).some((a) => Object.hasOwn(a.table, rule.name))) {
      unknown.add(rule.name);
      warn(`${where}: ${rule.at}: unknown system call ${JSON.stringify(rule.name)} ignored`);
    }
  }

  // Same conditions, different actions: libseccomp's EEXIST, an error in runc. Rules runc
  // never adds (the default action, unknown names) cannot clash.
  const seen = new Map<string, Rule>();
  for (const rule of rules) {
    if (rule.conditions.length === 0 || rule.action === defaultAction || unknown.has(rule.name)) continue;
    const key = `${rule.name}|${canonical(rule.conditions)}`;
    const first = seen.get(key);
    if (first && first.action !== rule.action) {
      fail(rule.at, `repeats the conditions of ${first.at} for ${JSON.stringify(rule.name)} with another action`);
    }
    if (!first) seen.set(key, rule);
  }

  return { defaultAction, listed, rules, flags, notify };
}
