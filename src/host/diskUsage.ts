// Bytes in the files under a directory (symbolic links counted as themselves, what cannot be read
// skipped): a container's writable layer for `docker ps --size`, a volume for `system df`.
import * as fs from 'fs';
import * as path from 'path';

export function diskUsage(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else total += fs.lstatSync(p, { throwIfNoEntry: false })?.size ?? 0;
    }
  };
  walk(dir);
  return total;
}
