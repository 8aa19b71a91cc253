// Runs a plan (src/linux/plan.ts) through the addon and answers the children over the sync
// socket (native/sync.h): it prints traced steps, learns the init's pid, lets the caller
// place it and run hooks, and receives the terminal. A failed step becomes one HuskError
// naming the step, and the half-made process is killed and reaped.
import * as fs from 'fs';
import { constants as osConstants } from 'os';
import { HuskError } from '../errors';
import type { Plan } from '../linux/plan';
import { writeIdMaps } from '../linux/idmap';
import { native } from '../native';
import { Msg } from '../native/sync';
import { errnoMessage, errnoName } from '../host/errno';
import { flushExplain, trace } from '../host/trace';
import { spawnThroughDoor, throughDoor } from './door';

export interface LaunchCallbacks {
  /** The init exists and waits: put it into its cgroups (`inCgroup`: clone3 already put it into
   * the cgroup v2 directory the plan named), record it. */
  onInitPid?(pid: number, inCgroup: boolean): void | Promise<void>;
  /** The init paused before pivot_root: run createRuntime and createContainer hooks. */
  onHooks?(pid: number): void | Promise<void>;
  /** The pty master of the container's terminal. */
  onConsole?(fd: number): void;
  /** The seccomp notify fd (SCMP_ACT_NOTIFY): hand it to linux.seccomp.listenerPath. */
  onSeccompListener?(fd: number, pid: number): void | Promise<void>;
}

export interface Launched {
  pid: number;
  /** Our end of the sync socket; still open when the plan waits on the exec fifo. */
  sock: number;
}

function stepError(plan: Plan, index: number, errno: number): HuskError {
  const step = plan.steps[index];
  const name = errnoName(errno);
  if (!step) return new HuskError(`container init failed: ${errnoMessage(errno)}`, { code: name });
  if (step.op === 'findExecutable') {
    const arg0 = step.what.replace(/^exec: /, '');
    const bare = !JSON.parse(arg0).includes('/');
    const why = bare && errno === osConstants.errno.ENOENT ? 'executable file not found in $PATH' : errnoMessage(errno);
    return new HuskError(`${step.what}: ${why}`, { code: name, step: step.op });
  }
  return new HuskError(`${step.what}: ${step.why?.[errno] ?? errnoMessage(errno)}`, { code: name, step: step.op });
}

/** `local`: husk clones the children itself even under the front door (a hook's process, which
 * husk waits for). */
export async function launch(plan: Plan, callbacks: LaunchCallbacks = {}, { local = false } = {}): Promise<Launched> {
  // Under the front door, the door clones stage 1 (and so is the parent that reaps it).
  const byDoor = !local && throughDoor();
  const { pid: stage1, fd: sock } = byDoor ? spawnThroughDoor(plan) : native.spawn({ steps: plan.steps, trace: plan.trace });
  trace(byDoor ? 'door' : 'husk', `clone() = ${stage1}  (stage 1; prctl(PR_SET_DUMPABLE, 0) before anything else)`,
    { kind: 'stage1', pid: stage1, byDoor });
  let initPid = 0;
  // Kills and reaps whatever the failed launch made, then closes the socket.
  const cleanup = () => {
    if (initPid > 0) {
      try {
        process.kill(initPid, 'SIGKILL');
        if (!byDoor) native.waitpid(initPid);
      } catch {
        // already gone, or not our child (without a subreaper it is reaped elsewhere)
      }
    }
    try {
      if (!byDoor) native.waitpid(stage1, true);
    } catch {
      // already reaped
    }
    fs.closeSync(sock);
  };
  /** How stage 1 ended, for a message: the door reaps it, so only husk's own is known. */
  const stage1Ended = () => {
    if (byDoor) return 'stage 1 exited';
    const status = native.waitpid(stage1);
    return `stage 1 ${status?.signal ? 'killed by signal ' + status.signal : 'exited ' + status?.code}`;
  };
  try {
    for (;;) {
      const msg = native.receive(sock);
      if (msg === null) {
        if (initPid === 0) throw new HuskError(`container setup ended early (${stage1Ended()})`);
        // The process executed (the socket closes on exec): explain its setup before it prints.
        flushExplain();
        return { pid: initPid, sock };
      }
      const who = initPid ? 'init' : 'stage1';
      switch (msg.type) {
        case Msg.StepDone: {
          const step = plan.steps[msg.step];
          trace(who, `${step ? step.trace : 'step ' + msg.step} = ${msg.value}`, step && { kind: 'step', step, value: msg.value });
          break;
        }
        case Msg.StepFailed: {
          const step = plan.steps[msg.step];
          trace(who, `${step ? step.trace : 'step ' + msg.step} = -1 ${errnoName(msg.value)} (${errnoMessage(msg.value)})`,
            step && { kind: 'step', step, errno: errnoName(msg.value), message: errnoMessage(msg.value) });
          throw stepError(plan, msg.step, msg.value);
        }
        case Msg.InitPid:
        case Msg.InitPidInCgroup:
          initPid = msg.value;
          if (!byDoor) native.waitpid(stage1);
          if (callbacks.onInitPid) await callbacks.onInitPid(initPid, msg.type === Msg.InitPidInCgroup);
          native.send(sock, Msg.Continue);
          break;
        case Msg.UserMaps:
          if (!plan.userMaps) throw new HuskError('container init asked for id maps, but the plan has no user namespace');
          writeIdMaps(stage1, plan.userMaps.uid, plan.userMaps.gid, plan.userMaps.plan);
          native.send(sock, Msg.Continue);
          break;
        case Msg.Hooks:
          if (callbacks.onHooks) await callbacks.onHooks(initPid);
          native.send(sock, Msg.Continue);
          break;
        case Msg.Console:
          if (callbacks.onConsole) callbacks.onConsole(msg.fd);
          else fs.closeSync(msg.fd);
          break;
        case Msg.SeccompListener:
          try {
            if (callbacks.onSeccompListener) await callbacks.onSeccompListener(msg.fd, initPid);
          } finally {
            fs.closeSync(msg.fd);
          }
          native.send(sock, Msg.Continue);
          break;
        case Msg.Ready:
          return { pid: initPid, sock };
        default:
          throw new HuskError(`container init sent an unknown message ${msg.type}`);
      }
    }
  } catch (err) {
    cleanup();
    throw err;
  }
}
