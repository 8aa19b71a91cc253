// husk resume: thaw a paused container.
import { log } from '../host/log';

import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function resume(root: string, id: string): void {
  require('../runtime/cgroupVerbs').resume(root, id, { warn: log.warn });
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('resume').argument('<id>').description('thaw a paused container')
    .action(action('resume', (id: string) => resume(g.root, id)));
}
