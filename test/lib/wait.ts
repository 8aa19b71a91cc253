/*
 * Waiting, for every kind of test (integration, engines): one `sleep`, one `waitFor`.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns a truthy value, and returns that value; throws "timed out after
 * N ms waiting for <what>" after timeoutMs. The first polls come quickly (20 ms apart), later
 * ones at most 250 ms apart, so a slow check (one that runs an engine's command) does not load
 * the machine while a fast one still notices at once.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(delay);
    delay = Math.min(delay * 2, 250);
  }
}
