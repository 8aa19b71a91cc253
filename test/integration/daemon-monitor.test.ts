// The daemon's container monitor (src/daemon/monitor.ts): started as the daemon starts it, it
// runs the container, writes Docker's json-file log, serves attach and resize, reports the exit,
// outlives the process that started it, and leaves nothing behind when create fails.
// Run as root: tini -s -- npx vitest run --project integration test/integration/daemon-monitor.test.ts
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectNothingLeft, makeBundle, newId, sleep, stateEntries, stateRoot, tempDir, waitFor, REPO } from './harness';
import { attach, monitorAlive, prepareSpare, resize, startMonitor, stopSpare, waitExit, type MonitorConfig } from '../../src/daemon/monitor';
import { parseFrames, readLogs } from '../../src/daemon/logs';

afterEach(cleanup);

/** A bundle with busybox running `sh -c script`, and the monitor's config for it. */
function setup(script: string, o: Partial<MonitorConfig> & { tty?: boolean } = {}): MonitorConfig {
  const bundle = makeBundle({
    busybox: true,
    config: (c) => {
      c.process!.args = ['/bin/busybox', 'sh', '-c', script];
      c.process!.terminal = Boolean(o.tty);
    },
  });
  const dir = tempDir('dmon-');
  const id = newId('dmon');
  return {
    id,
    runtimeRoot: stateRoot(),
    bundle: bundle.dir,
    runDir: path.join(dir, 'run'),
    exitFile: path.join(dir, 'exit.json'),
    tty: false,
    openStdin: false,
    stdinOnce: false,
    logPath: path.join(dir, 'ctr-json.log'),
    ...o,
  };
}

function logEntries(file: string): { log: string; stream: string; time: string }[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Everything a socket sends until it closes (or timeoutMs). */
function collect(sock: net.Socket, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`socket still open after ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString())}`));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

function withTimeout<T>(p: Promise<T>, ms = 20_000): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => { throw new Error(`no answer in ${ms} ms`); })]);
}

