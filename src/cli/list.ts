// husk list: runc's table (Go tabwriter: columns padded to max(12, widest + 3), the last one
// not padded), `--format json` (one line, "null" when empty) or the ids alone (-q).
import { list as listContainers } from '../runtime/container';
import { marshalRuncState } from '../runtime/store';
import { Command, Option } from 'commander';
import type { Action, GlobalOptions } from './globals';

export function list(root: string, format: 'table' | 'json', quiet: boolean) {
  const states = listContainers(root);
  if (quiet) {
    for (const s of states) process.stdout.write(`${s.id}\n`);
    return;
  }
  if (format === 'json') {
    process.stdout.write((states.length ? `[${states.map((s) => marshalRuncState(s)).join(',')}]` : 'null') + '\n');
    return;
  }
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
  for (const s of states) rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, s.owner]);
  const widths = rows[0].map((_, i) => Math.max(12, ...rows.map((r) => r[i].length + 3)));
  for (const r of rows) process.stdout.write(r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join('') + '\n');
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('list').description('list containers')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'print only the ids', false)
    .action(action('list', (opts: any) => list(g.root, opts.format, opts.quiet)));
}
