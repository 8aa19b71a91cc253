// husk events: the container's stats as runc prints them (`--stats` once, or every
// --interval), and an "oom" event whenever the OOM killer kills in it.
import { log } from '../host/log';

export async function events(root: string, id: string, stats: boolean, interval: string): Promise<void> {
  const verbs = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
  await verbs.events(root, id, { stats, intervalMs: verbs.parseDuration(interval), write: (line) => process.stdout.write(line) }, { warn: log.warn });
}
