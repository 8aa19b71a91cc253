// The one way husk replaces a file: write a temporary file beside it, then rename it over the
// old one, so a reader sees the old content or the new, never a part (state.json, pid files,
// the image store's indexes, the registry credentials).
import * as fs from 'fs';
import { threadId } from 'worker_threads';

// pid, thread (the server runs calls in worker threads of one process) and a count make the
// temporary name unique among writers (not crypto: loading it costs every husk call a few
// milliseconds).
let written = 0;

export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}-${threadId}-${written++}`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
