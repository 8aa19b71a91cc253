// husk's command line: runc's global flags and verbs. Each verb lives in its own file and
// is loaded only when called, so that `husk state` does not pay for what `husk run` needs.
// This is the only place that prints errors: once, as `husk: <verb> <id>: <what>: <why>`.
import { Command, Help, Option } from 'commander';
import { HuskError, reason } from '../errors';
import type { GlobalOptions } from './globals';

const program = new Command('husk');
program
  .description('a Linux container runtime (OCI), runc-compatible')
  .option('--root <dir>', 'directory for the state of containers (default: /run/husk, or $XDG_RUNTIME_DIR/husk when not root)', defaultRoot())
  .option('--log <file>', 'write the log to this file (errors are also printed on stderr)')
  .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']).default('text'))
  .option('--debug', 'log debug messages', false)
  .option('--systemd-cgroup', 'treat cgroupsPath as systemd slice:prefix:name', false)
  .option('--rootless <value>', 'accepted for runc compatibility (auto, true, false)')
  .option('--criu <path>', 'accepted for runc compatibility; checkpointing is not supported')
  .option('--trace', 'print every kernel step husk takes, with its arguments and result, on stderr', false)
  // Answered as soon as it is parsed, after any global flags (runc's `--root DIR --version`),
  // rather than by commander's .version(), which would read package.json on every call.
  .option('-v, --version', 'print the version')
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .configureOutput({ outputError: (str) => usageError(str, program.opts()) })
  .on('option:version', () => {
    process.stdout.write(versionText() + '\n');
    process.exit(0);
  });

/** runc's choice: /run/husk for root; for another user their runtime dir, or a private /tmp one. */
function defaultRoot(): string {
  const uid = process.geteuid?.() ?? 0;
  if (uid === 0) return '/run/husk';
  return process.env.XDG_RUNTIME_DIR ? `${process.env.XDG_RUNTIME_DIR}/husk` : `/tmp/husk-${uid}`;
}

function versionText(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const pkg = require('../../package.json');
  const { OCI_VERSION } = require('../spec/defaults');
  return `husk version ${pkg.version}\nspec: ${OCI_VERSION}\nnode: ${process.version}`;
}

/** A command-line error, on one line (usage.ts is loaded only for one). */
function usageError(str: string, g: Partial<GlobalOptions>) {
  const { oneLine, usageError: print } = require('./usage') as typeof import('./usage');
  print(oneLine(str), g);
}

function globals(): GlobalOptions {
  return program.opts() as GlobalOptions;
}

/** Sets up logging and tracing from the global flags, runs a verb, and exits with its code
 * (`failure` when it fails: 1, or 255 for exec, as runc). */
