// husk exec: a new process in a running container, from runc's flags or a --process file.
// husk's own flags end at the command: `husk exec ID sh -c 'echo hi'` and `husk exec ID ls -l`
// pass -c and -l to the command (runc reads its flags only before the id; husk also takes
// them between the id and the command, and `--` ends them anywhere).
import { Command } from 'commander';
import type { ExecOptions } from '../runtime/exec';
import { collect, parseCount } from './flags';
import type { Action, GlobalOptions } from './globals';

/** What commander parsed (the id, the words after it, the options) -> the runtime's options.
 * A `--no-X` flag is stored by commander as `X: false`. */
export function execOptions(g: GlobalOptions, id: string, words: string[], opts: any, cmd: Command): ExecOptions {
  const args = commandAfterId(cmd, words);
  return {
    root: g.root, id, processFile: opts.process, args, tty: opts.tty, cwd: opts.cwd, env: opts.env,
    user: opts.user, additionalGids: (opts.additionalGids ?? []).map(Number), caps: opts.cap, noNewPrivs: opts.newPrivs === false,
    apparmor: opts.apparmor, detach: opts.detach, pidFile: opts.pidFile, consoleSocket: opts.consoleSocket,
    preserveFds: opts.preserveFds, ignorePaused: opts.ignorePaused,
  };
}

/** The words after the id: husk's flags up to the first other word (or `--`), then the command.
 * Flags found here are stored in the command's options like those before the id. */
function commandAfterId(cmd: Command, words: string[]): string[] {
  const { operands, unknown } = cmd.parseOptions(words);
  if (unknown.length) cmd.error(`error: unknown option '${unknown[0]}'`, { code: 'commander.unknownOption' });
  return operands;
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('exec').argument('<id>').argument('[command...]').description('run a new process in a running container')
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
    .passThroughOptions()
    .action(action('exec', (id: string, words: string[], opts: any, cmd: Command) => require('../runtime/exec').exec(execOptions(g, id, words, opts, cmd)), 255));
}
