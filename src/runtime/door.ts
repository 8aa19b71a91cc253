// What a call asks of the front door (native/frontdoor.cc) that started it: to clone the
// container's processes (so that they are the door's children, and clones of a small sealed
// binary rather than of node), to wait for one in the foreground, to undo a half-made
// container if this call's process dies, and the call's exit code. Without a door
// (`node dist/cli/main.js`), husk clones and waits itself, as it always did.
import * as fs from 'fs';
import { HuskError } from '../errors';
import { call } from '../host/call';
import { errnoMessage, errnoName } from '../host/errno';
import { native, type NativeStep } from '../native';
import { DoorMsg, FOREGROUND_CONSOLE, FOREGROUND_PIPES, foregroundBody, int32, spawnHead, stepFd, wordList } from '../native/frontdoor';

export function throughDoor(): boolean {
  return call.door !== undefined;
}

function door(): number {
  if (call.door === undefined) throw new Error('no front door');
  return call.door;
}

/** Clones stage 1 running the plan, in the door: as native.spawn, but the child is the door's. */
export function spawnThroughDoor(plan: { steps: NativeStep[]; trace: boolean }): { pid: number; fd: number } {
  const fdSteps: number[] = [];
  const fds: number[] = [];
  plan.steps.forEach((step, index) => {
    const fd = stepFd(step);
    if (fd === undefined) return;
    fdSteps.push(index);
    fds.push(fd);
  });
  native.doorSend(door(), DoorMsg.Spawn, Buffer.concat([spawnHead(fdSteps), native.encodePlan(plan)]), fds);
  const reply = native.doorReceive(door());
  if (!reply || reply.type !== DoorMsg.Spawned || reply.body.length < 4) {
    for (const fd of reply?.fds ?? []) fs.closeSync(fd);
    throw new HuskError('the front door went away before it cloned the container\'s process');
  }
  const pid = reply.body.readInt32LE(0);
  if (pid < 0) throw new HuskError(`clone: ${errnoMessage(-pid)}`, { code: errnoName(-pid) });
  return { pid, fd: reply.fds[0] };
}

/** If this call ends before it answers (its process dies), the door runs `argv` (a forced
 * delete of the container being made), so that nothing half-made is left behind. */
export function cleanupIfLost(argv: string[]): void {
  native.doorSend(door(), DoorMsg.Cleanup, wordList(argv), []);
}

/** The caller (the door) went away: a create nobody waits for any more is rolled back. */
export function callerGone(): boolean {
  return call.door !== undefined && native.peerGone(call.door);
}

/** The door waits for pid in the foreground (forwarding signals, relaying the terminal's pty
 * master or husk's ends of the stdio pipes) and returns pid's status as a shell shows it. The
 * fds go to the door and are closed here at once: a stdin pipe that husk kept open would never
 * give the process its end of input. */
export function waitInDoor(pid: number, io: { consoleFd?: number; stdio?: [number, number, number] }): number {
  const [flags, fds] = io.consoleFd !== undefined ? [FOREGROUND_CONSOLE, [io.consoleFd]] : io.stdio ? [FOREGROUND_PIPES, io.stdio] : [0, []];
  try {
    native.doorSend(door(), DoorMsg.Foreground, foregroundBody(pid, flags), fds);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  const reply = native.doorReceive(door());
  for (const fd of reply?.fds ?? []) fs.closeSync(fd);
  if (!reply || reply.type !== DoorMsg.Exited || reply.body.length < 4) {
    throw new HuskError('the front door went away while it waited for the process');
  }
  return reply.body.readInt32LE(0);
}

/** The call's exit code, to the door that waits for it. */
export function endCall(code: number): void {
  try {
    native.doorSend(door(), DoorMsg.Exit, int32(code), []);
  } catch {
    // the door is gone: nobody waits for the code
  }
}
