// Writing a user namespace's uid and gid maps, from the parent, while the child that made
// the namespace waits (the UserMaps message in native/sync.h).
//
// As root, husk writes /proc/PID/uid_map and gid_map itself, any ranges. As another user,
// the kernel lets it write only a map of its own ids, one id each, and only after
// "setgroups" is denied; anything else needs the setuid helpers newuidmap/newgidmap
// (Debian's uidmap package), which check /etc/subuid and /etc/subgid.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { HuskError } from '../errors';
import type { IDMapping } from '../spec/types';
import type { HostView } from './plan';
import { writeProcFile } from '../host/procfs';
import { trace } from '../host/trace';

export interface IdMapPlan {
  /** Write the maps directly (true) or through newuidmap/newgidmap (false). */
  direct: boolean;
  /** "deny" setgroups first: required for a direct write by an unprivileged user. */
  denySetgroups: boolean;
}

/** Where the setuid helper is; `isFile` is how the host is asked (the plan's seam, or fs). */
function findHelper(name: string, isFile = (p: string) => fs.existsSync(p)): string | undefined {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

function onlySelf(mappings: IDMapping[], own: number): boolean {
  return mappings.length === 1 && mappings[0].size === 1 && mappings[0].hostID === own;
}

type IdMapHost = Pick<HostView, 'euid' | 'egid' | 'isDirectory'>;

/** How the maps will be written by a husk running with the host's euid/egid; throws when
 * they cannot be. The host is read only through the plan's seam (HostView). */
export function idMapPlan(uid: IDMapping[], gid: IDMapping[], host: IdMapHost): IdMapPlan {
  const { euid, egid } = host;
  if (euid === 0) return { direct: true, denySetgroups: false };
  if (onlySelf(uid, euid) && onlySelf(gid, egid)) return { direct: true, denySetgroups: true };
  const isFile = (p: string) => host.isDirectory(p) === false;
  if (findHelper('newuidmap', isFile) && findHelper('newgidmap', isFile)) {
    return { direct: false, denySetgroups: false };
  }
  throw new HuskError('linux.uidMappings: mapping more than your own uid and gid needs newuidmap and newgidmap '
    + '(Debian package uidmap) and ranges in /etc/subuid and /etc/subgid');
}

const text = (mappings: IDMapping[]) => mappings.map((m) => `${m.containerID} ${m.hostID} ${m.size}`).join('\n') + '\n';

function writeProc(file: string, content: string) {
  trace('husk', `write(${JSON.stringify(file)}, ${JSON.stringify(content.trim())})`, { kind: 'idMapWrite', file, map: content.trim() });
  try {
    writeProcFile(file, content);
  } catch (err) {
    throw new HuskError(`write ${file} ${JSON.stringify(content.trim())}: ${(err as Error).message}`);
  }
}

function helper(name: string, pid: number, mappings: IDMapping[]) {
  const args = [String(pid), ...mappings.flatMap((m) => [String(m.containerID), String(m.hostID), String(m.size)])];
  trace('husk', `${name} ${args.join(' ')}`, { kind: 'idMapHelper', program: name, args });
  const res = spawnSync(findHelper(name)!, args, { encoding: 'utf8' });
  if (res.status !== 0) {
    const why = (res.stderr || res.error?.message || `exit status ${res.status}`).trim();
    throw new HuskError(`${name} ${args.join(' ')}: ${why}`);
  }
}

/** Writes the maps of the user namespace that process `pid` is in. */
export function writeIdMaps(pid: number, uid: IDMapping[], gid: IDMapping[], plan: IdMapPlan) {
  if (!plan.direct) {
    helper('newuidmap', pid, uid);
    helper('newgidmap', pid, gid);
    return;
  }
  if (plan.denySetgroups) writeProc(`/proc/${pid}/setgroups`, 'deny');
  writeProc(`/proc/${pid}/uid_map`, text(uid));
  writeProc(`/proc/${pid}/gid_map`, text(gid));
}

/** Whether a config mount is an idmapped bind mount, and with which maps (its own, or the
 * container's user namespace maps for a bare "idmap" option). */
interface IdMaps {
  uidMappings?: IDMapping[];
  gidMappings?: IDMapping[];
}

export function idmappedMount(m: IdMaps & { options?: string[] }, container: IdMaps) {
  const options = m.options ?? [];
  const flagged = options.includes('idmap') || options.includes('ridmap');
  if (!flagged && !m.uidMappings?.length && !m.gidMappings?.length) return undefined;
  const uid = m.uidMappings?.length ? m.uidMappings : container.uidMappings ?? [];
  const gid = m.gidMappings?.length ? m.gidMappings : container.gidMappings ?? [];
  const recursive = options.includes('ridmap') || options.includes('rbind');
  return { uid, gid, recursive };
}

/**
 * A user namespace with the given maps, as an fd (for mount_setattr's MOUNT_ATTR_IDMAP): a
 * child makes it and waits for its maps; we write them, keep the namespace, end the child.
 */
export function userNamespaceFd(uid: IDMapping[], gid: IDMapping[]): number {
  const { native } = require('../native') as typeof import('../native');
  const { Msg } = require('../native/sync') as typeof import('../native/sync');
  const { userNamespacePlan } = require('./planNamespaces') as typeof import('./planNamespaces');
  const { pid, fd: sock } = native.spawn(userNamespacePlan());
  try {
    const msg = native.receive(sock);
    if (!msg || msg.type !== Msg.UserMaps) {
      throw new HuskError('could not create a user namespace for an idmapped mount');
    }
    const nsFd = fs.openSync(`/proc/${pid}/ns/user`, 'r');
    writeIdMaps(pid, uid, gid, { direct: true, denySetgroups: false });
    return nsFd;
  } finally {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    native.waitpid(pid);
    fs.closeSync(sock);
  }
}
