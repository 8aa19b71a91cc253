// husk delete: a stopped container's state, cgroup and hooks' poststop; with --force any.
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('delete').argument('<id>').description('delete a stopped container (any container with --force)')
    .option('-f, --force', 'kill the container first if it still runs', false)
    .action(action('delete', async (id: string, opts: any) => {
      const container = require('../runtime/container');
      // runc: deleting a container that does not exist with --force is not an error.
      if (opts.force && !container.exists(g.root, id)) return;
      await container.remove(g.root, id, opts.force);
    }));
}