describe('husk daemon-monitor', () => {
  it('runs the container and writes both streams into the json-file log; waitExit gives the code', async () => {
    const c = setup('echo out1; echo err1 >&2; printf partial; exit 3');
    const { pid, monitorPid } = await startMonitor(c);
    expect(pid).toBeGreaterThan(0);
    expect(monitorPid).toBeGreaterThan(0);
    const status = await withTimeout(waitExit(c.runDir, c.exitFile));
    expect(status.exitCode).toBe(3);
    expect(status.oomKilled).toBe(false);
    expect(status.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const entries = logEntries(c.logPath);
    expect(entries.filter((e) => e.stream === 'stdout').map((e) => e.log)).toEqual(['out1\n', 'partial']);
    expect(entries.filter((e) => e.stream === 'stderr').map((e) => e.log)).toEqual(['err1\n']);
    for (const e of entries) expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    expect(JSON.parse(fs.readFileSync(c.exitFile, 'utf8')).exitCode).toBe(3);
    // The monitor deleted the container and its run directory, and is gone.
    await waitFor('the monitor to exit', () => !monitorAlive(c.runDir), 10_000);
    expect(fs.existsSync(c.runDir)).toBe(false);
    expect(stateEntries(c.runtimeRoot)).toEqual([]);
  });

  it('attach gets the output as frames and sends stdin to the container (cat); stdinOnce ends it', async () => {
    const c = setup('echo ready; cat; echo bye >&2', { openStdin: true, stdinOnce: true });
    await startMonitor(c);
    const sock = await attach(c.runDir, { stdin: true, stdout: true, stderr: true });
    const all = collect(sock);
    await sleep(200);
    sock.write('hello from stdin\n');
    await sleep(200);
    sock.end();
    const { frames, rest } = parseFrames(await all);
    expect(rest.length).toBe(0);
    const out = frames.filter((f) => f.stream === 1).map((f) => f.data.toString()).join('');
    const err = frames.filter((f) => f.stream === 2).map((f) => f.data.toString()).join('');
    expect(out).toContain('hello from stdin\n');
    expect(err).toBe('bye\n');
    expect((await withTimeout(waitExit(c.runDir, c.exitFile))).exitCode).toBe(0);
    expect(logEntries(c.logPath).map((e) => e.log)).toContain('hello from stdin\n');
  });

  it('readLogs follows the log the monitor writes until the container has ended', async () => {
    const c = setup('for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; sleep 0.2; done');
    await startMonitor(c);
    const done = waitExit(c.runDir, c.exitFile);
    const logs = readLogs(c.logPath, { follow: true, timestamps: true, stdout: true, stderr: false, tty: false, done });
    const bytes = await withTimeout(new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      logs.on('data', (b: Buffer) => chunks.push(b));
      logs.on('end', () => resolve(Buffer.concat(chunks)));
    }));
    const { frames } = parseFrames(bytes);
    expect(frames.every((f) => f.stream === 1)).toBe(true);
    expect(frames.map((f) => String(f.data).replace(/^\S+Z /, ''))).toEqual(['out 1\n', 'out 2\n', 'out 3\n']);
  });

  it('holdForAttach: a client that attaches after a quick container ends still gets all its output', async () => {
    const c = setup('echo early; echo early-err >&2', { holdForAttach: true });
    await startMonitor(c);
    await sleep(500); // the container has ended; the monitor waits for its client
    const sock = await attach(c.runDir, { stdin: false, stdout: true, stderr: true });
    const { frames } = parseFrames(await collect(sock));
    expect(frames.map((f) => [f.stream, String(f.data)])).toEqual([[1, 'early\n'], [2, 'early-err\n']]);
    expect((await withTimeout(waitExit(c.runDir, c.exitFile))).exitCode).toBe(0);
  });

  it('with a terminal: raw output, and resize is seen by the process', async () => {
    const c = setup('read line; stty size; echo "got $line"', { tty: true, openStdin: true });
    await startMonitor(c);
    const sock = await attach(c.runDir, { stdin: true, stdout: true, stderr: true });
    const all = collect(sock);
    await resize(c.runDir, 37, 101);
    await sleep(100);
    sock.write('x\r');
    const text = (await all).toString();
    expect(text).toContain('37 101');
    expect(text).toContain('got x');
    expect(text).not.toMatch(/^\x01\0\0\0/);
    expect((await withTimeout(waitExit(c.runDir, c.exitFile))).exitCode).toBe(0);
    expect(logEntries(c.logPath).every((e) => e.stream === 'stdout')).toBe(true);
  });

  it('waitExit gives 128+signal for a killed container', async () => {
    const c = setup('sleep 100');
    const { pid } = await startMonitor(c);
    const waiting = waitExit(c.runDir, c.exitFile);
    await sleep(100);
    process.kill(pid, 'SIGKILL');
    const status = await withTimeout(waiting);
    expect(status.exitCode).toBe(137);
    expect(status.signal).toBe(9);
    // Asked again after the monitor is gone: from the exit file.
    await waitFor('the monitor to exit', () => !monitorAlive(c.runDir), 10_000);
    expect((await waitExit(c.runDir, c.exitFile)).exitCode).toBe(137);
  });

  it('says oomKilled when the kernel\'s OOM killer ended the container', async () => {
    // tail keeps its last line, and /dev/zero has no newline: it grows until the limit.
    const c = setup('exec busybox tail /dev/zero');
    const config = JSON.parse(fs.readFileSync(path.join(c.bundle, 'config.json'), 'utf8'));
    config.linux.resources = { ...config.linux.resources, memory: { limit: 16 << 20, swap: 16 << 20 } };
    fs.writeFileSync(path.join(c.bundle, 'config.json'), JSON.stringify(config));
    await startMonitor(c);
    const status = await withTimeout(waitExit(c.runDir, c.exitFile), 40_000);
    expect(status.exitCode).toBe(137);
    expect(status.oomKilled).toBe(true);
  });

  it('survives the death of the process that started it', async () => {
    const c = setup('sleep 100');
    const script = `
      const { startMonitor } = require(${JSON.stringify(path.join(REPO, 'dist', 'daemon', 'monitor.js'))});
      startMonitor(JSON.parse(process.argv[1])).then((r) => { console.log(JSON.stringify(r)); setInterval(() => {}, 1000); }, (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
    `;
    const starter = spawn(process.execPath, ['-e', script, JSON.stringify(c)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await withTimeout(new Promise<string>((resolve) => starter.stdout!.once('data', (d) => resolve(String(d)))));
    const { pid, monitorPid } = JSON.parse(line);
    expect(pid).toBeGreaterThan(0);
    starter.kill('SIGKILL');
    await new Promise((resolve) => starter.once('exit', resolve));
    await sleep(300);
    expect(monitorAlive(c.runDir)).toBe(true);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
    // Neither a hangup nor SIGTERM ends the monitor.
    process.kill(monitorPid, 'SIGTERM');
    process.kill(monitorPid, 'SIGHUP');
    await sleep(200);
    expect(monitorAlive(c.runDir)).toBe(true);
    const waiting = waitExit(c.runDir, c.exitFile);
    // (SIGKILL: the shell is its pid namespace's init, which SIGTERM does not end.)
    process.kill(pid, 'SIGKILL');
    expect((await withTimeout(waiting)).exitCode).toBe(137);
  });

  it('a create failure rejects with the runtime\'s message and leaves nothing', async () => {
    const c = setup('true');
    const bundle = JSON.parse(fs.readFileSync(path.join(c.bundle, 'config.json'), 'utf8'));
    bundle.process.args = ['/no/such/program'];
    fs.writeFileSync(path.join(c.bundle, 'config.json'), JSON.stringify(bundle));
    await expect(startMonitor(c)).rejects.toThrow(/no\/such\/program/);
    expect(fs.existsSync(c.runDir)).toBe(false);
    expect(stateEntries(c.runtimeRoot)).toEqual([]);
    expect(monitorAlive(c.runDir)).toBe(false);
    await expectNothingLeft();
  });

  it('a start failure (a startContainer hook fails) rejects and leaves nothing', async () => {
    const c = setup('echo never');
    const config = JSON.parse(fs.readFileSync(path.join(c.bundle, 'config.json'), 'utf8'));
    config.hooks = { startContainer: [{ path: '/bin/busybox', args: ['busybox', 'false'] }] };
    fs.writeFileSync(path.join(c.bundle, 'config.json'), JSON.stringify(config));
    await expect(startMonitor(c)).rejects.toThrow(/startContainer/);
    expect(fs.existsSync(c.runDir)).toBe(false);
    expect(stateEntries(c.runtimeRoot)).toEqual([]);
    await expectNothingLeft();
  });

  it('rotates the log at max-size, keeping max-file files', async () => {
    const c = setup('i=0; while [ $i -lt 400 ]; do echo "line $i of the log"; i=$((i+1)); done', { logMaxSize: 4096, logMaxFiles: 3 });
    await startMonitor(c);
    expect((await withTimeout(waitExit(c.runDir, c.exitFile))).exitCode).toBe(0);
    for (const file of [c.logPath, `${c.logPath}.1`, `${c.logPath}.2`]) {
      expect(fs.statSync(file).size).toBeLessThanOrEqual(4096);
      expect(fs.statSync(file).size).toBeGreaterThan(0);
    }
    expect(fs.existsSync(`${c.logPath}.3`)).toBe(false);
    const last = logEntries(c.logPath);
    expect(last[last.length - 1].log).toBe('line 399 of the log\n');
    const older = logEntries(`${c.logPath}.1`);
    const lastOlder = Number(/line (\d+)/.exec(older[older.length - 1].log)![1]);
    expect(Number(/line (\d+)/.exec(last[0].log)![1])).toBe(lastOlder + 1);
  });

  it('a spare monitor started ahead takes the next container, another replaces it, and stopSpare ends it', async () => {
    const base = tempDir('dmon-spare-');
    const first = { ...setup('echo from the spare'), runDir: path.join(base, 'a') };
    /** The spare monitors of this state root: `daemon-monitor -` waiting for a config. */
    const spares = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv.includes(first.runtimeRoot) && argv[argv.indexOf('daemon-monitor') + 1] === '-';
      } catch {
        return false;
      }
    });
    prepareSpare(first.runtimeRoot, base);
    const [sparePid] = await waitFor('the spare monitor', () => (spares().length === 1 ? spares() : undefined));
    const started = await startMonitor(first);
    expect(started.monitorPid).toBe(sparePid);
    expect((await withTimeout(waitExit(first.runDir, first.exitFile))).exitCode).toBe(0);
    expect(logEntries(first.logPath).map((e) => e.log)).toEqual(['from the spare\n']);
    // Taken, it was replaced by a new spare; that one ends when asked.
    const [next] = await waitFor('the next spare monitor', () => (spares().length === 1 && spares()[0] !== sparePid ? spares() : undefined));
    stopSpare();
    await waitFor('the spare to end', () => !fs.existsSync(`/proc/${next}/cmdline`) || fs.readFileSync(`/proc/${next}/stat`, 'utf8').includes(') Z'));
    expect(fs.readdirSync(base)).toEqual([]);
    await expectNothingLeft();
  });
});
