// husk's command line: runc's global flags and verbs. Each verb lives in its own file and
// is loaded only when called, so that `husk state` does not pay for what `husk run` needs.
// This is the only place that prints errors: once, as `husk: <verb> <id>: <what>: <why>`.
import { Command, Option } from 'commander';
import { HuskError, reason } from '../errors';
import { oneLine, usageError } from './usage';

export interface GlobalOptions {
  root: string;
  log?: string;
  logFormat: 'text' | 'json';
  debug: boolean;
  systemdCgroup: boolean;
  trace: boolean;
}

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
  .option('-v, --version', 'print the version')
  .enablePositionalOptions()
  .showHelpAfterError(false)
  .configureOutput({ outputError: (str) => usageError(oneLine(str), program.opts()) });

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

const parseCount = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new HuskError(`--preserve-fds: ${JSON.stringify(value)} is not a non-negative integer`);
  return n;
};

function createOptions(cmd: Command): Command {
  return cmd
    .option('-b, --bundle <dir>', 'path to the bundle (default: current directory)', '.')
    .option('--pid-file <file>', 'write the init process\'s pid to this file')
    .option('--console-socket <path>', 'unix socket that receives the pty master of the container\'s terminal')
    .option('--no-pivot', 'do not use pivot_root (for a rootfs on a ramfs)')
    .option('--no-new-keyring', 'do not create a new session keyring')
    .option('--preserve-fds <n>', 'pass this many extra fds (from 3 on) into the container', parseCount, 0);
}

createOptions(program.command('create <id>').description('create a container; its process waits for start'))
  .action(action('create', async (id: string, opts: any) => {
    require('../native').native.setSubreaper();
    await require('../runtime/create').create({
      root: globals().root, id, bundle: opts.bundle, pidFile: opts.pidFile, consoleSocket: opts.consoleSocket,
      noPivot: opts.pivot === false, noNewKeyring: opts.newKeyring === false, preserveFds: opts.preserveFds, systemdCgroup: globals().systemdCgroup, detach: true,
    });
  }));

createOptions(program.command('run <id>').description('create and start a container, and wait for it (unless --detach)'))
  .option('-d, --detach', 'return once the container has started', false)
  .option('--keep', 'do not delete the container after it exits', false)
  .action(action('run', async (id: string, opts: any) => {
    return require('../runtime/create').run({
      root: globals().root, id, bundle: opts.bundle, pidFile: opts.pidFile, consoleSocket: opts.consoleSocket,
      noPivot: opts.pivot === false, noNewKeyring: opts.newKeyring === false, preserveFds: opts.preserveFds,
      systemdCgroup: globals().systemdCgroup, detach: opts.detach, keep: opts.keep,
    });
  }));

const collect = (value: string, previous: string[] = []) => [...previous, value];
program.command('exec <id> [command...]').description('run a new process in a running container')
  .option('-p, --process <file>', 'the process as OCI JSON (config.json\'s "process"); - for stdin')
  .option('-t, --tty', 'allocate a terminal', false)
  .option('--cwd <dir>', 'working directory in the container')
  .option('-e, --env <KEY=value>', 'add an environment variable (repeatable)', collect)
  .option('-u, --user <uid[:gid]>', 'user and group ids')
  .option('-g, --additional-gids <gid>', 'add a supplementary group (repeatable)', collect)
  .option('-c, --cap <capability>', 'add a capability (repeatable)', collect)
  .option('--no-new-privs', 'set no_new_privs for the process')
  .option('--apparmor <profile>', 'AppArmor profile for the process')
  .option('--process-label <label>', 'SELinux label for the process')
  .option('-d, --detach', 'return once the process runs', false)
  .option('--pid-file <file>', 'write the process\'s pid to this file')
  .option('--console-socket <path>', 'unix socket that receives the pty master')
  .option('--preserve-fds <n>', 'pass this many extra fds (from 3 on) into the process', parseCount, 0)
  .option('--cgroup <path>', 'accepted for runc compatibility: the process joins the container\'s cgroup')
  .option('--ignore-paused', 'allow exec in a paused container', false)
  .action(action('exec', async (id: string, command: string[], opts: any) => {
    return require('../runtime/exec').exec({
      root: globals().root, id, processFile: opts.process, args: command, tty: opts.tty, cwd: opts.cwd, env: opts.env,
      user: opts.user, additionalGids: (opts.additionalGids ?? []).map(Number), caps: opts.cap, noNewPrivs: opts.newPrivs === true ? false : opts.noNewPrivs,
      apparmor: opts.apparmor, detach: opts.detach, pidFile: opts.pidFile, consoleSocket: opts.consoleSocket,
      preserveFds: opts.preserveFds, ignorePaused: opts.ignorePaused,
    });
  }, 255));

