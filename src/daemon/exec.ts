// `docker exec`: a process started in a running container (POST /containers/{id}/exec makes
// the exec, POST /exec/{id}/start runs it on a hijacked connection, GET /exec/{id}/json tells
// how it ended). The daemon starts the process itself, through the runtime's exec, and holds
// its terminal or stdio pipes while the client is attached; as with dockerd, execs are kept in
// memory only (a restarted daemon has none, and the processes of a dead daemon's execs end
// with their pipes).
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as tty from 'tty';
import type { Duplex } from 'stream';
import { reason } from '../errors';
import { log } from '../host/log';
import { resolveUser } from '../image/convert';
import { readFileInRoot } from '../host/rootfs';
import { native } from '../native';
import type { StartedExec } from '../runtime/exec';
import type { Process } from '../spec/types';
import { ApiError, badRequest, checkFields, conflict, intParam, notFound, type Route } from './api';
import type { DaemonContext } from './context';
import { frame } from './logs';
import { findRecord, readRecord, writeRecord, type ContainerRecord } from './records';

interface ExecRecord {
  id: string;
  containerId: string;
  config: {
    AttachStdin: boolean; AttachStdout: boolean; AttachStderr: boolean; Tty: boolean;
    Env: string[]; Cmd: string[]; User: string; WorkingDir: string; DetachKeys: string; ConsoleSize?: [number, number];
  };
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
  consoleFd?: number;
}

// Docker's fields, and those real clients send besides, which dockerd ignores: docker-py puts
// the container's id in the body ("Container"), dockerode its own options ("hijack", "stdin").
const CREATE_FIELDS = ['AttachStdin', 'AttachStdout', 'AttachStderr', 'Detach', 'DetachKeys', 'Tty', 'ConsoleSize', 'Env', 'Cmd', 'Privileged', 'User', 'WorkingDir', 'Container'];
const START_FIELDS = ['Detach', 'Tty', 'ConsoleSize', 'hijack', 'stdin'];

function stringList(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badRequest(`${where} must be a list of strings`);
  return v as string[];
}

function consoleSize(v: unknown, where: string): [number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => !Number.isInteger(x) || x < 0)) throw badRequest(`${where} must be [height, width]`);
  return v[0] && v[1] ? [v[0], v[1]] : undefined;
}

/** The process an exec runs: the container's own, with the exec's command, terminal, user,
 * working directory and added environment (Docker's rules: names resolved in the container's
 * /etc/passwd and /etc/group). */
function execProcess(base: Process, rootfs: string, e: ExecRecord['config']): Process {
  const p: Process = JSON.parse(JSON.stringify(base));
  p.args = e.Cmd;
  p.terminal = e.Tty;
  // The size is the terminal's before the process starts: a program reads it once, at once.
  delete p.consoleSize;
  if (e.Tty && e.ConsoleSize) p.consoleSize = { height: e.ConsoleSize[0], width: e.ConsoleSize[1] };
  if (e.WorkingDir) p.cwd = e.WorkingDir;
  if (e.Env.length) {
    const keys = new Set(e.Env.map((kv) => kv.split('=')[0]));
    p.env = [...(p.env ?? []).filter((kv) => !keys.has(kv.split('=')[0])), ...e.Env];
  }
  if (e.User) {
    let user;
    try {
      user = resolveUser(e.User, readFileInRoot(rootfs, '/etc/passwd'), readFileInRoot(rootfs, '/etc/group'));
    } catch (err) {
      throw badRequest(`unable to find user ${e.User}: ${reason(err)}`);
    }
    p.user = { uid: user.uid, gid: user.gid, ...(user.additionalGids ? { additionalGids: user.additionalGids } : {}) };
    if (user.home) p.env = [...(p.env ?? []).filter((kv) => !kv.startsWith('HOME=')), `HOME=${user.home}`];
  }
  return p;
}

/** Waits for a child of the daemon without holding a thread of libuv's pool (which the
 * daemon's file I/O needs): waitpid(WNOHANG), again on `nudge` and every 25 ms. */
function waitChild(pid: number, nudge: Promise<unknown>): Promise<number> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      let status;
      try {
        status = native.waitpid(pid, true);
      } catch {
        // not our child any more: nothing to learn
        clearInterval(timer);
        resolve(255);
        return;
      }
      if (!status) return;
      clearInterval(timer);
      resolve(status.code ?? 128 + (status.signal ?? 0));
    };
    timer = setInterval(check, 25);
    void nudge.then(check);
  });
}

/** dockerd's status for an exec whose program could not start: 127 when there is no such
 * program, 126 otherwise (not executable, ...). */
function startFailureCode(err: unknown): number {
  return /no such file or directory|executable file not found/.test(reason(err)) ? 127 : 126;
}

/** Lists an exec in its container's ExecIDs (`docker inspect`), or takes it off when it has
 * ended, as dockerd does. The record may be gone (the container removed meanwhile). */
