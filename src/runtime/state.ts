// The container state machine, in one place: which verb may act on a container in which
// status, and the exact words runc prints when it may not. Every verb calls
// checkTransition() with the live status (Store.refresh) before it touches anything.
//
// Behaviour checked against runc 1.1.5 (Debian 12) and runc's sources:
//   start   created only. "cannot start a container that has stopped", "cannot start an
//           already running container", otherwise "cannot start a container in the <s> state".
//   kill    created, running, paused; a stopped container is "container not running".
//           kill --all (row kill-all) signals whatever is left in the container, in any status.
//   delete  stopped, and created (runc kills the waiting init itself); otherwise
//           "cannot delete container <id> that is not stopped: <s>". delete --force
//           (row delete-force) accepts any status.
//   pause   running and created (a created container can be frozen too: it then shows
//           "paused" and returns to "created" on resume); otherwise "container not running".
//   resume  paused only: "container not paused".
//   exec    created and running; paused only with --ignore-paused (row exec-ignore-paused).
//   update  anything but stopped: "container not running".
//   events  anything but stopped: "container with id <id> is not running".
//   ps, state  any status.
// `creating` never shows in runc (its state.json appears only once the init waits); husk
// shows it while `create` runs, and only `delete --force`, `kill --all` and the read-only
// verbs accept it.

import { HuskError } from '../errors';
import type { ContainerStatus } from '../spec/types';

export type { ContainerStatus };

export const STATUSES: readonly ContainerStatus[] = ['creating', 'created', 'running', 'paused', 'stopped'];

/** A verb, or a verb with the flag that widens what it accepts (kill --all, delete --force...). */
export type Verb =
  | 'start'
  | 'kill'
  | 'kill-all'
  | 'delete'
  | 'delete-force'
  | 'pause'
  | 'resume'
  | 'exec'
  | 'exec-ignore-paused'
  | 'update'
  | 'events'
  | 'ps'
  | 'state';

/** The command-line flags that pick a widened row: the same as passing 'kill-all' etc. */
export interface VerbFlags {
  /** delete --force */
  force?: boolean;
  /** kill --all */
  all?: boolean;
  /** exec --ignore-paused */
  ignorePaused?: boolean;
}

/** Allowed, or refused with the message runc prints. */
type Rule = 'allowed' | ((id: string, status: ContainerStatus) => string);

const ok = 'allowed';
const notRunning: Rule = () => 'container not running';
const notPaused: Rule = () => 'container not paused';
const startRefused: Rule = (_id, s) => `cannot start a container in the ${s} state`;
const deleteRefused: Rule = (id, s) => `cannot delete container ${id} that is not stopped: ${s}`;
const execRefused: Rule = (_id, s) => `cannot exec in a ${s} container`;
const eventsRefused: Rule = (id) => `container with id ${id} is not running`;
const anyStatus = { creating: ok, created: ok, running: ok, paused: ok, stopped: ok } as const;

/** TRANSITIONS[verb][status]: whether `verb` may act on a container in `status`. */
export const TRANSITIONS: Readonly<Record<Verb, Readonly<Record<ContainerStatus, Rule>>>> = {
  start: {
    creating: startRefused,
    created: ok,
    running: () => 'cannot start an already running container',
    paused: startRefused,
    stopped: () => 'cannot start a container that has stopped',
  },
  kill: { creating: notRunning, created: ok, running: ok, paused: ok, stopped: notRunning },
  'kill-all': anyStatus,
  delete: { creating: deleteRefused, created: ok, running: deleteRefused, paused: deleteRefused, stopped: ok },
  'delete-force': anyStatus,
  pause: { creating: notRunning, created: ok, running: ok, paused: notRunning, stopped: notRunning },
  resume: { creating: notPaused, created: notPaused, running: notPaused, paused: ok, stopped: notPaused },
  exec: {
    creating: execRefused,
    created: ok,
    running: ok,
    paused: () => 'cannot exec in a paused container (use --ignore-paused to override)',
    stopped: execRefused,
  },
  'exec-ignore-paused': { creating: execRefused, created: ok, running: ok, paused: ok, stopped: execRefused },
  update: { creating: notRunning, created: ok, running: ok, paused: ok, stopped: notRunning },
  events: { creating: eventsRefused, created: ok, running: ok, paused: ok, stopped: eventsRefused },
  ps: anyStatus,
  state: anyStatus,
};

/** The table row for a verb and its flags: kill + {all} is 'kill-all', and so on. */
export function rowOf(verb: Verb, flags: VerbFlags = {}): Verb {
  if (verb === 'kill' && flags.all) return 'kill-all';
  if (verb === 'delete' && flags.force) return 'delete-force';
  if (verb === 'exec' && flags.ignorePaused) return 'exec-ignore-paused';
  return verb;
}

/** The refusal message, or undefined when `verb` may act on a container in `status`. */
export function transitionError(
  verb: Verb,
  status: ContainerStatus,
  id: string,
  flags: VerbFlags = {},
): string | undefined {
  const rule = TRANSITIONS[rowOf(verb, flags)][status];
  return rule === ok ? undefined : rule(id, status);
}

/** Throws runc's message when `verb` may not act on container `id` in `status`. */
export function checkTransition(verb: Verb, status: ContainerStatus, id: string, flags: VerbFlags = {}): void {
  const message = transitionError(verb, status, id, flags);
  if (message !== undefined) throw new HuskError(message);
}
