// The one synchronous sleep: the verbs are synchronous command-line calls, and some of their
// waits (an exec fifo, a process to stop, a cgroup to freeze or empty) poll.
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** The asynchronous one, for the verbs that keep an event loop (events, image pulls). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
