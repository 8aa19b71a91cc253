// Container ids: runc's rule (letters, digits, _ + - ., not "." or "..").
import { describe, expect, it } from 'vitest';
import { isValidId, validateId } from '../../src/runtime/ids';

describe('validateId', () => {
  it.each(['t1', 'a..b', 'a-long-container-name.with+chars_', '.hidden', 'x'.repeat(255), 'UPPER_lower-0.9+'])(
    'accepts %s',
    (id) => {
      expect(() => validateId(id)).not.toThrow();
      expect(isValidId(id)).toBe(true);
    },
  );

  it.each([
    ['a/b', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['../etc', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['a b', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['a:b', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['a,b', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['é', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['~create-1-abc', 'only letters, digits, "_", "+", "-" and "." are allowed'],
    ['.', 'it cannot be "." or ".."'],
    ['..', 'it cannot be "." or ".."'],
    ['', 'it is empty'],
    ['x'.repeat(256), 'it is longer than 255 characters'],
  ])('rejects %j', (id, why) => {
    expect(() => validateId(id)).toThrow(`container id ${JSON.stringify(id)} is invalid: ${why}`);
    expect(isValidId(id)).toBe(false);
  });
});
