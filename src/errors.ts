// The one error type that crosses husk's layers. Lower layers throw it with a message that
// names what was wrong and where ("config.json: process.args must be a non-empty array");
// the CLI prefixes the verb and container id and prints it once.

export class HuskError extends Error {
  /** errno name from the kernel (EPERM, ENOENT, ...), when a syscall failed. */
  readonly code?: string;
  /** The plan step that failed, when the failure came from the container's setup. */
  readonly step?: string;

  constructor(message: string, opts: { code?: string; step?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HuskError';
    this.code = opts.code;
    this.step = opts.step;
  }
}

/** Turns a Node system error into a lower-case "why" (`no such file or directory`). */
export function reason(err: unknown): string {
  if (err instanceof HuskError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') {
    const m = /^[A-Z]+: (.*?), /.exec(e.message);
    return m ? m[1] : e.code.toLowerCase();
  }
  return e && e.message ? e.message : String(err);
}
