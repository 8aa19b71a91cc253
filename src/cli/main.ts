// husk's command line: runc's global flags and verbs. Each verb lives in its own file and
// is loaded only when called, so that `husk state` does not pay for what `husk run` needs.
// This is the only place that prints errors: once, as `husk: <verb> <id>: <what>: <why>`.
//
// main(argv) runs one call and returns its exit code without exiting, so that the warm
// server (src/server/) can run many calls in one process; run as a program, this file is the
// in-process husk (`node dist/cli/main.js ARGS`), which the front door also starts for a call
// no server takes.
import { Command, CommanderError, Help, Option } from 'commander';
import { HuskError, reason } from '../errors';
import { call } from '../host/call';
import type { GlobalOptions } from './globals';

/** Thrown to end the call at once with a code (`--version`). */
class EndCall {
  constructor(readonly code: number) {}
}

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

/** The verbs whose options live in their own file, `./<name>.ts` exporting `command(g, action)`,
 * loaded only when called; `terms` are their arguments for `husk --help`, which does not show
 * the hidden ones (husk's own helpers, not for users). */
const VERBS: [name: string, terms: string, description: string, hidden?: 'hidden'][] = [
  ['create', '[options] <id>', 'create a container; its process waits for start'],
  ['run', '[options] <id>', 'create and start a container, and wait for it (unless --detach)'],
  ['exec', '[options] <id> [command...]', 'run a new process in a running container'],
  ['start', '<id>', 'start a created container'],
  ['state', '<id>', 'print the state of a container as JSON'],
  ['kill', '[options] <id> [signal]', 'send a signal (default SIGTERM) to the container\'s init'],
  ['delete', '[options] <id>', 'delete a stopped container (any container with --force)'],
  ['list', '[options]', 'list containers'],
  ['ps', '[options] <id> [psArgs...]', 'list the processes in a container'],
  ['features', '', 'print what this husk supports (the OCI features JSON)'],
  ['spec', '[options]', 'write a default config.json into the bundle'],
  ['demo', '[options] [lesson]', 'run the demo container, or a lesson: one kind of isolation on and off, side by side'],
  // cgroup verbs (issue 4)
  ['pause', '<id>', 'freeze every process of the container'],
  ['resume', '<id>', 'thaw a paused container'],
  ['update', '[options] <id>', 'update the resource limits of a container'],
  ['events', '[options] <id>', 'print the container\'s stats and OOM events as JSON lines'],
  // the Docker Engine API (issue 13)
  ['daemon', '[options]', 'serve the Docker Engine API on a unix socket (docker, docker-compose, Testcontainers)'],
  ['daemon-monitor', '<config>', 'run one container of the daemon to its end (the daemon starts it)', 'hidden'],
];

/** Runs one husk command line (the words after the program name) and returns its exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
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
    .option('--explain', 'print every step husk takes in words, grouped in the phases of `docker run`, each kind with why it is there and the man page to read, on stderr', false)
    // Answered as soon as it is parsed, after any global flags (runc's `--root DIR --version`),
    // rather than by commander's .version(), which would read package.json on every call.
    .option('-v, --version', 'print the version')
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: (str) => usageError(str, program.opts()) })
    .on('option:version', () => {
      process.stdout.write(versionText() + '\n');
      throw new EndCall(0);
    });

  const globals = () => program.opts() as GlobalOptions;

  /** Sets up logging and tracing from the global flags and runs a verb; its code becomes the
   * call's (`failure` when it fails: 1, or 255 for exec, as runc). */
  function action(verb: string, fn: (...args: any[]) => Promise<number | void> | number | void, failure = 1) {
    return async (...args: any[]) => {
      const g = globals();
      const { configureLog, log } = require('../host/log');
      configureLog({ file: g.log, format: g.logFormat, debug: g.debug });
      const tracing = require('../host/trace') as typeof import('../host/trace');
      // --explain: one explainer per call (a worker of the server runs one call at a time).
      const explain = g.explain ? (require('../linux/explain') as typeof import('../linux/explain')) : undefined;
      tracing.setTracing(g.trace, explain ? explain.explainer((text) => process.stderr.write(text), explain.wantsColour()) : null);
      const id = typeof args[0] === 'string' ? args[0] : '';
      try {
        const code = await fn(...args);
        exitCode = typeof code === 'number' ? code : 0;
        tracing.flushExplain();
      } catch (err) {
        tracing.flushExplain();
        const prefix = id ? `${verb} ${id}` : verb;
        log.error(`${prefix}: ${reason(err)}`);
        if (g.debug && !(err instanceof HuskError) && err instanceof Error) process.stderr.write(`${err.stack}\n`);
        exitCode = failure;
      }
    };
  }

  const verbTerms = new Map<string, string>();
  program.configureHelp({
    subcommandTerm: (cmd) => (verbTerms.has(cmd.name()) ? `${cmd.name()} ${verbTerms.get(cmd.name())}`.trim() : new Help().subcommandTerm(cmd)),
  });
  for (const [name, terms, description, hidden] of VERBS) {
    verbTerms.set(name, terms);
    program.command(name, { hidden: hidden === 'hidden' }).description(description)
      .helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[args...]')
      .action(async (args: string[]) => {
        const cmd: Command = require(`./${name}`).command(globals(), action);
        cmd.name(`husk ${name}`)
          .showHelpAfterError(false)
          .configureOutput({ outputError: (str) => usageError(str, globals()) })
          .exitOverride();
        await cmd.parseAsync(args, { from: 'user' });
      });
    if (name === 'demo') {
      // ---- husk image (issue 6): its subcommands live in cli/image.ts, loaded only for this verb.
      program.command('image').description('images: pull, list, inspect, remove, prune, bundle, unbundle, run, login, logout')
        .helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[args...]')
        .action((args: string[]) => require('./image').image(args, globals(), action));
      // ---- husk network (issue 12): its subcommands live in cli/network.ts, loaded only for this verb.
      program.command('network').description('container networks (CNI): create, ls, inspect, rm, prune')
        .helpOption(false).allowUnknownOption().allowExcessArguments().passThroughOptions().argument('[args...]')
        .action((args: string[]) => require('./network').network(args, globals(), action));
    }
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof EndCall) return err.code;
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`husk: ${reason(err)}\n`);
    return 1;
  }
}

/** The in-process husk: one call, then exit with its code (after telling the front door, when
 * a door started this process). */
if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    if (call.door !== undefined) require('../runtime/door').endCall(code);
    process.exit(code);
  });
}
