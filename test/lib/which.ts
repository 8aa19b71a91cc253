/*
 * Finding the programs the tests drive (runtimes, engines, busybox), for every kind of test.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The repository's root. */
export const REPO = path.resolve(__dirname, '..', '..');

/**
 * Finds an executable on PATH, then in the sbin directories root has (where Debian puts runc
 * and the daemons), or undefined.
 */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
