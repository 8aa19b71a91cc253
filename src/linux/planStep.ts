// What every part of the plan builds with: a step with the words husk shows for it, the list
// they go into, and the mount(2) step most parts need. See plan.ts for the whole.
import type { NativeStep } from '../native';
import { MS, flagNames } from './constants';

/** A step (src/native/steps.ts) with the words husk shows for it. */
export type PlanStep = NativeStep & {
  /** The system call, as `--trace` prints it: mount("proc", "/proc", "proc", MS_NOSUID, NULL). */
  trace: string;
  /** For error messages: mount "proc" on "/proc". */
  what: string;
  /** What an errno means for this step, where strerror would not say it: {[ENOTDIR]: ...}. */
  why?: Record<number, string>;
};

export class Builder {
  readonly steps: PlanStep[] = [];
  add(step: PlanStep) {
    this.steps.push(step);
  }
}

/** A string as trace and error messages quote it; NULL for none. */
export const q = (s: string | null | undefined) => (s === null || s === undefined ? 'NULL' : JSON.stringify(s));

export interface MountStepOptions {
  inRoot?: boolean;
  create?: 0 | 1 | 2 | 3;
  okErrno?: number;
  /** The target as messages show it, when it differs. */
  shown?: string;
}

/** mount(2): a new mount, a bind, a remount or a propagation change, by its flags. */
export function mountStep(source: string | null, target: string, fstype: string | null, flags: number,
  data: string | null, opts: MountStepOptions = {}): PlanStep {
  const shownTarget = opts.shown ?? target;
  const isRemount = (flags & MS.MS_REMOUNT) !== 0;
  const isPropagation = (flags & (MS.MS_PRIVATE | MS.MS_SLAVE | MS.MS_SHARED | MS.MS_UNBINDABLE)) !== 0;
  const what = isRemount ? `remount ${q(shownTarget)} with ${flagNames(flags, MS)}`
    : isPropagation ? `set propagation of ${q(shownTarget)} to ${flagNames(flags, MS)}`
      : `mount ${q(source ?? fstype)} on ${q(shownTarget)}`;
  return {
    op: 'mount', source, target, fstype, flags, data: data || null,
    inRoot: opts.inRoot, create: opts.create, okErrno: opts.okErrno,
    trace: `mount(${q(source)}, ${q(shownTarget)}, ${q(fstype)}, ${flagNames(flags, MS)}, ${data ? q(data) : 'NULL'})`,
    what,
  };
}
