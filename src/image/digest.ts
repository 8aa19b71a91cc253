// Content digests (`sha256:<hex>`) and the check every blob passes while it streams: its
// size and its digest must be the ones its descriptor names.
import { createHash, type Hash } from 'crypto';
import { HuskError } from '../errors';

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(text: string): boolean {
  return DIGEST.test(text);
}

export function checkDigest(text: unknown, where: string): string {
  if (typeof text !== 'string' || !isDigest(text)) {
    throw new HuskError(`${where}: ${JSON.stringify(text)} is not a digest (sha256:<64 hex digits>)`);
  }
  return text;
}

export function algorithmOf(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

export function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestOf(data: Buffer | string, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Short form for messages and tables: the first 12 hex digits. */
export function shortDigest(digest: string): string {
  return hexOf(digest).slice(0, 12);
}

/**
 * Hashes and counts bytes as they pass; check() compares with what the descriptor promised.
 * Seeding with bytes already on disk lets an interrupted download resume.
 */
export class DigestCounter {
  readonly hash: Hash;
  size = 0;

  constructor(readonly expected: string, readonly expectedSize: number | undefined, readonly what: string) {
    this.hash = createHash(algorithmOf(expected));
  }

  update(chunk: Buffer) {
    this.size += chunk.length;
    if (this.expectedSize !== undefined && this.size > this.expectedSize) {
      throw new HuskError(`${this.what}: more than the ${this.expectedSize} bytes its descriptor gives`);
    }
    this.hash.update(chunk);
  }

  check() {
    if (this.expectedSize !== undefined && this.size !== this.expectedSize) {
      throw new HuskError(`${this.what}: size ${this.size} bytes, but its descriptor gives ${this.expectedSize}`);
    }
    const actual = `${algorithmOf(this.expected)}:${this.hash.digest('hex')}`;
    if (actual !== this.expected) throw new HuskError(`${this.what}: digest mismatch: got ${actual}, expected ${this.expected}`);
  }
}
