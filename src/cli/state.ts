// husk state: the container's state as runc prints it.
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('state').argument('<id>').description('print the state of a container as JSON')
    .action(action('state', (id: string) => {
      const { marshalRuncState } = require('../runtime/store');
      // Like runc: two-space indent and no final newline.
      process.stdout.write(marshalRuncState(require('../runtime/container').state(g.root, id), '  '));
    }));
}
