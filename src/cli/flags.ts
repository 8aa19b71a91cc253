// Option parsers shared by the verbs that start processes (create, run, exec).
import { HuskError } from '../errors';

/** A repeatable option: every value, in order. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --preserve-fds N. */
export function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new HuskError(`--preserve-fds: ${JSON.stringify(value)} is not a non-negative integer`);
  return n;
}
