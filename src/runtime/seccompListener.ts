// linux.seccomp.listenerPath: where the seccomp notify fd of a container's process goes.
import { HuskError, reason } from '../errors';
import { native } from '../native';
import { OCI_VERSION } from '../spec/defaults';
import type { Spec } from '../spec/types';
import type { ContainerRecord } from './store';
import { trace } from './trace';

/** Hands the seccomp notify fd to linux.seccomp.listenerPath with the container process
 * state, as the runtime spec describes (the fd in SCM_RIGHTS, "seccompFd" in `fds`). */
export function sendSeccompListener(spec: Spec, record: ContainerRecord, fd: number, pid: number, status = 'creating') {
  const seccomp = spec.linux!.seccomp!;
  const message = {
    ociVersion: OCI_VERSION,
    fds: ['seccompFd'],
    pid,
    ...(seccomp.listenerMetadata ? { metadata: seccomp.listenerMetadata } : {}),
    state: { ociVersion: OCI_VERSION, id: record.id, status, pid, bundle: record.bundle, ...(record.annotations ? { annotations: record.annotations } : {}) },
  };
  try {
    native.sendFd(seccomp.listenerPath!, fd, JSON.stringify(message));
  } catch (err) {
    throw new HuskError(`linux.seccomp.listenerPath ${JSON.stringify(seccomp.listenerPath)}: ${reason(err)}`);
  }
  trace('husk', `sendmsg(${JSON.stringify(seccomp.listenerPath)}, SCM_RIGHTS [seccomp notify fd], state) = 0`);
}

