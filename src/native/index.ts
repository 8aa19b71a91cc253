// The one place the addon (build/Release/husk.node, from native/) is loaded, with its types.
// Loaded on first use, so commands that never touch it do not pay for it.
import * as path from 'path';
import { plainStep, type NativeStep, type PlainStep } from './steps';

export type { NativeStep } from './steps';

export interface SyncMessage {
  type: number;
  step: number;
  value: number;
  /** An fd that came with the message (SCM_RIGHTS), or -1. */
  fd: number;
}

export interface ExitStatus {
  pid: number;
  code: number | null;
  signal: number | null;
}

export interface Native {
  /** Clones stage 1, which runs the plan (native/child.cc); fd is husk's end of the sync socket. */
  spawn(plan: { steps: NativeStep[]; trace: boolean }): { pid: number; fd: number };
  receive(fd: number): SyncMessage | null;
  send(fd: number, type: number): void;
  waitpid(pid: number, nohang?: boolean): ExitStatus | null;
  waitpidAsync(pid: number): Promise<ExitStatus>;
  flock(fd: number, operation: 'ex' | 'sh' | 'un', nonblock?: boolean): boolean;
  mkfifo(path: string, mode: number): void;
  setSubreaper(): void;
  sendFd(socketPath: string, fd: number, name?: string): void;
  setWindowSize(fd: number, rows: number, cols: number): void;
  pipe(): [number, number];
  openTree(path: string, recursive: boolean, usernsFd: number): number;
  // For husk's own process (native/host.cc): image layers and the overlay rootfs.
  /** Regular files made whole on a pool thread, one after another (O_EXCL|O_NOFOLLOW): content,
   * then owner (-1: left), mode, xattrs and times. A result per file: null, the Error of a
   * file not made, or "NAME: why" for the first xattr the filesystem refused. */
  createFiles(files: { path: string; content: Buffer; mode: number; uid: number; gid: number; atime: number; mtime: number; xattrs?: [string, Buffer][] }[]): Promise<(null | Error | string)[]>;
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  llistxattr(path: string): string[];
  lgetxattr(path: string, name: string): Buffer | null;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  mountOverlay(target: string, o: { lowerdirs: string[]; upperdir?: string; workdir?: string; options?: string[] }): void;
  // bpf(2) for the cgroup v2 device program (native/bpf.cc).
  bpfProgLoad(progType: number, insns: Buffer, license: string): number;
  bpfProgQuery(targetFd: number, attachType: number): number[];
  bpfProgAttach(progFd: number, targetFd: number, attachType: number, flags: number): void;
  bpfProgGetFdById(id: number): number;
  bpfProgDetach(progFd: number, targetFd: number, attachType: number): void;
  // The front door's wire (native/frontdoor.h) and the warm server's socket (src/server/).
  /** The plan as one block of bytes (native/planwire.h), for the door to clone from. */
  encodePlan(plan: { steps: NativeStep[]; trace: boolean }): Buffer;
  doorSend(fd: number, type: number, body: Buffer, fds: number[]): void;
  /** One message, or null at end-of-file; throws ETIMEDOUT after timeoutMs (when given). */
  doorReceive(fd: number, timeoutMs?: number): DoorMessage | null;
  /** The other end of a connected socket has closed (or shut down its writing). */
  peerGone(fd: number): boolean;
  /** A listening SOCK_SEQPACKET unix socket at path, mode 0600 (a stale one is replaced). */
  serverListen(path: string): number;
  /** Waits for a connection (blocking): its fd and the caller's SO_PEERCRED, null once the
   * listening socket was shut down, or undefined after timeoutMs without one. */
  serverAccept(fd: number, timeoutMs?: number): { fd: number; uid: number; pid: number } | null | undefined;
  shutdownSocket(fd: number): void;
  setCloexec(fd: number): void;
  /** This thread's own cwd and umask from now on (unshare(CLONE_FS)): a server worker's. */
  threadUnshareFs(): void;
  threadChdir(path: string): void;
  threadUmask(mask: number): number;
  /** _exit(code): the process ends at once, whatever its threads are doing. */
  exitNow(code: number): never;
}

export interface DoorMessage {
  type: number;
  body: Buffer;
  /** Fds that came with it (close-on-exec). */
  fds: number[];
}

/** The addon as it is: spawn takes the steps laid out in plan.h's slots. */
type Addon = Omit<Native, 'spawn' | 'encodePlan'> & {
  spawn(plan: { steps: PlainStep[]; trace: boolean }): { pid: number; fd: number };
  encodePlan(plan: { steps: PlainStep[]; trace: boolean }): Buffer;
};

let loaded: Native | undefined;

function load(): Native {
  if (!loaded) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const addon = require(path.join(__dirname, '..', '..', 'build', 'Release', 'husk.node')) as Addon;
    loaded = {
      ...addon,
      spawn: (plan) => addon.spawn({ steps: plan.steps.map(plainStep), trace: plan.trace }),
      encodePlan: (plan) => addon.encodePlan({ steps: plan.steps.map(plainStep), trace: plan.trace }),
    };
  }
  return loaded;
}

/** The addon, loaded on first property access. */
export const native: Native = new Proxy({} as Native, {
  get(_target, name: keyof Native) {
    return load()[name];
  },
});
