// Pull progress on stderr: in a terminal, one line per layer redrawn in place (phase, a bar,
// bytes and speed); otherwise one plain line per finished step; nothing with --quiet.
import * as tty from 'tty';
import { call } from '../host/call';

export type Phase = 'waiting' | 'downloading' | 'downloaded' | 'unpacking' | 'done' | 'exists' | 'failed';

interface Item {
  id: string;
  label: string;
  total: number;
  done: number;
  phase: Phase;
  started: number;
  phaseStarted: number;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

export interface Progress {
  item(id: string, label: string, total: number): void;
  update(id: string, done: number, phase?: Phase): void;
  /** A line of its own (kept above the bars in a terminal). */
  line(text: string): void;
  end(): void;
}

/** Whether the stream is a terminal: for husk's own stderr, the caller's (a warm server's worker
 * writes a call's stderr to the fd its door sent). */
function isTerminal(stream: NodeJS.WriteStream): boolean {
  return stream === process.stderr ? tty.isatty(call.stderr) : Boolean(stream.isTTY);
}

export function createProgress(mode: 'auto' | 'quiet' | 'plain' | 'tty', stream: NodeJS.WriteStream = process.stderr): Progress {
  const resolved = mode === 'auto' ? (isTerminal(stream) ? 'tty' : 'plain') : mode;
  if (resolved === 'quiet') return { item() {}, update() {}, line() {}, end() {} };
  return resolved === 'tty' ? new TtyProgress(stream) : new PlainProgress(stream);
}

class PlainProgress implements Progress {
  private readonly items = new Map<string, Item>();

  constructor(private readonly out: NodeJS.WritableStream) {}

  item(id: string, label: string, total: number) {
    const now = Date.now();
    this.items.set(id, { id, label, total, done: 0, phase: 'waiting', started: now, phaseStarted: now });
  }

  update(id: string, done: number, phase?: Phase) {
    const item = this.items.get(id);
    if (!item) return;
    item.done = done;
    if (!phase || phase === item.phase) return;
    const now = Date.now();
    const seconds = (now - item.phaseStarted) / 1000;
    const rate = seconds > 0 ? ` (${formatBytes(Math.round(item.total / seconds))}/s)` : '';
    switch (phase) {
      case 'downloaded':
        this.out.write(`${item.label}: downloaded ${formatBytes(item.total)} in ${seconds.toFixed(1)} s${rate}\n`);
        break;
      case 'done':
        this.out.write(`${item.label}: ${item.phase === 'unpacking' ? `unpacked in ${seconds.toFixed(1)} s` : 'done'}\n`);
        break;
      case 'exists':
        this.out.write(`${item.label}: already in the store\n`);
        break;
      case 'failed':
        this.out.write(`${item.label}: failed\n`);
        break;
      default:
        break;
    }
    item.phase = phase;
    item.phaseStarted = now;
  }

  line(text: string) {
    this.out.write(`${text}\n`);
  }

  end() {}
}

class TtyProgress implements Progress {
  private readonly items: Item[] = [];
  private drawn = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream) {}

  item(id: string, label: string, total: number) {
    const now = Date.now();
    this.items.push({ id, label, total, done: 0, phase: 'waiting', started: now, phaseStarted: now });
    this.schedule();
  }

  update(id: string, done: number, phase?: Phase) {
    const item = this.items.find((i) => i.id === id);
    if (!item) return;
    item.done = done;
    if (phase && phase !== item.phase) {
      item.phase = phase;
      item.phaseStarted = Date.now();
    }
    this.schedule();
  }

  line(text: string) {
    this.clear();
    this.out.write(`${text}\n`);
    this.draw();
  }

  private schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, 100);
  }

  private clear() {
    if (this.drawn) this.out.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private render(item: Item): string {
    const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - 60));
    const names: Record<Phase, string> = {
      waiting: 'Waiting', downloading: 'Downloading', downloaded: 'Downloaded', unpacking: 'Unpacking', done: 'Pull complete', exists: 'Already exists', failed: 'Failed',
    };
    let text = `${item.label}: ${names[item.phase].padEnd(14)}`;
    if ((item.phase === 'downloading' || item.phase === 'unpacking') && item.total > 0) {
      const fraction = Math.min(1, item.done / item.total);
      const filled = Math.round(fraction * width);
      const seconds = (Date.now() - item.phaseStarted) / 1000;
      const speed = seconds > 0.2 ? `  ${formatBytes(Math.round(item.done / seconds))}/s` : '';
      text += ` [${'='.repeat(Math.max(0, filled - 1))}${filled ? '>' : ''}${' '.repeat(width - filled)}] ${formatBytes(item.done)}/${formatBytes(item.total)}${speed}`;
    }
    return text.slice(0, (this.out.columns ?? 200) - 1);
  }

  private draw() {
    this.clear();
    for (const item of this.items) this.out.write(`\x1b[2K${this.render(item)}\n`);
    this.drawn = this.items.length;
  }

  end() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }
}
