// A container's process's I/O, the same for create/run and exec: the terminal checks, the
// stdio pipes husk relays in the foreground, the pid file, and the foreground wait.
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { native } from '../native';
import type { Forwarding } from './foreground';
import { writeFileAtomic } from '../host/atomicWrite';
import { call } from '../host/call';

/** runc's rules for a terminal, in the words of a container (create, run) or a process (exec). */
const TERMINAL_ERRORS = {
  container: {
    detached: 'cannot allocate a terminal for a detached container without --console-socket',
    notAsked: '--console-socket given, but config.json does not ask for a terminal (process.terminal)',
    noTerminal: 'process.terminal is true but husk has no terminal to relay it to',
  },
  process: {
    detached: 'cannot allocate a terminal for a detached process without --console-socket',
    notAsked: '--console-socket given, but the process does not ask for a terminal',
    noTerminal: 'the process asks for a terminal but husk has none to relay it to',
  },
};

/** A terminal goes to --console-socket, or (in the foreground) husk relays it to its own. */
export function checkTerminal(of: 'container' | 'process', terminal: boolean, detach: boolean, consoleSocket: string | undefined): void {
  const errors = TERMINAL_ERRORS[of];
  if (terminal && detach && !consoleSocket) throw new HuskError(errors.detached);
  if (!terminal && consoleSocket) throw new HuskError(errors.notAsked);
  if (terminal && !detach && !consoleSocket) {
    // husk relays the process's pty to its own terminal, which it must have (the server asks
    // the front door, which tried for it).
    if (call.hasTty === false) throw new HuskError(`${errors.noTerminal}: open /dev/tty: the caller has no controlling terminal`);
    if (call.hasTty === undefined) {
      try {
        fs.closeSync(fs.openSync('/dev/tty', 'r+'));
      } catch (err) {
        throw new HuskError(`${errors.noTerminal}: open /dev/tty: ${reason(err)}`);
      }
    }
  }
}

/** Pipes for the process's stdin, stdout and stderr, each [the process's end, husk's end]. */
export type StdioPipes = [number, number][];

export function openStdioPipes(): StdioPipes {
  return [0, 1, 2].map((fd) => {
    const [r, w] = native.pipe();
    return fd === 0 ? [r, w] : [w, r];
  });
}

/** The process's ends (to plan as its fds 0, 1, 2) or husk's (to relay). */
export function pipeEnds(pipes: StdioPipes, side: 0 | 1): [number, number, number] {
  return [pipes[0][side], pipes[1][side], pipes[2][side]];
}

export function closePipeEnds(pipes: StdioPipes | undefined, side: 0 | 1): void {
  pipes?.forEach((p) => fs.closeSync(p[side]));
}

/** --pid-file: written to a temporary name and renamed, so a reader never sees half of it. */
export function writePidFile(file: string, pid: number): void {
  writeFileAtomic(path.resolve(file), String(pid));
}

/** In the foreground: forwards signals from now on, relays the terminal or the stdio pipes,
 * waits for the process and its output, and returns its status as a shell shows it. */
export async function waitInForeground(pid: number, forwarding: Forwarding, io: { consoleFd?: number; stdio?: [number, number, number] }): Promise<number> {
  const { relayTerminal, relayStdio } = await import('./foreground');
  forwarding.release();
  const relay = io.consoleFd !== undefined ? relayTerminal(io.consoleFd) : io.stdio ? relayStdio(io.stdio) : undefined;
  const status = await native.waitpidAsync(pid);
  await relay?.drained(2000, 10_000);
  forwarding.stop();
  return status.code ?? 128 + (status.signal ?? 0);
}
