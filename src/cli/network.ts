// husk network ...: create, ls, inspect, rm, prune; and the hidden attach and detach that the
// createRuntime and poststop hooks of a container's config.json run. Loaded only when
// `network` is the verb (main.ts hands over the arguments). Each subcommand parses, makes one
// call, prints.
//
// Unlike `husk image`, these calls run in the warm server too (its policy keeps a call there
// only from a caller in the server's own network namespace, which is the one a CNI plugin must
// run in), so nothing here exits the process: commander's errors end the call through main.ts.
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { HuskError, reason } from '../errors';
import { call } from '../host/call';
import type { Action, GlobalOptions } from './globals';
import { oneLine, usageError } from './usage';

function configDirOption(cmd: Command): Command {
  return cmd.option('--cni-config-dir <dir>', 'the CNI configuration directory (default: $HUSK_CNI_CONFIG_DIR or /etc/cni/net.d)');
}

/** The directory, absolute: attach records keep it so, and compare it with this one. */
function configDir(opts: { cniConfigDir?: string }): string {
  const { configDirOf } = require('../network/options') as typeof import('../network/options');
  return path.resolve(configDirOf(opts.cniConfigDir));
}

function networks() {
  return require('../network/networks') as typeof import('../network/networks');
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd()).join('\n') + '\n';
}

/** The container as the OCI state on a hook's stdin has it: {id, pid, bundle, ...}. */
function hookState(): import('../network/attach').HookState {
  const bad = (why: string) => new HuskError(`the container's state on stdin: ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(call.stdin, 'utf8'));
  } catch (err) {
    throw bad(err instanceof SyntaxError ? `not valid JSON: ${oneLine(err.message)}` : reason(err));
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const { id, pid, bundle } = json as Record<string, unknown>;
  if (typeof id !== 'string' || id === '') throw bad('no "id"');
  if (typeof bundle !== 'string' || bundle === '') throw bad('no "bundle"');
  // A stopped container's state (poststop's) has pid 0, or none.
  if (pid !== undefined && (!Number.isInteger(pid) || (pid as number) < 0)) throw bad(`"pid" ${JSON.stringify(pid)} is not a process id`);
  return { id, bundle, pid: (pid as number | undefined) || undefined };
}

export async function network(args: string[], g: GlobalOptions, action: Action): Promise<void> {
  const cmd = new Command('husk network')
    .description('container networks: the CNI networks of a configuration directory')
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .configureOutput({ outputError: (str) => usageError(`network: ${oneLine(str)}`, g) })
    .exitOverride();

  /** A subcommand, made here rather than by cmd.command(): commander's subcommands share their
   * parent's output settings (one object), and each usage error should name its subcommand:
   * `husk: network create: unknown option '-x'`. */
  const sub = (name: string, description: string, opts: { hidden?: boolean } = {}) => {
    const c = new Command(name).description(description)
      .showHelpAfterError(false)
      .configureOutput({ outputError: (str) => usageError(`network ${name}: ${oneLine(str)}`, g) })
      .exitOverride();
    cmd.addCommand(c, opts);
    return c;
  };

  configDirOption(sub('create', 'create a network (a NAME.conflist in the configuration directory)').argument('<name>'))
    .option('--subnet <cidr>', 'IPv4 subnet (default: the first free 10.74.N.0/24)')
    .option('--gateway <ip>', 'gateway address (default: the subnet\'s first address)')
    .addOption(new Option('-d, --driver <driver>', 'bridge: a bridge on the host, NAT out, published ports; macvlan, ipvlan: on the LAN of --parent').choices(['bridge', 'macvlan', 'ipvlan']).default('bridge'))
    .option('--parent <interface>', 'macvlan and ipvlan: the host interface to hang from')
    .option('--internal', 'no way out of the subnet (no NAT, no default route)', false)
    .action(action('network create', (name: string, opts: any) => {
      const list = networks().createNetwork(configDir(opts), {
        name, subnet: opts.subnet, gateway: opts.gateway, driver: opts.driver, parent: opts.parent, internal: opts.internal,
      });
      process.stdout.write(`${list.name}\n`);
    }));

  configDirOption(sub('ls', 'list the networks of the configuration directory').alias('list'))
    .option('-q, --quiet', 'print only the names', false)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(action('network ls', (opts: any) => {
      const { listNetworks } = require('../network/cni') as typeof import('../network/cni');
      const { log } = require('../host/log') as typeof import('../host/log');
      const { networks: lists, problems } = listNetworks(configDir(opts));
      for (const p of problems) log.warn(p);
      const rows = lists.map(networks().networkSummary);
      if (opts.quiet) {
        process.stdout.write(rows.map((r) => `${r.name}\n`).join(''));
      } else if (opts.format === 'json') {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      } else {
        const lines = [['NAME', 'DRIVER', 'SUBNET', 'FILE']];
        for (const r of rows) lines.push([r.name, r.driver, r.subnets.join(',') || '-', r.file]);
        process.stdout.write(table(lines));
      }
    }));

  configDirOption(sub('inspect', 'print networks as JSON: their file, configuration and attached containers').argument('<names...>'))
    .action(action('network inspect', (names: string[], opts: any) => {
      const { attachedTo } = require('../network/attach') as typeof import('../network/attach');
      const { ensureNetwork, networkSummary } = networks();
      const dir = configDir(opts);
      const out = names.map((name) => {
        const list = ensureNetwork(dir, name);
        const { driver, subnets, file } = networkSummary(list);
        const containers = [...new Set(attachedTo(list.name, dir).map((r) => r.containerId))];
        return { name: list.name, file, driver, subnets, config: list.raw, containers };
      });
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    }));

  configDirOption(sub('rm', 'remove networks (refused while containers are attached)').alias('remove').argument('<names...>'))
    .action(action('network rm', (names: string[], opts: any) => {
      const { removeNetwork, networkName } = networks();
      const dir = configDir(opts);
      for (const name of names) {
        removeNetwork(dir, name);
        process.stdout.write(`${networkName(name)}\n`);
      }
    }));

  sub('prune', 'detach the containers of this network namespace whose process is gone')
    .action(action('network prune', async () => {
      const { sweep } = require('../network/attach') as typeof import('../network/attach');
      for (const id of await sweep()) process.stdout.write(`Released: ${id}\n`);
    }));

  sub('check', 'ask the plugins whether a container\'s network is still as they set it up (CNI CHECK)')
    .argument('<container>')
    .action(action('network check', async (id: string) => {
      const { check } = require('../network/attach') as typeof import('../network/attach');
      for (const line of await check(id)) process.stdout.write(`${line}\n`);
    }));

  // The hooks: `husk network attach ARGS` (createRuntime) and `husk network detach` (poststop),
  // with the OCI state on stdin. ARGS are attachArgs' words, read back by parseAttachArgs.
  sub('attach', '(hook) attach the container of the state on stdin to a network', { hidden: true })
    .helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[args...]')
    .action(action('network attach', async (words: string[]) => {
      const { parseAttachArgs } = require('../network/options') as typeof import('../network/options');
      const { attach } = require('../network/attach') as typeof import('../network/attach');
      const o = parseAttachArgs(words);
      await attach({ ...o, configDir: path.resolve(o.configDir) }, hookState());
    }));

  sub('detach', '(hook) detach the container of the state on stdin from its networks', { hidden: true })
    .action(action('network detach', async () => {
      const { detach } = require('../network/attach') as typeof import('../network/attach');
      await detach(hookState());
    }));

  if (!args.length || args[0] === 'help' || args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(cmd.helpInformation());
    return;
  }
  await cmd.parseAsync(args, { from: 'user' });
}
