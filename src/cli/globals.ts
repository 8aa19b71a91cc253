// The global flags (runc's), parsed by main.ts and handed to every verb, and the shape of the
// wrapper main.ts gives each verb's action. Types only: importing this file loads nothing.

export interface GlobalOptions {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
  trace: boolean;
  explain: boolean;
}

/** Wraps a verb's action: sets up logging from the global flags, runs `fn`, prints its error
 * once and exits with its code (`failure` when it fails: 1, or 255 for exec, as runc). */
export type Action = (
  verb: string,
  fn: (...args: any[]) => Promise<number | void> | number | void,
  failure?: number,
) => (...args: any[]) => Promise<void>;
