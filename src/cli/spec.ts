// husk spec: a default config.json, as `runc spec` writes it.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError } from '../errors';
import { defaultSpec } from '../spec/defaults';
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function spec(bundle: string, rootless: boolean) {
  const file = path.join(bundle, 'config.json');
  if (fs.existsSync(file)) throw new HuskError(`File ${file} exists. Remove it first`);
  fs.writeFileSync(file, JSON.stringify(defaultSpec({ rootless, hostUid: process.geteuid?.(), hostGid: process.getegid?.() }), null, '\t'));
}

export function command(_g: GlobalOptions, action: Action): Command {
  return new Command('spec').description('write a default config.json into the bundle')
    .option('-b, --bundle <dir>', 'bundle directory', '.')
    .option('--rootless', 'a config for running as a non-root user', false)
    .action(action('spec', (opts: any) => spec(opts.bundle, opts.rootless)));
}
