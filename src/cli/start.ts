// husk start: the created container's process runs its program.
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('start').argument('<id>').description('start a created container')
    .action(action('start', (id: string) => require('../runtime/container').start(g.root, id)));
}
