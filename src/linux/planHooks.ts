// The plan of a createContainer or startContainer hook: its program is opened in husk's mount
// namespace, then a child joins the container's namespaces (all but the user namespace) and
// execs it there, with the state on stdin and its output in a file.
import type { Hook } from '../spec/types';
import { joinNamespaces, namespacesOf } from './planNamespaces';
import type { Plan } from './plan';
import { Builder, q } from './planStep';

export interface HookPlanOptions {
  /** How messages name the hook: createContainer hook 0 ("/bin/x"). */
  name: string;
  /** The container's init and its namespace types. */
  pid: number;
  types: string[];
  /** husk's fds of the hook's stdin (the state) and of the file its output goes to. */
  stdinFd: number;
  outFd: number;
  trace: boolean;
}

export function buildHookPlan(hook: Hook, o: HookPlanOptions): Plan {
  const b = new Builder();
  b.add({ op: 'openExec', path: hook.path, trace: `open(${q(hook.path)}, O_PATH)`, what: `${o.name}: open` });
  const joins = namespacesOf(o.pid, o.types.filter((t) => t !== 'user'));
  joinNamespaces(b, joins, (j) => `${o.name}: join ${j.type} namespace`);
  b.add({ op: 'cloneInit', flags: 0, trace: 'clone()', what: `${o.name}: clone` });
  b.add({ op: 'dup2', oldfd: o.stdinFd, newfd: 0, trace: `dup2(${o.stdinFd}, 0)`, what: `${o.name}: stdin` });
  b.add({ op: 'dup2', oldfd: o.outFd, newfd: 1, trace: `dup2(${o.outFd}, 1)`, what: `${o.name}: stdout` });
  b.add({ op: 'dup2', oldfd: o.outFd, newfd: 2, trace: `dup2(${o.outFd}, 2)`, what: `${o.name}: stderr` });
  b.add({ op: 'closeFds', first: 3, trace: 'close_range(3, ~0, CLOSE_RANGE_CLOEXEC)', what: `${o.name}: close fds` });
  const argv = hook.args && hook.args.length ? hook.args : [hook.path];
  b.add({ op: 'exec', argv, envp: hook.env ?? [], trace: `execveat(${q(hook.path)})`, what: `${o.name}: exec` });
  return { steps: b.steps, trace: o.trace, pausesForHooks: false, warnings: [] };
}
