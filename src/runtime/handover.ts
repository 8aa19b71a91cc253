// Handing fds the container's children send (native/sync.h) on to whoever waits for them:
// the terminal to --console-socket, the seccomp notify fd to linux.seccomp.listenerPath.
import * as fs from 'fs';
import { HuskError, reason } from '../errors';
import { native } from '../native';
import { OCI_VERSION } from '../spec/defaults';
import type { ContainerStatus, Spec } from '../spec/types';
import { ociState, type ContainerRecord } from './store';
import { trace } from '../host/trace';

/** Hands the seccomp notify fd to linux.seccomp.listenerPath with the container process
 * state, as the runtime spec describes (the fd in SCM_RIGHTS, "seccompFd" in `fds`). */
export function sendSeccompListener(spec: Spec, record: ContainerRecord, fd: number, pid: number, status: ContainerStatus = 'creating') {
  const seccomp = spec.linux!.seccomp!;
  const message = {
    ociVersion: OCI_VERSION,
    fds: ['seccompFd'],
    pid,
    ...(seccomp.listenerMetadata ? { metadata: seccomp.listenerMetadata } : {}),
    state: ociState(record, status, pid),
  };
  try {
    native.sendFd(seccomp.listenerPath!, fd, JSON.stringify(message));
  } catch (err) {
    throw new HuskError(`linux.seccomp.listenerPath ${JSON.stringify(seccomp.listenerPath)}: ${reason(err)}`);
  }
  trace('husk', `sendmsg(${JSON.stringify(seccomp.listenerPath)}, SCM_RIGHTS [seccomp notify fd], state) = 0`,
    { kind: 'seccompListener', path: seccomp.listenerPath });
}


/** The pty master goes to --console-socket (and is closed here), or is kept for husk to
 * relay: returns it then. */
export function keepOrHandOver(fd: number, consoleSocket: string | undefined): number | undefined {
  if (!consoleSocket) return fd;
  try {
    native.sendFd(consoleSocket, fd, '/dev/ptmx');
    trace('husk', `sendmsg(${JSON.stringify(consoleSocket)}, SCM_RIGHTS [pty master]) = 0`, { kind: 'consoleSocket', path: consoleSocket });
  } finally {
    fs.closeSync(fd);
  }
  return undefined;
}
