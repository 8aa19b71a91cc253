// `run` in the foreground: signals sent to husk go on to the container's init, and when
// husk holds the container's terminal, it relays it to its own (raw mode, window size).
import * as fs from 'fs';
import * as tty from 'tty';
import { native } from '../native';

// Everything a user or an engine may send to `husk run`, except what Node cannot catch
// (SIGKILL, SIGSTOP) or what is husk's own business (SIGCHLD, SIGWINCH handled below).
const FORWARDED: NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGCONT', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGVTALRM', 'SIGPROF', 'SIGIO', 'SIGPWR', 'SIGSYS', 'SIGTRAP', 'SIGPIPE', 'SIGXCPU', 'SIGXFSZ', 'SIGURG',
];

export function forwardSignals(pid: number, consoleFd?: number): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of FORWARDED) {
    const handler = () => {
      try {
        process.kill(pid, sig);
      } catch {
        // the container is gone; its exit status comes next
      }
    };
    handlers.set(sig, handler);
    process.on(sig, handler);
  }
  if (consoleFd !== undefined && process.stdout.isTTY) {
    const resize = () => {
      try {
        native.setWindowSize(consoleFd, process.stdout.rows, process.stdout.columns);
      } catch {
        // the terminal is gone
      }
    };
    resize();
    handlers.set('SIGWINCH', resize);
    process.on('SIGWINCH', resize);
  }
  return () => {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  };
}

/** Copies the pty master to stdout and stdin to the master until the container hangs up. */
export function relayTerminal(master: number): Promise<void> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    const wasRaw = stdin.isTTY ? stdin.isRaw : false;
    if (stdin.isTTY) stdin.setRawMode(true);
    const input = (chunk: Buffer) => {
      let off = 0;
      while (off < chunk.length) {
        try {
          off += fs.writeSync(master, chunk, off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        }
      }
    };
    stdin.on('data', input);
    const output = new tty.ReadStream(master);
    output.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    const done = () => {
      stdin.off('data', input);
      if (stdin.isTTY) stdin.setRawMode(wasRaw);
      stdin.pause();
      output.destroy();
      resolve();
    };
    // EIO: the last holder of the slave (the container) closed it.
    output.on('error', done);
    output.on('end', done);
    output.on('close', done);
  });
}
