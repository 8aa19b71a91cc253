// husk run: create and start a container, and in the foreground wait for it and delete it.
import { Command } from 'commander';
import type { RunOptions } from '../runtime/create';
import { bundleOptions, createOptions } from './create';
import type { Action, GlobalOptions } from './globals';

export function runOptions(id: string, opts: any, g: GlobalOptions): RunOptions {
  return { ...createOptions(id, opts, g), detach: opts.detach, keep: opts.keep };
}

export function command(g: GlobalOptions, action: Action): Command {
  return bundleOptions(new Command('run').argument('<id>').description('create and start a container, and wait for it (unless --detach)'))
    .option('-d, --detach', 'return once the container has started', false)
    .option('--keep', 'do not delete the container after it exits', false)
    .action(action('run', async (id: string, opts: any) => require('../runtime/create').run(runOptions(id, opts, g))));
}