function listExec(ctx: DaemonContext, e: ExecRecord, listed: boolean): void {
  const r = readRecord(ctx, e.containerId);
  if (!r) return;
  const ids = (r.ExecIDs ?? []).filter((id) => id !== e.id);
  if (listed) ids.push(e.id);
  r.ExecIDs = ids.length ? ids : null;
  writeRecord(ctx, r);
}

export function routes(ctx: DaemonContext): Route[] {
  const execs = new Map<string, ExecRecord>();

  function findExec(id: string): ExecRecord {
    const e = execs.get(id);
    if (!e) throw notFound(`No such exec instance: ${id}`);
    return e;
  }

  function running(ref: string): ContainerRecord {
    const c = findRecord(ctx, ref);
    if (c.State.Paused) throw conflict(`Container ${c.Id} is paused, unpause the container before exec`);
    if (!c.State.Running || c.State.Restarting) throw conflict(`Container ${c.Id} is not running`);
    return c;
  }

  /** Starts the exec's process in its container; resolves once it runs. */
  async function start(e: ExecRecord, attached: boolean): Promise<{ c: ContainerRecord; started: StartedExec }> {
    const c = running(e.containerId);
    const { Store } = require('../runtime/store') as typeof import('../runtime/store');
    const state = new Store(ctx.runtimeRoot).read(c.Id);
    const { startExec } = require('../runtime/exec') as typeof import('../runtime/exec');
    let started: StartedExec;
    try {
      started = await startExec({
        root: ctx.runtimeRoot, id: c.Id, args: e.config.Cmd, detach: !attached, keepTerminal: true,
        process: execProcess(state.config.process!, state.rootfs, e.config),
      });
    } catch (err) {
      e.exitCode = startFailureCode(err);
      listExec(ctx, e, false);
      throw err;
    }
    e.pid = started.pid;
    e.running = true;
    ctx.events.emit('container', `exec_start: ${e.config.Cmd.join(' ')}`, c.Id, { name: c.Name.replace(/^\//, ''), execID: e.id });
    return { c, started };
  }

  /** Relays the running process to the connection (or nowhere, detached) until it and its
   *  output end, then records how it ended. */
  async function relay(e: ExecRecord, c: ContainerRecord, started: StartedExec, conn: { socket: Duplex; head: Buffer } | undefined): Promise<void> {
    const outputs: Promise<void>[] = [];
    const socket = conn?.socket;
    const send = (stream: 1 | 2, chunk: Buffer) => {
      if (!socket || socket.destroyed) return;
      if (stream === 2 && !e.config.AttachStderr) return;
      if (stream === 1 && !e.config.AttachStdout) return;
      socket.write(e.config.Tty ? chunk : frame(stream, chunk));
    };
    if (started.consoleFd !== undefined) {
      const master = started.consoleFd;
      e.consoleFd = master;
      if (e.config.ConsoleSize) native.setWindowSize(master, e.config.ConsoleSize[0], e.config.ConsoleSize[1]);
      const out = new tty.ReadStream(master);
      outputs.push(new Promise((resolve) => {
        out.on('data', (chunk: Buffer) => send(1, chunk));
        // EIO: the last holder of the terminal's other side is gone.
        out.on('error', () => resolve());
        out.on('close', () => resolve());
      }));
      if (socket && e.config.AttachStdin) {
        const write = (chunk: Buffer) => {
          try {
            fs.writeSync(master, chunk);
          } catch {
            // the terminal is gone
          }
        };
        if (conn!.head.length) write(conn!.head);
        socket.on('data', write);
      }
    } else if (started.stdio) {
      const [stdinW, stdoutR, stderrR] = started.stdio;
      for (const [fd, stream] of [[stdoutR, 1], [stderrR, 2]] as const) {
        const out = fs.createReadStream('', { fd });
        outputs.push(new Promise((resolve) => {
          out.on('data', (chunk) => send(stream, chunk as Buffer));
          out.on('error', () => resolve());
          out.on('close', () => resolve());
        }));
      }
      const input = fs.createWriteStream('', { fd: stdinW });
      input.on('error', () => undefined);
      if (socket && e.config.AttachStdin) {
        if (conn!.head.length) input.write(conn!.head);
        socket.on('data', (chunk: Buffer) => input.write(chunk));
        // The client closed its side: the process reads the end of its input.
        socket.on('end', () => input.end());
      } else {
        input.end();
      }
    }
    socket?.on('error', () => undefined);
    socket?.resume();
    const outputDone = Promise.all(outputs);
    e.exitCode = await waitChild(e.pid, outputDone);
    // Output still in the pipes after the exit (or held open by a child that escaped) gets
    // a moment, as `docker exec` gives it.
    await Promise.race([outputDone, new Promise((r) => setTimeout(r, 2000))]);
    e.running = false;
    listExec(ctx, e, false);
    if (e.consoleFd !== undefined) {
      try {
        fs.closeSync(e.consoleFd);
      } catch {
        // closed with its stream
      }
      e.consoleFd = undefined;
    }
    ctx.events.emit('container', 'exec_die', c.Id, { name: c.Name.replace(/^\//, ''), execID: e.id, exitCode: String(e.exitCode) });
    socket?.end();
  }

  return [
    {
      method: 'POST',
      path: '/containers/{id}/exec',
      async handle(req, res) {
        const body = checkFields(await req.json({}), 'exec create', CREATE_FIELDS);
        const c = running(req.params.id);
        const cmd = stringList(body.Cmd, 'Cmd');
        if (!cmd.length) throw badRequest('No exec command specified');
        if (body.Privileged) throw badRequest('husk does not support privileged exec yet');
        for (const kv of stringList(body.Env, 'Env')) if (kv.indexOf('=') <= 0) throw badRequest(`Env: ${JSON.stringify(kv)} must have the form KEY=value`);
        const id = randomBytes(32).toString('hex');
        execs.set(id, {
          id,
          containerId: c.Id,
          config: {
            AttachStdin: Boolean(body.AttachStdin), AttachStdout: Boolean(body.AttachStdout), AttachStderr: Boolean(body.AttachStderr),
            Tty: Boolean(body.Tty), Env: stringList(body.Env, 'Env'), Cmd: cmd, User: typeof body.User === 'string' ? body.User : '',
            WorkingDir: typeof body.WorkingDir === 'string' ? body.WorkingDir : '', DetachKeys: typeof body.DetachKeys === 'string' ? body.DetachKeys : '',
            ConsoleSize: consoleSize(body.ConsoleSize, 'ConsoleSize'),
          },
          running: false, started: false, exitCode: null, pid: 0,
        });
        listExec(ctx, execs.get(id)!, true);
        ctx.events.emit('container', `exec_create: ${cmd.join(' ')}`, c.Id, { name: c.Name.replace(/^\//, ''), execID: id });
        res.json({ Id: id }, 201);
      },
    },
    {
      method: 'POST',
      path: '/exec/{id}/start',
      async handle(req, res) {
        const e = findExec(req.params.id);
        const body = checkFields(await req.json({}), 'exec start', START_FIELDS);
        if (e.started) throw conflict(`Error: Exec command ${e.id} has already run`);
        const size = consoleSize(body.ConsoleSize, 'ConsoleSize');
        if (size) e.config.ConsoleSize = size;
        running(e.containerId);
        e.started = true;
        if (body.Detach) {
          // Started, then left to itself: its output goes nowhere, as with dockerd.
          const { c, started } = await start(e, false);
          relay(e, c, started, undefined).catch((err) => log.warn(`exec ${e.id}: ${reason(err)}`));
          res.empty(200);
          return;
        }
        // Errors before the stream starts are plain HTTP errors; after, the stream just ends.
        const { Store } = require('../runtime/store') as typeof import('../runtime/store');
        if (!new Store(ctx.runtimeRoot).exists(e.containerId)) throw conflict(`Container ${e.containerId} is not running`);
        const conn = res.hijack(e.config.Tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream');
        let begun;
        try {
          begun = await start(e, true);
        } catch (err) {
          // The process could not start: the CLI reads this from the stream, then inspects.
          const text = Buffer.from(`${reason(err)}\r\n`);
          conn.socket.end(e.config.Tty ? text : frame(2, text));
          return;
        }
        await relay(e, begun.c, begun.started, conn);
      },
    },
    {
      method: 'POST',
      path: '/exec/{id}/resize',
      handle(req, res) {
        const e = findExec(req.params.id);
        const h = intParam(req.query, 'h', 0)!;
        const w = intParam(req.query, 'w', 0)!;
        if (e.consoleFd === undefined) {
          if (!e.config.Tty) throw badRequest('the exec has no terminal to resize');
          throw conflict(`the exec ${e.id} is not running`);
        }
        try {
          native.setWindowSize(e.consoleFd, h, w);
        } catch (err) {
          throw new ApiError(500, `resize: ${reason(err)}`);
        }
        res.empty(200);
      },
    },
    {
      method: 'GET',
      path: '/exec/{id}/json',
      handle(req, res) {
        const e = findExec(req.params.id);
        res.json({
          ID: e.id,
          Running: e.running,
          ExitCode: e.exitCode,
          ProcessConfig: { tty: e.config.Tty, entrypoint: e.config.Cmd[0], arguments: e.config.Cmd.slice(1), privileged: false, user: e.config.User },
          OpenStdin: e.config.AttachStdin,
          OpenStderr: e.config.AttachStderr,
          OpenStdout: e.config.AttachStdout,
          CanRemove: !e.running && e.started,
          ContainerID: e.containerId,
          DetachKeys: e.config.DetachKeys,
          Pid: e.pid,
        });
      },
    },
  ];
}
