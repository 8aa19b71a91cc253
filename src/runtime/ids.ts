// Container ids. An id names a directory under the runtime root, so it must be a plain file
// name. The rule is runc's (libcontainer validateID): a non-empty string of ASCII letters,
// digits, "_", "+", "-" and ".", which is not "." or "..". (runc 1.1 used a regexp whose
// class also let "," through; later runc dropped that, and so does husk.) husk adds one
// limit runc leaves to mkdir: a file name is at most 255 bytes (NAME_MAX).
//
// Because "~", ":" and "@" can never appear in an id, the store may use them in the names
// of its own files under the root without colliding with a container.

import { HuskError } from '../errors';

const NAME_MAX = 255;
const ALLOWED = /^[A-Za-z0-9_+.-]+$/;

/** Throws unless `id` is a valid container id. */
export function validateId(id: string): void {
  const why = invalidIdReason(id);
  if (why) throw new HuskError(`container id ${JSON.stringify(id)} is invalid: ${why}`);
}

export function isValidId(id: string): boolean {
  return invalidIdReason(id) === undefined;
}

function invalidIdReason(id: string): string | undefined {
  if (typeof id !== 'string' || id.length === 0) return 'it is empty';
  if (!ALLOWED.test(id)) return 'only letters, digits, "_", "+", "-" and "." are allowed';
  if (id === '.' || id === '..') return 'it cannot be "." or ".."';
  if (id.length > NAME_MAX) return `it is longer than ${NAME_MAX} characters`;
  return undefined;
}
