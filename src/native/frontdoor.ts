// The front door's wire (native/frontdoor.h, where the table of messages is): its message
// types and the bodies the TypeScript side reads and writes. The sending and receiving (one
// SOCK_SEQPACKET message, fds by SCM_RIGHTS) is the addon's doorSend/doorReceive.
import type { NativeStep } from './steps';

export const FRONT_DOOR_VERSION = 3;

export const DoorMsg = {
  Call: 1,
  Accepted: 2,
  Spawn: 3,
  Spawned: 4,
  Cleanup: 5,
  Foreground: 6,
  Exit: 7,
  Fallback: 8,
  Exited: 9,
} as const;

/** CallHeader.flags: the caller has a controlling terminal. */
export const CALL_HAS_TTY = 1;
/** Foreground.flags: the message carries the pty master. */
export const FOREGROUND_CONSOLE = 1;
/** Foreground.flags: the message carries husk's ends of the stdio pipes, for the door to relay. */
export const FOREGROUND_PIPES = 2;

/** In husk's state directory: "~" never appears in a container id. */
export const SERVER_SOCKET = '~server.sock';
export const SERVER_LOCK = '~server.lock';
export const SERVER_LOG = '~server.log';

export interface DoorCall {
  version: number;
  pid: number;
  umask: number;
  flags: number;
  cwd: string;
  /** The husk installation the door belongs to (its package directory). */
  home: string;
  argv: string[];
  env: string[];
}

const CALL_HEADER = 24;

/** NUL-terminated strings, one after the other. */
export function strings(words: string[]): Buffer {
  return Buffer.from(words.map((w) => `${w}\0`).join(''), 'utf8');
}

function readStrings(body: Buffer, at: number, count: number): { words: string[]; end: number } {
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    const nul = body.indexOf(0, at);
    if (nul < 0) throw new Error('front door message: a string without its NUL');
    words.push(body.toString('utf8', at, nul));
    at = nul + 1;
  }
  return { words, end: at };
}

export function parseCall(body: Buffer): DoorCall {
  if (body.length < CALL_HEADER) throw new Error('front door message: Call is too short');
  const argc = body.readUInt32LE(16);
  const envc = body.readUInt32LE(20);
  const cwd = readStrings(body, CALL_HEADER, 2);
  const argv = readStrings(body, cwd.end, argc);
  const env = readStrings(body, argv.end, envc);
  return {
    version: body.readUInt32LE(0), pid: body.readInt32LE(4), umask: body.readUInt32LE(8), flags: body.readUInt32LE(12),
    cwd: cwd.words[0], home: cwd.words[1], argv: argv.words, env: env.words,
  };
}

/** u32 count, then the words. */
export function wordList(words: string[]): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(words.length, 0);
  return Buffer.concat([head, strings(words)]);
}

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return b;
}

export function foregroundBody(pid: number, flags: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32LE(pid, 0);
  body.writeUInt32LE(flags, 4);
  return body;
}

/** The fd a step hands to the children in its field `a` (which the door renumbers), if any. */
export function stepFd(step: NativeStep): number | undefined {
  const fd = (() => {
    switch (step.op) {
      case 'cloneInit': return step.intoCgroup ? step.cgroupFd : undefined;
      case 'openExecFifo': return step.fd;
      case 'moveMount': return step.fromFd;
      case 'dup2': return step.oldfd;
      default: return undefined;
    }
  })();
  return fd === undefined ? undefined : Number(fd);
}

/** Spawn's body before the plan's block: u32 count, then the index of each step whose `a` is an fd. */
export function spawnHead(fdSteps: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * fdSteps.length);
  head.writeUInt32LE(fdSteps.length, 0);
  fdSteps.forEach((index, i) => head.writeUInt32LE(index, 4 + 4 * i));
  return head;
}
