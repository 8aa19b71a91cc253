// husk events: the container's stats as runc prints them (`--stats` once, or every
// --interval), and an "oom" event whenever the OOM killer kills in it.
import { log } from '../host/log';

import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export async function events(root: string, id: string, stats: boolean, interval: string): Promise<void> {
  const verbs = require('../runtime/cgroupVerbs') as typeof import('../runtime/cgroupVerbs');
  await verbs.events(root, id, { stats, intervalMs: verbs.parseDuration(interval), write: (line) => process.stdout.write(line) }, { warn: log.warn });
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('events').argument('<id>').description('print the container\'s stats and OOM events as JSON lines')
    .option('--stats', 'print the stats once and exit', false)
    .option('--interval <duration>', 'how often to print the stats', '5s')
    .action(action('events', (id: string, opts: any) => events(g.root, id, opts.stats, opts.interval)));
}
