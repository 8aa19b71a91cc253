// Short synchronous waits for the managers (freezing, emptying a cgroup before rmdir), the
// same way the lifecycle code waits: the verbs are synchronous command-line calls.
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