program.command('start <id>').description('start a created container')
  .action(action('start', async (id: string) => {
    require('../native').native.setSubreaper();
    await require('../runtime/container').start(globals().root, id);
  }));

program.command('state <id>').description('print the state of a container as JSON')
  .action(action('state', (id: string) => {
    const { marshalRuncState } = require('../runtime/store');
    // Like runc: two-space indent and no final newline.
    process.stdout.write(marshalRuncState(require('../runtime/container').state(globals().root, id), '  '));
  }));

program.command('kill <id> [signal]').description('send a signal (default SIGTERM) to the container\'s init')
  .option('-a, --all', 'send it to every process in the container', false)
  .action(action('kill', (id: string, signal: string | undefined, opts: any) => {
    const { parseSignal } = require('../linux/signals');
    require('../runtime/container').kill(globals().root, id, parseSignal(signal ?? 'SIGTERM'), opts.all);
  }));

program.command('delete <id>').description('delete a stopped container (any container with --force)')
  .option('-f, --force', 'kill the container first if it still runs', false)
  .action(action('delete', async (id: string, opts: any) => {
    require('../native').native.setSubreaper();
    const container = require('../runtime/container');
    // runc: deleting a container that does not exist with --force is not an error.
    if (opts.force && !container.exists(globals().root, id)) return;
    await container.remove(globals().root, id, opts.force);
  }));

program.command('list').description('list containers')
  .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
  .option('-q, --quiet', 'print only the ids', false)
  .action(action('list', (opts: any) => {
    require('./list').list(globals().root, opts.format, opts.quiet);
  }));

program.command('ps <id> [psArgs...]').description('list the processes in a container')
  .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
  .action(action('ps', (id: string, psArgs: string[], opts: any) => {
    require('./ps').ps(globals().root, id, opts.format, psArgs);
  }));

program.command('features').description('print what this husk supports (the OCI features JSON)')
  .action(action('features', () => {
    const modules = require('../host/securityModules').securityModules();
    const out = require('../runtime/features').features({
      cgroupV1: true,
      cgroupV2: true,
      apparmor: modules.includes('apparmor'),
      selinux: modules.includes('selinux'),
    });
    process.stdout.write(JSON.stringify(out, null, 4) + '\n');
  }));

program.command('spec').description('write a default config.json into the bundle')
  .option('-b, --bundle <dir>', 'bundle directory', '.')
  .option('--rootless', 'a config for running as a non-root user', false)
  .action(action('spec', (opts: any) => {
    require('./spec').spec(opts.bundle, opts.rootless);
  }));

program.command('demo').description('run the embedded demo container: the probe reports the isolation it sees')
  .option('--json', 'print the probe\'s report as JSON', false)
  .action(action('demo', async (opts: any) => require('./demo').demo(globals(), opts.json)));

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

// --version is answered here rather than by commander's .version(), which would read
// package.json and the spec module on every call of every verb.
const first = process.argv[2];
if (first === '-v' || first === '--version') {
  process.stdout.write(versionText() + '\n');
  process.exit(0);
}

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`husk: ${reason(err)}\n`);
  process.exit(1);
});
