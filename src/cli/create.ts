// husk create: a container whose process waits for `husk start`.
import { Command } from 'commander';
import type { CreateOptions } from '../runtime/create';
import { globalArgs, parseCount } from './flags';
import type { Action, GlobalOptions } from './globals';

/** The flags create and run share, as runc names them. */
export function bundleOptions(cmd: Command): Command {
  return cmd
    .option('-b, --bundle <dir>', 'path to the bundle (default: current directory)', '.')
    .option('--pid-file <file>', 'write the init process\'s pid to this file')
    .option('--console-socket <path>', 'unix socket that receives the pty master of the container\'s terminal')
    .option('--no-pivot', 'do not use pivot_root (for a rootfs on a ramfs)')
    .option('--no-new-keyring', 'do not create a new session keyring')
    .option('--preserve-fds <n>', 'pass this many extra fds (from 3 on) into the container', parseCount, 0);
}

/** commander's options -> the runtime's. A `--no-X` flag is stored by commander as `X: false`. */
export function createOptions(id: string, opts: any, g: GlobalOptions): CreateOptions {
  return {
    root: g.root, id, bundle: opts.bundle, pidFile: opts.pidFile, consoleSocket: opts.consoleSocket,
    noPivot: opts.pivot === false, noNewKeyring: opts.newKeyring === false, preserveFds: opts.preserveFds,
    systemdCgroup: g.systemdCgroup, detach: true, globalArgs: globalArgs(g),
  };
}

export function command(g: GlobalOptions, action: Action): Command {
  return bundleOptions(new Command('create').argument('<id>').description('create a container; its process waits for start'))
    .action(action('create', async (id: string, opts: any) => {
      await require('../runtime/create').create(createOptions(id, opts, g));
    }));
}
