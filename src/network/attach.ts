// Attaching a container's network namespace to a CNI network, and detaching it (skeleton: the
// lead is writing it).
import type { CniResult, PortMapping } from './cni';
import type { AttachOptions } from './options';

export const RECORDS_DIR = '/var/lib/cni/husk';

/** What husk keeps of one attachment, in RECORDS_DIR/<attachId>.json. */
export interface AttachRecord {
  attachId: string;
  containerId: string;
  bundle: string;
  /** The container's init and its start time (in clock ticks since boot, /proc/PID/stat). */
  pid: number;
  startTime: number;
  /** The network namespace husk ran in (the "host" side of the attachment). */
  hostNetns: { dev: number; ino: number };
  /** The bind mount that keeps the container's network namespace while attached. */
  pin: string;
  network: { name: string; file: string; raw: Record<string, unknown> };
  configDir: string;
  pluginDirs: string[];
  ports: PortMapping[];
  hostname?: string;
  hostsFile?: string;
  result?: CniResult;
  created: string;
}

/** The container as the OCI state given to a hook says it. */
export interface HookState {
  id: string;
  pid?: number;
  bundle: string;
}

export function listRecords(): AttachRecord[] {
  return [];
}

/** The attachments to a network (of this configuration directory), from any namespace. */
export function attachedTo(network: string, configDir: string): AttachRecord[] {
  return listRecords().filter((r) => r.network.name === network && r.configDir === configDir);
}

export async function attach(o: AttachOptions, state: HookState): Promise<void> {
  void o;
  void state;
}

export async function detach(state: HookState): Promise<void> {
  void state;
}

/** Detaches every attachment made from this network namespace whose container init is gone;
 * returns the container ids released. */
export async function sweep(): Promise<string[]> {
  return [];
}
