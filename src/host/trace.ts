// --trace: every kernel step husk takes, in order, on stderr. Steps of the container's
// children arrive over the sync socket (native/sync.h) and are printed here by the parent;
// the parent's own steps (state and cgroup files, fifos, hooks) are printed as they happen.
//
// --explain: the same steps for a learner. Each trace() may carry an event, the step as plain
// data ({kind: 'cgroupWrite', file, value}, or {kind: 'step', step} for a step of the plan);
// the explainer the CLI installs for the call (src/linux/explain.ts) turns them into words.
// This package only passes them on, so that every layer can report a step without importing
// the layer that explains it.

/** A step as plain data: `kind` names it in the explanation table (src/linux/explain.ts). */
export interface TraceEvent {
  kind: string;
  [field: string]: unknown;
}

/** What --explain installs for a call. */
export interface Explainer {
  /** One step: `line` is what --trace would print, `event` the step as data (if known). */
  step(who: string, line: string, event: TraceEvent | undefined): void;
  /** Print what is held back (steps are grouped in phases until the process runs). */
  flush(): void;
}

let enabled = false;
let explainer: Explainer | null = null;

/** --trace on or off, or --explain with its explainer, for the call that starts (the server
 * runs many calls in one process, one at a time in each worker thread). */
export function setTracing(on: boolean, explain: Explainer | null = null) {
  enabled = on;
  explainer = explain;
}

/** Whether the children should report every step (for --trace or --explain). */
export function tracing(): boolean {
  return enabled || explainer !== null;
}

/** `event` null: --explain told the step ahead (explainAhead). */
export function trace(who: string, line: string, event?: TraceEvent | null) {
  if (enabled) process.stderr.write(`[${who}] ${line}\n`);
  if (explainer && event !== null) explainer.step(who, line, event);
}

/** A step for --explain only, told before it happens: --trace prints it once it is done. */
export function explainAhead(who: string, event: TraceEvent) {
  explainer?.step(who, '', event);
}

/** Prints what --explain holds back: before the container's process runs, and at the end of a call. */
export function flushExplain() {
  explainer?.flush();
}