function action(verb: string, fn: (...args: any[]) => Promise<number | void> | number | void, failure = 1) {
  return async (...args: any[]) => {
    const g = globals();
    const { configureLog, log } = require('../runtime/log');
    configureLog({ file: g.log, format: g.logFormat, debug: g.debug });
    if (g.trace) require('../runtime/trace').enableTrace();
    const id = typeof args[0] === 'string' ? args[0] : '';
    try {
      const code = await fn(...args);
      process.exit(typeof code === 'number' ? code : 0);
    } catch (err) {
      const prefix = id ? `${verb} ${id}` : verb;
      log.error(`${prefix}: ${reason(err)}`);
      if (g.debug && !(err instanceof HuskError) && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exit(failure);
    }
  };
}

/** A verb whose options live in its own file, `./<name>.ts` exporting `command(g, action)`,
 * loaded only when it is called: main.ts hands over the words after the verb. `terms` are its
 * arguments for `husk --help`. */
const verbTerms = new Map<string, string>();
program.configureHelp({
  subcommandTerm: (cmd) => (verbTerms.has(cmd.name()) ? `${cmd.name()} ${verbTerms.get(cmd.name())}`.trim() : new Help().subcommandTerm(cmd)),
});

function verb(name: string, terms: string, description: string) {
  verbTerms.set(name, terms);
  program.command(name).description(description)
    .helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[args...]')
    .action(async (args: string[]) => {
      const cmd: Command = require(`./${name}`).command(globals(), action);
      cmd.name(`husk ${name}`)
        .showHelpAfterError(false)
        .configureOutput({ outputError: (str) => usageError(str, globals()) })
        .exitOverride((err) => process.exit(err.exitCode));
      await cmd.parseAsync(args, { from: 'user' });
    });
}

verb('create', '[options] <id>', 'create a container; its process waits for start');
verb('run', '[options] <id>', 'create and start a container, and wait for it (unless --detach)');
verb('exec', '[options] <id> [command...]', 'run a new process in a running container');
verb('start', '<id>', 'start a created container');
verb('state', '<id>', 'print the state of a container as JSON');
verb('kill', '[options] <id> [signal]', 'send a signal (default SIGTERM) to the container\'s init');
verb('delete', '[options] <id>', 'delete a stopped container (any container with --force)');
verb('list', '[options]', 'list containers');
verb('ps', '[options] <id> [psArgs...]', 'list the processes in a container');
verb('features', '', 'print what this husk supports (the OCI features JSON)');
verb('spec', '[options]', 'write a default config.json into the bundle');
verb('demo', '[options]', 'run the embedded demo container: the probe reports the isolation it sees');

// ---- husk image (issue 6): its subcommands live in cli/image.ts, loaded only for this verb.
program.command('image').description('images: pull, list, inspect, remove, prune, bundle, unbundle, run, login, logout')
  .helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[args...]')
  .action((args: string[]) => require('./image').image(args, globals(), action));
// ---- end husk image

// ---- cgroup verbs (issue 4): pause, resume, update, events; each file loaded only for its verb.
program.command('pause <id>').description('freeze every process of the container')
  .action(action('pause', (id: string) => require('./pause').pause(globals().root, id)));

program.command('resume <id>').description('thaw a paused container')
  .action(action('resume', (id: string) => require('./resume').resume(globals().root, id)));

program.command('update <id>').description('update the resource limits of a container')
  .option('-r, --resources <file>', 'OCI LinuxResources JSON from this file, or - for stdin (the other options are then ignored)')
  .option('--blkio-weight <weight>', 'block IO weight, 10 to 1000')
  .option('--cpu-period <usecs>', 'CPU CFS period')
  .option('--cpu-quota <usecs>', 'CPU CFS quota per period')
  .option('--cpu-burst <usecs>', 'CPU CFS burst')
  .option('--cpu-share <shares>', 'CPU shares (relative weight)')
  .option('--cpu-shares <shares>', 'the same as --cpu-share')
  .option('--cpu-rt-period <usecs>', 'CPU realtime period')
  .option('--cpu-rt-runtime <usecs>', 'CPU realtime runtime per period')
  .option('--cpu-idle <0|1>', 'SCHED_IDLE for the cgroup')
  .option('--cpuset-cpus <cpus>', 'CPUs to use (0-3,5)')
  .option('--cpuset-mems <mems>', 'memory nodes to use')
  .option('--memory <bytes>', 'memory limit (200M, 1g; -1 for none)')
  .option('--memory-reservation <bytes>', 'memory reservation (soft limit)')
  .option('--memory-swap <bytes>', 'memory plus swap limit (-1 for unlimited swap)')
  .option('--kernel-memory <bytes>', 'ignored, as in runc')
  .option('--kernel-memory-tcp <bytes>', 'ignored, as in runc')
  .option('--pids-limit <n>', 'maximum number of processes')
  .action(action('update', (id: string, opts: any) => require('./update').update(globals().root, id, opts)));

program.command('events <id>').description('print the container\'s stats and OOM events as JSON lines')
  .option('--stats', 'print the stats once and exit', false)
  .option('--interval <duration>', 'how often to print the stats', '5s')
  .action(action('events', async (id: string, opts: any) => require('./events').events(globals().root, id, opts.stats, opts.interval)));
// ---- end cgroup verbs

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`husk: ${reason(err)}\n`);
  process.exit(1);
});
