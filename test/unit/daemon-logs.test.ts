// Docker's json-file log (src/daemon/logs.ts): how output is cut into lines, how entries look,
// the multiplexed frames, rotation, and reading back with Docker's filters.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  encodeEntry, frame, JsonFileWriter, MAX_LINE, parseEntry, parseFrames, readLogs, rfc3339Nano, splitLines, timeSeconds,
} from '../../src/daemon/logs';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-logs-'));
  dirs.push(d);
  return d;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

describe('splitLines', () => {
  it('keeps each line with its newline and holds back a partial one', () => {
    const a = splitLines(Buffer.alloc(0), Buffer.from('one\ntwo\nthr'));
    expect(a.lines.map(String)).toEqual(['one\n', 'two\n']);
    expect(String(a.rest)).toBe('thr');
    const b = splitLines(a.rest, Buffer.from('ee\n'));
    expect(b.lines.map(String)).toEqual(['three\n']);
    expect(b.rest.length).toBe(0);
  });

  it('cuts a line of 16 KiB or more into 16 KiB pieces, the newline with the last', () => {
    const long = 'x'.repeat(MAX_LINE * 2 + 5) + '\n';
    const { lines, rest } = splitLines(Buffer.alloc(0), Buffer.from(long));
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE, MAX_LINE, 6]);
    expect(String(lines[2])).toBe('xxxxx\n');
    expect(rest.length).toBe(0);
  });

  it('flushes a partial line once it reaches 16 KiB, without waiting for its newline', () => {
    const { lines, rest } = splitLines(Buffer.alloc(0), Buffer.alloc(MAX_LINE + 3, 'y'));
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE]);
    expect(rest.length).toBe(3);
  });

  it('keeps empty lines', () => {
    expect(splitLines(Buffer.alloc(0), Buffer.from('\n\na\n')).lines.map(String)).toEqual(['\n', '\n', 'a\n']);
  });
});

describe('entries and times', () => {
  it('writes Docker\'s json-file entry: log, stream, time', () => {
    const text = encodeEntry(Buffer.from('hé "q"\n'), 'stderr', '2026-12-04T16:30:52.123456789Z');
    expect(text).toBe('{"log":"hé \\"q\\"\\n","stream":"stderr","time":"2026-12-04T16:30:52.123456789Z"}\n');
    expect(parseEntry(text.trim())).toEqual({ log: 'hé "q"\n', stream: 'stderr', time: '2026-12-04T16:30:52.123456789Z' });
    expect(parseEntry('{"log":1}')).toBeUndefined();
    expect(parseEntry('not json')).toBeUndefined();
  });

  it('gives times as RFC3339Nano, trailing zeros trimmed, and reads them back', () => {
    const ms = Date.UTC(2026, 11, 4, 16, 30, 52, 120);
    expect(rfc3339Nano(ms, 456000)).toBe('2026-12-04T16:30:52.120456Z');
    expect(rfc3339Nano(ms - 120, 0)).toBe('2026-12-04T16:30:52Z');
    expect(timeSeconds('2026-12-04T16:30:52.5Z')).toBeCloseTo(ms / 1000 - 0.12 + 0.5, 6);
  });
});

describe('frames', () => {
  it('is an 8-byte header (stream, 0, 0, 0, size big-endian) and the bytes', () => {
    const f = frame('stderr', Buffer.from('hi'));
    expect([...f]).toEqual([2, 0, 0, 0, 0, 0, 0, 2, 0x68, 0x69]);
    const both = Buffer.concat([frame('stdout', Buffer.from('a')), f, Buffer.from([1, 0, 0])]);
    const { frames, rest } = parseFrames(both);
    expect(frames.map((x) => [x.stream, String(x.data)])).toEqual([[1, 'a'], [2, 'hi']]);
    expect(rest.length).toBe(3);
  });
});

