// The daemon's record of each container: ctx.containersDir/<id>/config.v2.json, in the shape of
// `docker inspect` (written atomically), with husk's own bookkeeping under `husk` (never shown).
// A container is found by its full id, a unique prefix of it, or its name (with or without /).
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../host/atomicWrite';
import { ApiError, badRequest, notFound } from './api';
import type { DaemonContext } from './context';
import type { MountPoint, RestartPolicy } from './containerConfig';

export type DockerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface ContainerState {
  Status: DockerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
}

export interface HuskBookkeeping {
  bundle: string;
  runDir: string;
  exitFile: string;
  monitorPid: number;
  /** The image's name as asked (`docker ps` shows it). */
  imageName: string;
  restart: RestartPolicy;
  log: { maxSize?: number; maxFiles?: number };
  /** docker stop/kill by the user: unless-stopped and always do not restart it then. */
  stoppedByUser: boolean;
  /** The network husk attached it to, if any. */
  network?: string;
  /** The names other containers on its network know it by (Compose's service name). */
  aliases?: string[];
  /** Networks added by `docker network connect`: the name clients use, the CNI network, the
   *  aliases, the interface inside (eth1...). */
  connected?: { name: string; cni: string; aliases?: string[]; ifName: string }[];
}

export interface ContainerRecord {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: ContainerState;
  Image: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  MountLabel: string;
  ProcessLabel: string;
  AppArmorProfile: string;
  ExecIDs: string[] | null;
  HostConfig: Record<string, unknown>;
  GraphDriver: { Name: string; Data: Record<string, string> };
  Mounts: MountPoint[];
  Config: Record<string, any>;
  NetworkSettings: Record<string, any>;
  husk: HuskBookkeeping;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function containerDir(ctx: DaemonContext, id: string): string {
  return path.join(ctx.containersDir, id);
}

export function recordPath(ctx: DaemonContext, id: string): string {
  return path.join(containerDir(ctx, id), 'config.v2.json');
}

export function readRecord(ctx: DaemonContext, id: string): ContainerRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordPath(ctx, id), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

export function writeRecord(ctx: DaemonContext, r: ContainerRecord): void {
  writeFileAtomic(recordPath(ctx, r.Id), JSON.stringify(r, null, 2) + '\n', 0o600);
}

/** Every container the daemon has a record of, newest first. */
export function listRecords(ctx: DaemonContext): ContainerRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(ctx.containersDir);
  } catch {
    return [];
  }
  const out: ContainerRecord[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const r = readRecord(ctx, name);
    if (r) out.push(r);
  }
  return out.sort((a, b) => b.Created.localeCompare(a.Created));
}

/** The container a reference means: full id, name (with or without /), unique id prefix. */
export function findRecord(ctx: DaemonContext, ref: string): ContainerRecord {
  if (!ref) throw notFound('No such container: ');
  const all = listRecords(ctx);
  const exact = all.find((r) => r.Id === ref);
  if (exact) return exact;
  const name = ref.startsWith('/') ? ref : `/${ref}`;
  const byName = all.find((r) => r.Name === name);
  if (byName) return byName;
  if (/^[0-9a-f]+$/.test(ref)) {
    const matches = all.filter((r) => r.Id.startsWith(ref));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw badRequest(`multiple IDs found with provided prefix: ${ref}`);
  }
  throw notFound(`No such container: ${ref}`);
}

/** The record's State for a status, keeping what the others do not say. */
export function stateFor(s: ContainerState, status: DockerStatus, change: Partial<ContainerState> = {}): ContainerState {
  return {
    ...s,
    Status: status,
    Running: status === 'running' || status === 'paused' || status === 'restarting',
    Paused: status === 'paused',
    Restarting: status === 'restarting',
    Dead: status === 'dead',
    ...change,
  };
}

/** docker inspect's view: the record without husk's bookkeeping. */
export function inspectView(r: ContainerRecord): Omit<ContainerRecord, 'husk'> {
  const { husk: _husk, ...view } = r;
  return view;
}

export function notRunning(r: ContainerRecord): ApiError {
  return new ApiError(409, `Container ${r.Id} is not running`);
}
