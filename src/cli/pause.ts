// husk pause / husk resume: freeze and thaw every process of the container (runc's verbs).
import { log } from '../host/log';

import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function pause(root: string, id: string): void {
  require('../runtime/cgroupVerbs').pause(root, id, { warn: log.warn });
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('pause').argument('<id>').description('freeze every process of the container')
    .action(action('pause', (id: string) => pause(g.root, id)));
}
