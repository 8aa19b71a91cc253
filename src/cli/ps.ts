// husk ps: the container's pids as JSON, or the host's `ps` output limited to them.
// husk's flags end at the id: `husk ps ID -ef` passes -ef to ps(1), as runc does.
import { spawnSync } from 'child_process';
import { Command, Option } from 'commander';
import { HuskError } from '../errors';
import { ps as containerPids } from '../runtime/container';
import type { Action, GlobalOptions } from './globals';

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('ps').argument('<id>').argument('[psArgs...]').description('list the processes in a container')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .passThroughOptions()
    .action(action('ps', (id: string, psArgs: string[], opts: any) => ps(g.root, id, opts.format, psArgs[0] === '--' ? psArgs.slice(1) : psArgs)));
}

export function ps(root: string, id: string, format: 'table' | 'json', psArgs: string[]) {
  const pids = containerPids(root, id);
  if (format === 'json') {
    process.stdout.write(JSON.stringify(pids) + '\n');
    return;
  }
  const out = spawnSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' });
  if (out.error) throw new HuskError(`ps: ${out.error.message}`);
  if (out.status !== 0) throw new HuskError(`ps ${psArgs.join(' ')}: ${out.stderr.trim()}`);
  const lines = out.stdout.split('\n');
  const header = lines[0];
  const pidColumn = header.trim().split(/\s+/).indexOf('PID');
  if (pidColumn < 0) throw new HuskError('ps: its output has no PID column');
  process.stdout.write(header + '\n');
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (pids.includes(Number(fields[pidColumn]))) process.stdout.write(line + '\n');
  }
}
