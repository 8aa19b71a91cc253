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
    const { configureLog, log } = require('../host/log');
    configureLog({ file: g.log, format: g.logFormat, debug: g.debug });
    if (g.trace) require('../host/trace').enableTrace();
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
verb('pause', '<id>', 'freeze every process of the container');
verb('resume', '<id>', 'thaw a paused container');
verb('update', '[options] <id>', 'update the resource limits of a container');
verb('events', '[options] <id>', 'print the container\'s stats and OOM events as JSON lines');
// ---- end cgroup verbs

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`husk: ${reason(err)}\n`);
  process.exit(1);
});
