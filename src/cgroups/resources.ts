// What the managers share about linux.resources: its type and the refusal every controller
// uses when a field cannot be applied in the host's layout.
import { HuskError } from '../errors';
import type { Resources } from '../spec/types';

export type { Resources };

/** A field that cannot be applied here: `<what>: <why>`, never silently dropped. */
export function refuse(what: string, why: string): HuskError {
  return new HuskError(`${what}: ${why}`);
}

/** True for a number that is set and not the "unset" 0. */
export function isSet(n: number | undefined | null): n is number {
  return n !== undefined && n !== null && n !== 0;
}
