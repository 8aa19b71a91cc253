// `run` in the foreground: signals sent to husk go on to the container's init, and when
// husk holds the container's terminal, it relays it to its own (raw mode, window size).
import * as fs from 'fs';
import * as tty from 'tty';
import { native } from '../native';

// Everything a user or an engine may send to `husk run`, except what Node cannot catch
// (SIGKILL, SIGSTOP), what is husk's own business (SIGCHLD, SIGWINCH handled below), and
// what the process itself raises or Node uses (SIGPROF for its profiler, SIGSEGV, SIGTRAP...).
const FORWARDED: NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGCONT', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGPIPE', 'SIGXCPU', 'SIGXFSZ', 'SIGURG',
];

export interface Forwarding {
  /** The container's process runs: forward what was held back, and from now on at once. */
  release(): void;
  stop(): void;
}

export function forwardSignals(pid: number, consoleFd?: number): Forwarding {
  const handlers = new Map<NodeJS.Signals, () => void>();
  let held: NodeJS.Signals[] | undefined = [];
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // the container is gone; its exit status comes next
    }
  };
  for (const sig of FORWARDED) {
    const handler = () => (held ? held.push(sig) : send(sig));
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
  return {
    release() {
      const pending = held ?? [];
      held = undefined;
      for (const sig of pending) send(sig);
    },
    stop() {
      for (const [sig, handler] of handlers) process.off(sig, handler);
    },
  };
}

/** A relay of the container's output. Called once the container's process has exited,
 * drained() waits for the output's end, or until none came for `quietMs`, or `capMs` at most:
 * a process that escaped the container may hold the other end open, quiet or chatty. */
export interface Relay {
  drained(quietMs: number, capMs: number): Promise<void>;
}

interface RelayControl extends Relay {
  /** Output came: the quiet period starts again. */
  touch(): void;
}

function relay(done: Promise<void>, stop: () => void): RelayControl {
  let timer: NodeJS.Timeout | undefined;
  return {
    touch() {
      timer?.refresh();
    },
    drained(quietMs, capMs) {
      let cap: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, quietMs);
        cap = setTimeout(resolve, capMs);
      });
      return Promise.race([done, limit]).then(() => {
        clearTimeout(timer);
        clearTimeout(cap);
        timer = undefined;
        stop();
      });
    },
  };
}

/** Copies stdin into the process's stdin pipe (closing it at end of input) and its stdout
 * and stderr pipes to ours, as `runc run` does in the foreground without a terminal. */
export function relayStdio([stdinW, stdoutR, stderrR]: [number, number, number]): Relay {
  const input = fs.createWriteStream('', { fd: stdinW });
  input.on('error', () => undefined);
  process.stdin.on('error', () => undefined);
  process.stdin.pipe(input);
  const copy = (fd: number, to: NodeJS.WriteStream) => new Promise<void>((resolve) => {
    const out = fs.createReadStream('', { fd });
    out.on('data', (chunk) => {
      to.write(chunk);
      control.touch();
    });
    out.on('error', () => resolve());
    out.on('close', () => resolve());
  });
  const done = Promise.all([copy(stdoutR, process.stdout), copy(stderrR, process.stderr)]).then(() => undefined);
  const control = relay(done, () => {
    process.stdin.unpipe(input);
    process.stdin.pause();
    input.destroy();
  });
  return control;
}

/** Copies the pty master to stdout and stdin to the master until the container hangs up. */
export function relayTerminal(master: number): Relay {
  let finish = () => undefined as void;
  const done = new Promise<void>((resolve) => {
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
    output.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      control.touch();
    });
    finish = () => {
      stdin.off('data', input);
      if (stdin.isTTY) stdin.setRawMode(wasRaw);
      stdin.pause();
      output.destroy();
      resolve();
    };
    // EIO: the last holder of the slave (the container) closed it.
    output.on('error', finish);
    output.on('end', finish);
    output.on('close', finish);
  });
  const control = relay(done, () => finish());
  return control;
}