describe('JsonFileWriter', () => {
  it('writes each stream\'s lines apart and flushes what is left at the end', () => {
    const file = path.join(tmp(), 'c-json.log');
    const w = new JsonFileWriter(file, {}, () => 'T');
    w.write('stdout', Buffer.from('a1\na'));
    w.write('stderr', Buffer.from('e1'));
    w.write('stdout', Buffer.from('2\n'));
    w.close();
    const entries = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(entries).toEqual([
      { log: 'a1\n', stream: 'stdout', time: 'T' },
      { log: 'a2\n', stream: 'stdout', time: 'T' },
      { log: 'e1', stream: 'stderr', time: 'T' },
    ]);
  });

  it('rotates before max-size would be passed, keeping max-file files in all', () => {
    const file = path.join(tmp(), 'c-json.log');
    const w = new JsonFileWriter(file, { maxSize: 200, maxFiles: 3 }, () => 'T');
    for (let i = 0; i < 40; i++) w.write('stdout', Buffer.from(`line ${i}\n`));
    w.close();
    const files = [file, `${file}.1`, `${file}.2`];
    for (const f of files) expect(fs.statSync(f).size).toBeLessThanOrEqual(200);
    expect(fs.existsSync(`${file}.3`)).toBe(false);
    const logs = [...files].reverse().flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l).log));
    // The newest lines, in order, with nothing lost between the files kept.
    expect(logs[logs.length - 1]).toBe('line 39\n');
    const first = Number(/\d+/.exec(logs[0])![0]);
    expect(logs).toEqual(Array.from({ length: 40 - first }, (_, i) => `line ${first + i}\n`));
  });

  it('with max-file 1 cuts the log and keeps no rotated file', () => {
    const file = path.join(tmp(), 'c-json.log');
    const w = new JsonFileWriter(file, { maxSize: 100 }, () => 'T');
    for (let i = 0; i < 20; i++) w.write('stdout', Buffer.from(`line ${i}\n`));
    w.close();
    expect(fs.existsSync(`${file}.1`)).toBe(false);
    expect(fs.readFileSync(file, 'utf8')).toContain('line 19\\n');
  });
});

describe('readLogs', () => {
  function writeLog(): string {
    const file = path.join(tmp(), 'c-json.log');
    fs.writeFileSync(`${file}.1`, [
      encodeEntry(Buffer.from('old\n'), 'stdout', '2026-12-04T10:00:00.5Z'),
    ].join(''));
    fs.writeFileSync(file, [
      encodeEntry(Buffer.from('out\n'), 'stdout', '2026-12-04T10:00:01.000000001Z'),
      encodeEntry(Buffer.from('err\n'), 'stderr', '2026-12-04T10:00:02Z'),
      encodeEntry(Buffer.from('last\n'), 'stdout', '2026-12-04T10:00:03Z'),
    ].join(''));
    return file;
  }
  const all = { follow: false, timestamps: false, stdout: true, stderr: true, tty: false };

  it('yields frames from the rotated files then the log', async () => {
    const { frames } = parseFrames(await readAll(readLogs(writeLog(), all)));
    expect(frames.map((f) => [f.stream, String(f.data)])).toEqual([[1, 'old\n'], [1, 'out\n'], [2, 'err\n'], [1, 'last\n']]);
  });

  it('filters by stream, tail, since and until; prefixes timestamps; raw with a terminal', async () => {
    const file = writeLog();
    expect(String(await readAll(readLogs(file, { ...all, stderr: false, tty: true })))).toBe('old\nout\nlast\n');
    expect(String(await readAll(readLogs(file, { ...all, tail: 2, tty: true })))).toBe('err\nlast\n');
    expect(String(await readAll(readLogs(file, { ...all, tail: 0, tty: true })))).toBe('');
    const t = Date.UTC(2026, 11, 4, 10, 0, 1) / 1000;
    expect(String(await readAll(readLogs(file, { ...all, since: t + 0.5, tty: true })))).toBe('err\nlast\n');
    expect(String(await readAll(readLogs(file, { ...all, until: t + 1, tty: true })))).toBe('old\nout\nerr\n');
    expect(String(await readAll(readLogs(file, { ...all, tail: 1, timestamps: true, tty: true })))).toBe('2026-12-04T10:00:03Z last\n');
  });

  it('follows what is appended, across a rotation, until done', async () => {
    const file = writeLog();
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const reading = readAll(readLogs(file, { ...all, tail: 0, tty: true, follow: true, done }));
    await new Promise((r) => setTimeout(r, 150));
    fs.appendFileSync(file, encodeEntry(Buffer.from('more\n'), 'stdout', 'T'));
    await new Promise((r) => setTimeout(r, 250));
    fs.appendFileSync(file, encodeEntry(Buffer.from('before rotation\n'), 'stdout', 'T'));
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, encodeEntry(Buffer.from('after\n'), 'stdout', 'T'));
    await new Promise((r) => setTimeout(r, 250));
    finish();
    expect(String(await reading)).toBe('more\nbefore rotation\nafter\n');
  });
});
