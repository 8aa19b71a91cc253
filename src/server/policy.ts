// Which calls the warm server takes. A call runs in the server only where that cannot change
// what it does: from a caller in the server's own namespaces and root (the server reads /proc,
// mounts and cgroups as its caller would), with the server's own credentials and limits (the
// hooks it runs are its children), and for the verbs that need no process of their own.
import * as fs from 'fs';

/** Global flags that take a value (runc's), to find the verb after them. */
const GLOBAL_WITH_VALUE = new Set(['--root', '--log', '--log-format', '--rootless', '--criu']);

/** Where the verb is in argv (after the global flags), or -1. */
function verbIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith('-')) return i;
    if (GLOBAL_WITH_VALUE.has(word)) i++;
  }
  return -1;
}

export function verbOf(argv: string[]): string | undefined {
  const i = verbIndex(argv);
  return i < 0 ? undefined : argv[i];
}

/** `image` verbs (loads from stdin, prunes), `demo`, `daemon` and `daemon-monitor` (a
 * container's parent for its whole life) run in a process of their own. Two image verbs are
 * served: `image pull` (the server stops it when its caller goes, see worker.ts) and
 * `image run` with its image stored, as short as the `run` it becomes. An image run that must
 * pull first runs in its own process: the door holds a run's signals for its container, so the
 * caller's Ctrl-C would not reach a pull in the server. `env` is the caller's environment. */
export function callNeedsOwnProcess(argv: string[], env: Record<string, string | undefined> = {}): boolean {
  const i = verbIndex(argv);
  const verb = i < 0 ? undefined : argv[i];
  if (verb === 'image') {
    if (argv[i + 1] === 'pull') return false;
    if (argv[i + 1] !== 'run') return true;
    const { imageRunNeedsPull } = require('../cli/image') as typeof import('../cli/image');
    return imageRunNeedsPull(argv.slice(i + 2), env);
  }
  return verb === 'demo' || verb === 'daemon' || verb === 'daemon-monitor';
}

const NAMESPACES = ['pid', 'mnt', 'user', 'cgroup', 'net', 'uts', 'ipc', 'time'];

/** The lines of /proc/PID/status that say what a process may do: its ids, groups, capability
 * sets, no_new_privs and seccomp mode. */
const CREDENTIALS = /^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):/;

function credentials(pid: number | 'self'): string {
  return fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => CREDENTIALS.test(l)).join('\n');
}

/** What else bounds the processes a caller starts (hooks run by the server are its children):
 * its hard rlimits (soft ones each process may raise up to them, and engines written in Go
 * do) and its security label. */
function bounds(pid: number | 'self'): string {
  const hard = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').slice(1)
    .map((line) => line.slice(0, 26).trim() + '=' + line.slice(47, 68).trim());
  let label = '';
  try {
    label = fs.readFileSync(`/proc/${pid}/attr/current`, 'utf8');
  } catch {
    // no security module
  }
  return [...hard, label].join('\n');
}

/** A namespace link, or undefined where the kernel has no such namespace. */
function namespace(pid: number | 'self', ns: string): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/${ns}`);
  } catch {
    return undefined;
  }
}

/** The caller `pid` (as it says) is the peer the kernel saw (so it is in our pid namespace),
 * and the server would run its call as it would run itself: in the same namespaces and root,
 * with the same ids, capabilities, no_new_privs, seccomp, hard rlimits and security label.
 * Otherwise a confined caller would escape its confinement through the server (the hooks the
 * server runs would have the server's), and an unconfined one inherit another's. (A hook gets
 * the server's nice value and oom_score_adj, which engines set differently for each of their
 * processes; the container's processes, which the front door clones, get the caller's.) */
export function sameWorld(pid: number, peerPid: number): boolean {
  if (pid !== peerPid) return false;
  try {
    if (fs.readlinkSync(`/proc/${pid}/root`) !== '/') return false;
    const theirs = world(pid);
    ours ??= world('self');
    return theirs.every((value, i) => value === ours![i]);
  } catch {
    return false;
  }
}

/** Everything sameWorld compares, as strings: the namespaces, credentials and bounds. */
function world(pid: number | 'self'): (string | undefined)[] {
  return [...NAMESPACES.map((ns) => namespace(pid, ns)), credentials(pid), bounds(pid)];
}

/** The server's own world, read once: it does not change while the server lives. */
let ours: (string | undefined)[] | undefined;
