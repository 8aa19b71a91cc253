// husk kill: a signal to the container's init, or with --all to all its processes.
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('kill').argument('<id>').argument('[signal]').description('send a signal (default SIGTERM) to the container\'s init')
    .option('-a, --all', 'send it to every process in the container', false)
    .action(action('kill', (id: string, signal: string | undefined, opts: any) => {
      const { parseSignal } = require('../linux/signals');
      require('../runtime/container').kill(g.root, id, parseSignal(signal ?? 'SIGTERM'), opts.all);
    }));
}
