// Option parsers shared by the verbs that start processes (create, run, exec).
import { HuskError } from '../errors';
import type { GlobalOptions } from './globals';

/** A repeatable option: every value, in order. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --preserve-fds N. */
export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new HuskError(`--preserve-fds: ${JSON.stringify(value)} is not a non-negative integer`);
  return n;
}

/** The global flags again, for a call husk makes later on the caller's behalf (the front door's
 * `delete` after `run` in the foreground): the same root, log, trace, explain and debug. */
export function globalArgs(g: GlobalOptions): string[] {
  return [
    '--root', g.root,
    ...(g.log ? ['--log', g.log, '--log-format', g.logFormat] : []),
    ...(g.debug ? ['--debug'] : []),
    ...(g.trace ? ['--trace'] : []),
    ...(g.explain ? ['--explain'] : []),
  ];
}
