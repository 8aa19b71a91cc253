// The plan's steps as TypeScript builds them: one type per op, its fields named in the
// kernel's words ({op: 'mknod', path, mode, major, minor, uid, gid}), checked by the compiler.
//
// native/plan.h keeps a step as plain data: a few strings, a flags word and five numbers
// (a..e), read in the child through one accessor per field (mknod_major(step)). STEP_LAYOUT
// below is where each field lives; plan.h's HUSK_STEP_FIELDS is the same table for C++, and
// test/unit/native-steps.test.ts fails when the two disagree (or when addon.cc's op names
// differ from these).

/** The plain-data slots of plan.h's Step. */
export interface Slots {
  path: string;
  source: string | null;
  fstype: string | null;
  data: string | null;
  flags: number;
  a: number | bigint;
  b: number | bigint;
  c: number | bigint;
  d: number | bigint;
  e: number | bigint;
  argv: string[];
  envp: string[];
  candidates: string[];
  groups: number[];
  filter: Buffer;
}

type Slot = keyof Slots;

const mountFields = { source: 'source', target: 'path', fstype: 'fstype', flags: 'flags', data: 'data' } as const;

/** For each op: its fields and the slot of plan.h's Step that carries each. */
export const STEP_LAYOUT = {
  cloneInit: { flags: 'flags', cgroupFd: 'a', intoCgroup: 'b' },
  notify: { message: 'a' },
  setsid: {},
  prctl: { option: 'a', arg2: 'b' },
  joinSessionKeyring: { name: 'source' },
  setns: { path: 'path', nstype: 'flags' },
  unshare: { flags: 'flags' },
  linkUp: { ifname: 'path' },
  openRoot: { path: 'path' },
  mkdir: { path: 'path' },
  mount: mountFields,
  copyUpMount: mountFields,
  mountSetattr: { path: 'path', attrSet: 'a', attrClr: 'b' },
  moveMount: { fromFd: 'a', toPath: 'path' },
  remountReadonly: { path: 'path', flags: 'flags' },
  maskPath: { path: 'path' },
  mknod: { path: 'path', mode: 'a', major: 'b', minor: 'c', uid: 'd', gid: 'e' },
  symlink: { target: 'source', linkpath: 'path' },
  pivotRoot: { path: 'path' },
  moveRoot: { path: 'path' },
  chroot: { path: 'path' },
  chdir: { path: 'path' },
  writeFile: { path: 'path', contents: 'source' },
  sethostname: { name: 'source' },
  setdomainname: { name: 'source' },
  setrlimit: { resource: 'a', soft: 'b', hard: 'c' },
  umask: { mask: 'a' },
  personality: { persona: 'a' },
  setgroups: { groups: 'groups' },
  setresgid: { gid: 'a' },
  setresuid: { uid: 'a' },
  dropBounding: { keep: 'a' },
  capset: { effective: 'a', permitted: 'b', inheritable: 'c', ambient: 'd' },
  console: { path: 'path', rows: 'a', cols: 'b', uid: 'c', gid: 'd' },
  dup2: { oldfd: 'a', newfd: 'b' },
  closeFds: { first: 'a' },
  openExecFifo: { fd: 'a' },
  openExec: { path: 'path' },
  findExecutable: { candidates: 'candidates' },
  seccomp: { flags: 'a', filter: 'filter' },
  waitExecFifo: {},
  exec: { argv: 'argv', envp: 'envp' },
} as const satisfies Record<string, Readonly<Record<string, Slot>>>;

export type StepOp = keyof typeof STEP_LAYOUT;

type Layout = typeof STEP_LAYOUT;
type FieldsOf<O extends StepOp> = {
  -readonly [F in keyof Layout[O]]?: Layout[O][F] extends Slot ? Slots[Layout[O][F]] : never;
};

/** What any step may carry besides its own fields (plan.h reads them for every op). */
export interface StepOptions {
  /** The path is inside the rootfs opened by openRoot, and resolved there. */
  inRoot?: boolean;
  /** Create a missing path: 1 a directory, 2 a file, 3 an ordinary directory (proc, sysfs). */
  create?: 0 | 1 | 2 | 3;
  /** This errno means "nothing to do". */
  okErrno?: number;
}

/** One step of the plan: `{op: 'mknod', path, mode, major, minor, uid, gid}`. */
export type NativeStep = { [O in StepOp]: { op: O } & FieldsOf<O> & StepOptions }[StepOp];

/** A step as the addon reads it (native/addon.cc): plan.h's slots by name. */
export type PlainStep = { op: StepOp } & Partial<Slots> & StepOptions;

/** Lays a step out in plan.h's slots. */
export function plainStep(step: NativeStep): PlainStep {
  const { op, inRoot, create, okErrno } = step;
  const plain: Record<string, unknown> = { op, inRoot, create, okErrno };
  const fields = STEP_LAYOUT[step.op] as Readonly<Record<string, Slot>>;
  for (const [field, slot] of Object.entries(fields)) {
    const value = (step as unknown as Record<string, unknown>)[field];
    if (value !== undefined) plain[slot] = value;
  }
  return plain as unknown as PlainStep;
}
