// --trace: every kernel step husk takes, in order, on stderr. Steps of the container's
// children arrive over the sync socket (native/sync.h) and are printed here by the parent;
// the parent's own steps (state and cgroup files, fifos, hooks) are printed as they happen.
let enabled = false;

/** --trace on or off, for the call that starts (the server runs many calls in one process). */
export function setTracing(on: boolean) {
  enabled = on;
}

export function tracing(): boolean {
  return enabled;
}

export function trace(who: string, line: string) {
  if (enabled) process.stderr.write(`[${who}] ${line}\n`);
}
