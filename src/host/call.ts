// The call husk is running: whose stdio, cwd, pid and terminal it has, and the front door
// (native/frontdoor.cc) that cloned... or will clone... its container's processes.
//
// Run as `node dist/cli/main.js`, a call is the process itself: fds 0, 1, 2, process.cwd(),
// process.pid. Under the front door it also has the door's socket (HUSK_FRONT_DOOR_FD), over
// which it asks the door to clone (runtime/launch.ts) and to wait in the foreground. In the
// warm server (src/server/), one worker thread runs one call at a time and sets all of this
// from the door's Call message before it runs the command line.

export interface Call {
  stdin: number;
  stdout: number;
  stderr: number;
  /** The caller's pid (LISTEN_PID is compared with it; its /proc/PID/cgroup is "husk's own"). */
  pid: number;
  /** The caller has a controlling terminal, to relay a container's terminal to. */
  hasTty?: boolean;
  /** The front door's socket: the door clones the container's processes and waits for them. */
  door?: number;
  /** Aborted once the caller has gone (the warm server watches its door's socket): a long call
   * that is not the caller's container stops (a pull). */
  gone?: AbortSignal;
}

function doorFromEnvironment(): number | undefined {
  const fd = Number(process.env.HUSK_FRONT_DOOR_FD);
  delete process.env.HUSK_FRONT_DOOR_FD;
  return Number.isInteger(fd) && fd > 2 ? fd : undefined;
}

const door = doorFromEnvironment();

/** Started by a door (its one-shot child), the caller is the door, our parent. */
export const call: Call = { stdin: 0, stdout: 1, stderr: 2, pid: door !== undefined ? process.ppid : process.pid, door };

/** Starts the next call (the server's workers): everything above, replaced. */
export function beginCall(next: Call): void {
  for (const key of Object.keys(call) as (keyof Call)[]) delete call[key];
  Object.assign(call, next);
}
