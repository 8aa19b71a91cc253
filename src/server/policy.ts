// Which calls the warm server takes. A call runs in the server only where that cannot change
// what it does: from the server's own pid, mount, user, cgroup and network namespaces and
// root (the server reads /proc, mounts and cgroups as its caller would), and for the verbs
// that need no process of their own.
import * as fs from 'fs';

/** Global flags that take a value (runc's), to find the verb after them. */
const GLOBAL_WITH_VALUE = new Set(['--root', '--log', '--log-format', '--rootless', '--criu']);

export function verbOf(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (!word.startsWith('-')) return word;
    if (GLOBAL_WITH_VALUE.has(word)) i++;
  }
  return undefined;
}

/** `image` (pulls with progress on a terminal, reads stdin as a stream) and `demo` are long
 * calls that gain nothing from a warm process: they run in one of their own. */
export function callNeedsOwnProcess(argv: string[]): boolean {
  const verb = verbOf(argv);
  return verb === 'image' || verb === 'demo';
}

const NAMESPACES = ['pid', 'mnt', 'user', 'cgroup', 'net'];

/** The caller `pid` (as it says) is the peer the kernel saw (so it is in our pid namespace),
 * and shares our namespaces and root. */
export function sameWorld(pid: number, peerPid: number): boolean {
  if (pid !== peerPid) return false;
  try {
    for (const ns of NAMESPACES) {
      if (fs.readlinkSync(`/proc/${pid}/ns/${ns}`) !== fs.readlinkSync(`/proc/self/ns/${ns}`)) return false;
    }
    return fs.readlinkSync(`/proc/${pid}/root`) === '/';
  } catch {
    return false;
  }
}
