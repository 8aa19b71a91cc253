// The one way husk replaces a file: write a temporary file beside it, then rename it over the
// old one, so a reader sees the old content or the new, never a part (state.json, pid files,
// the image store's indexes, the registry credentials).
import * as fs from 'fs';
import { randomBytes } from 'crypto';

export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
