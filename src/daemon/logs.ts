// A container's json-file log, as Docker's json-file driver writes and reads it: one JSON object
// a line, {"log":"text\n","stream":"stdout","time":"2026-12-04T16:30:52.123456789Z"}, output
// split on newlines (a line longer than 16 KiB goes in 16 KiB pieces, the last without "\n"),
// rotated to <log>.1 ... <log>.(max-file - 1) when max-size would be passed. The monitor
// (monitor.ts) writes it; `docker logs` reads it back as Docker's stream (readLogs).
import * as fs from 'fs';
import { Readable } from 'stream';

export type StreamName = 'stdout' | 'stderr';

/** Docker's json-file driver flushes a line without its newline once it reaches this size. */
export const MAX_LINE = 16 * 1024;

export interface LogEntry {
  log: string;
  stream: StreamName;
  time: string;
}

// ------------------------------------------------------------------------------ timestamps

/** Now, as Go's RFC3339Nano in UTC (what Docker writes): nanoseconds, trailing zeros trimmed.
 * The wall clock gives milliseconds; the monotonic clock adds the digits below them. */
export function nowRFC3339Nano(ms: number = Date.now(), subMillisecondNs: number = Number(process.hrtime.bigint() % 1_000_000n)): string {
  return rfc3339Nano(ms, subMillisecondNs);
}

export function rfc3339Nano(ms: number, subMillisecondNs = 0): string {
  const iso = new Date(ms).toISOString(); // 2026-12-04T16:30:52.123Z
  const fraction = (iso.slice(20, 23) + String(subMillisecondNs).padStart(6, '0')).replace(/0+$/, '');
  return iso.slice(0, 19) + (fraction ? '.' + fraction : '') + 'Z';
}

/** An RFC3339Nano time as seconds after the epoch (with the nanoseconds as the fraction). */
export function timeSeconds(time: string): number {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(time);
  if (!m) return Date.parse(time) / 1000;
  return Date.parse(m[1] + 'Z') / 1000 + Number(`0.${m[2] ?? '0'}`);
}

// ------------------------------------------------------------------------------ lines

/** Splits output into the log's lines: each complete line with its "\n", and pieces of
 * MAX_LINE bytes of a longer one; what is left (less than MAX_LINE, no newline) waits for more. */
export function splitLines(pending: Buffer, chunk: Buffer): { lines: Buffer[]; rest: Buffer } {
  let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  const lines: Buffer[] = [];
  for (;;) {
    const nl = buf.indexOf(0x0a);
    if (nl >= 0 && nl < MAX_LINE) {
      lines.push(buf.subarray(0, nl + 1));
      buf = buf.subarray(nl + 1);
    } else if (buf.length >= MAX_LINE) {
      lines.push(buf.subarray(0, MAX_LINE));
      buf = buf.subarray(MAX_LINE);
    } else {
      break;
    }
  }
  return { lines, rest: Buffer.from(buf) };
}

export function encodeEntry(line: Buffer, stream: StreamName, time: string): string {
  return JSON.stringify({ log: line.toString('utf8'), stream, time }) + '\n';
}

export function parseEntry(text: string): LogEntry | undefined {
  try {
    const e = JSON.parse(text);
    if (typeof e?.log !== 'string' || (e.stream !== 'stdout' && e.stream !== 'stderr')) return undefined;
    return { log: e.log, stream: e.stream, time: typeof e.time === 'string' ? e.time : '' };
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------ frames

/** Docker's multiplexed stream: an 8-byte header (stream 1 stdout, 2 stderr; three zero bytes;
 * the size, big-endian u32), then the bytes. */
export function frame(stream: StreamName | 1 | 2, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream === 'stdout' || stream === 1 ? 1 : 2;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

/** Reads frames back (for tests and clients): complete frames and the bytes left over. */
export function parseFrames(buf: Buffer): { frames: { stream: number; data: Buffer }[]; rest: Buffer } {
  const frames: { stream: number; data: Buffer }[] = [];
  let off = 0;
  while (buf.length - off >= 8) {
    const size = buf.readUInt32BE(off + 4);
    if (buf.length - off - 8 < size) break;
    frames.push({ stream: buf[off], data: buf.subarray(off + 8, off + 8 + size) });
    off += 8 + size;
  }
  return { frames, rest: buf.subarray(off) };
}

// ------------------------------------------------------------------------------ the writer

export interface LogWriterOptions {
  /** Rotate before a write would make the file bigger than this (bytes; 0 or none: never). */
  maxSize?: number;
  /** Docker's max-file: the files kept in all, the live one included (default 1: the log is
   * cut, no rotated file is kept). */
  maxFiles?: number;
}

/** The json-file log of one container, written synchronously (the monitor has nothing else to
 * do with the output, and a line is never half in one file and half in the next). */
export class JsonFileWriter {
  private fd: number;
  private size: number;
  private pending: Record<StreamName, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };

  constructor(readonly path: string, private readonly o: LogWriterOptions = {}, private readonly clock: () => string = nowRFC3339Nano) {
    this.fd = fs.openSync(path, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(stream: StreamName, chunk: Buffer): void {
    const { lines, rest } = splitLines(this.pending[stream], chunk);
    this.pending[stream] = rest;
    for (const line of lines) this.append(encodeEntry(line, stream, this.clock()));
  }

  /** The output has ended: a last line without its newline is written as it is. */
  flush(stream?: StreamName): void {
    for (const s of stream ? [stream] : (['stdout', 'stderr'] as const)) {
      if (!this.pending[s].length) continue;
      this.append(encodeEntry(this.pending[s], s, this.clock()));
      this.pending[s] = Buffer.alloc(0);
    }
  }

  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }

  private append(entry: string): void {
    const bytes = Buffer.from(entry);
    if (this.o.maxSize && this.size > 0 && this.size + bytes.length > this.o.maxSize) this.rotate();
    fs.writeSync(this.fd, bytes);
    this.size += bytes.length;
  }

  /** <log>.(n-1) is dropped, each <log>.i becomes <log>.(i+1), the log becomes <log>.1. */
  private rotate(): void {
    fs.closeSync(this.fd);
    const kept = Math.max(1, this.o.maxFiles ?? 1) - 1;
    if (kept === 0) {
      this.fd = fs.openSync(this.path, 'w', 0o640);
    } else {
      for (let i = kept - 1; i >= 1; i--) renameIfThere(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      fs.renameSync(this.path, `${this.path}.1`);
      this.fd = fs.openSync(this.path, 'a', 0o640);
    }
    this.size = 0;
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

// ------------------------------------------------------------------------------ the reader

export interface ReadLogsOptions {
  follow: boolean;
  /** The last n lines only (of those the other filters keep). */
  tail?: number;
  /** Seconds after the epoch (fractions allowed): lines at or after, at or before. */
  since?: number;
  until?: number;
  /** Each line starts with its time (RFC3339Nano) and a space, as `docker logs -t`. */
  timestamps: boolean;
  stdout: boolean;
  stderr: boolean;
  /** The container had a terminal: raw bytes, not frames. */
  tty: boolean;
  /** With follow: the log ends (the monitor is gone) once this settles. */
  done?: Promise<unknown>;
}

/** The log files oldest first: <log>.N ... <log>.1, <log>. */
function logFiles(logPath: string): string[] {
  const rotated: string[] = [];
  for (let i = 1; fs.existsSync(`${logPath}.${i}`); i++) rotated.unshift(`${logPath}.${i}`);
  return fs.existsSync(logPath) ? [...rotated, logPath] : rotated;
}

/** What a reader of entries keeps and how it shows them. */
function renderer(o: ReadLogsOptions): (e: LogEntry) => Buffer | undefined {
  return (e) => {
    if (e.stream === 'stdout' ? !o.stdout : !o.stderr) return undefined;
    if (o.since !== undefined || o.until !== undefined) {
      const t = timeSeconds(e.time);
      if (o.since !== undefined && o.since > 0 && t < o.since) return undefined;
      if (o.until !== undefined && o.until > 0 && t > o.until) return undefined;
    }
    const data = Buffer.from(o.timestamps ? `${e.time} ${e.log}` : e.log);
    return o.tty ? data : frame(e.stream, data);
  };
}

/** Docker's logs: the json-file entries as frames (or raw with tty), filtered; with follow,
 * goes on (reading what the monitor appends, across rotations) until `done` settles. */
export function readLogs(logPath: string, o: ReadLogsOptions): Readable {
  const render = renderer(o);
  const out = new Readable({ read() {} });
  let closed = false;
  out.on('close', () => (closed = true));

  // Everything there is now: whole files, the tail taken from the end.
  const entries: Buffer[] = [];
  let offset = 0;
  let ino = 0;
  let partial = '';
  for (const file of logFiles(logPath)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (file === logPath) {
      offset = Buffer.byteLength(text);
      ino = statIno(logPath);
      const end = text.lastIndexOf('\n') + 1;
      partial = text.slice(end);
      text = text.slice(0, end);
    }
    for (const line of text.split('\n')) {
      const e = line && parseEntry(line);
      const b = e ? render(e) : undefined;
      if (b) entries.push(b);
    }
  }
  const first = o.tail !== undefined && o.tail >= 0 ? Math.max(0, entries.length - o.tail) : 0;
  for (const b of entries.slice(first)) out.push(b);
  if (!o.follow) {
    out.push(null);
    return out;
  }

  // follow: poll the file for what is appended; a new inode means it was rotated, and what was
  // left of the old one is read from <log>.1 first.
  let finished = false;
  o.done?.then(() => (finished = true), () => (finished = true));
  const readFrom = (file: string, from: number): number => {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return from;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= from) return size < from ? 0 : from;
      const buf = Buffer.alloc(size - from);
      const n = fs.readSync(fd, buf, 0, buf.length, from);
      const text = partial + buf.subarray(0, n).toString('utf8');
      const end = text.lastIndexOf('\n') + 1;
      partial = text.slice(end);
      for (const line of text.slice(0, end).split('\n')) {
        const e = line && parseEntry(line);
        const b = e ? render(e) : undefined;
        if (b) out.push(b);
      }
      return from + n;
    } finally {
      fs.closeSync(fd);
    }
  };
  const poll = () => {
    if (closed) return;
    const last = finished;
    const now = statIno(logPath);
    if (now !== ino && ino !== 0) {
      // Rotated: the rest of the old file is now <log>.1 (unless it was cut: max-file 1).
      if (statIno(`${logPath}.1`) === ino) readFrom(`${logPath}.1`, offset);
      offset = 0;
      partial = '';
    }
    ino = now;
    if (now) offset = readFrom(logPath, offset);
    if (last) {
      out.push(null);
      return;
    }
    setTimeout(poll, 100);
  };
  setTimeout(poll, 0);
  return out;
}

function statIno(file: string): number {
  try {
    return fs.statSync(file).ino;
  } catch {
    return 0;
  }
}
