// Named volumes, as Docker's `local` driver keeps them: a directory per volume under the data
// root (`volumes/NAME/_data`, what a container mounts) with its metadata beside it. Containers
// name the volumes they use in their record's Mounts (Type "volume"), which is how `rm` and
// `prune` know a volume is in use.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../host/atomicWrite';
import { diskUsage } from '../host/diskUsage';
import { badRequest, boolParam, checkFields, compareVersions, conflict, filtersParam, labelsMatch, notFound, type Route } from './api';
import type { DaemonContext } from './context';
import { listRecords } from './records';

export interface Volume {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string> | null;
  /** Made for a container without a name (`-v /data`, an image's VOLUME): prune takes these. */
  Anonymous?: boolean;
}

/** Docker's rule for volume names (and container names): no slashes, no `..`. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkVolumeName(name: string): void {
  if (!NAME.test(name)) throw badRequest(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
}

function volumeDir(ctx: DaemonContext, name: string): string {
  return path.join(ctx.volumesDir, name);
}

function metaFile(ctx: DaemonContext, name: string): string {
  return path.join(volumeDir(ctx, name), 'volume.json');
}

export function readVolume(ctx: DaemonContext, name: string): Volume | undefined {
  if (!NAME.test(name)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(metaFile(ctx, name), 'utf8')) as Volume;
  } catch {
    return undefined;
  }
}

export function listVolumes(ctx: DaemonContext): Volume[] {
  let names: string[];
  try {
    names = fs.readdirSync(ctx.volumesDir);
  } catch {
    return [];
  }
  return names.map((n) => readVolume(ctx, n)).filter((v): v is Volume => v !== undefined).sort((a, b) => a.Name.localeCompare(b.Name));
}

/** The volume `name` (made when missing), or a new anonymous one without a name. */
export function ensureVolume(ctx: DaemonContext, name: string | undefined, o: { labels?: Record<string, string> } = {}): Volume {
  const anonymous = name === undefined || name === '';
  const volumeName = anonymous ? randomBytes(32).toString('hex') : name;
  checkVolumeName(volumeName);
  const existing = readVolume(ctx, volumeName);
  if (existing) return existing;
  const dir = volumeDir(ctx, volumeName);
  const data = path.join(dir, '_data');
  fs.mkdirSync(data, { recursive: true, mode: 0o755 });
  const volume: Volume = {
    Name: volumeName,
    Driver: 'local',
    Mountpoint: data,
    CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    Labels: o.labels ?? {},
    Scope: 'local',
    Options: null,
    ...(anonymous ? { Anonymous: true } : {}),
  };
  writeFileAtomic(metaFile(ctx, volumeName), JSON.stringify(volume) + '\n');
  ctx.events.emit('volume', 'create', volumeName, { driver: 'local' });
  return volume;
}

/** The ids of the containers whose record mounts the volume. */
export function volumeUsers(ctx: DaemonContext, name: string): string[] {
  return listRecords(ctx).filter((r) => r.Mounts.some((m) => m.Type === 'volume' && m.Name === name)).map((r) => r.Id);
}

/** Removes a volume and its data; refused while a container uses it (even with force, as Docker). */
export function removeVolume(ctx: DaemonContext, name: string): void {
  if (!readVolume(ctx, name)) throw notFound(`get ${name}: no such volume`);
  const users = volumeUsers(ctx, name);
  if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
  fs.rmSync(volumeDir(ctx, name), { recursive: true, force: true });
  ctx.events.emit('volume', 'destroy', name, { driver: 'local' });
}

/** A volume as the API shows it (without husk's own field). */
function shown(v: Volume): Omit<Volume, 'Anonymous'> {
  const { Anonymous: _anonymous, ...rest } = v;
  return rest;
}

const CREATE_FIELDS = ['Name', 'Driver', 'DriverOpts', 'Labels', 'ClusterVolumeSpec'];
const FILTERS = ['dangling', 'driver', 'label', 'name'];
const PRUNE_FILTERS = ['label', 'label!', 'all'];

export function routes(ctx: DaemonContext): Route[] {
  return [
    {
      method: 'POST',
      path: '/volumes/create',
      async handle(req, res) {
        const body = checkFields(await req.json({}), 'volume create', CREATE_FIELDS);
        const driver = body.Driver ?? 'local';
        if (driver !== 'local' && driver !== '') throw badRequest(`create: volume driver ${JSON.stringify(driver)}: husk has only the local driver`);
        if (body.DriverOpts && Object.keys(body.DriverOpts as object).length) throw badRequest('create: husk\'s local driver takes no options (DriverOpts) yet');
        if (body.ClusterVolumeSpec) throw badRequest('create: cluster volumes need a swarm, which husk does not have');
        if (body.Name !== undefined && typeof body.Name !== 'string') throw badRequest('create: Name must be a string');
        const labels = (body.Labels ?? {}) as Record<string, string>;
        if (typeof labels !== 'object' || Object.values(labels).some((v) => typeof v !== 'string')) throw badRequest('create: Labels must map names to strings');
        const volume = ensureVolume(ctx, body.Name as string | undefined, { labels });
        if (body.Name === undefined || body.Name === '') {
          // Asked for by the API without a name: a named volume all the same (Docker's way),
          // not an anonymous one that prune takes.
          delete volume.Anonymous;
          writeFileAtomic(metaFile(ctx, volume.Name), JSON.stringify(volume) + '\n');
        }
        res.json(shown(volume), 201);
      },
    },
    {
      method: 'GET',
      path: '/volumes',
      handle(req, res) {
        const filters = filtersParam(req.query, FILTERS);
        const dangling = filters.get('dangling');
        const volumes = listVolumes(ctx).filter((v) => {
          if (filters.has('name') && !filters.get('name')!.some((n) => v.Name.includes(n))) return false;
          if (filters.has('driver') && !filters.get('driver')!.includes(v.Driver)) return false;
          if (filters.has('label') && !labelsMatch(v.Labels, filters.get('label')!)) return false;
          if (dangling) {
            const want = dangling.some((d) => d === 'true' || d === '1');
            if ((volumeUsers(ctx, v.Name).length === 0) !== want) return false;
          }
          return true;
        });
        res.json({ Volumes: volumes.map(shown), Warnings: null });
      },
    },
    {
      method: 'GET',
      path: '/volumes/{name}',
      handle(req, res) {
        const v = readVolume(ctx, req.params.name);
        if (!v) throw notFound(`get ${req.params.name}: no such volume`);
        res.json(shown(v));
      },
    },
    {
      method: 'DELETE',
      path: '/volumes/{name}',
      handle(req, res) {
        const name = req.params.name;
        if (!readVolume(ctx, name)) {
          if (boolParam(req.query, 'force')) return res.empty(204);
          throw notFound(`get ${name}: no such volume`);
        }
        removeVolume(ctx, name);
        res.empty(204);
      },
    },
    {
      method: 'POST',
      path: '/volumes/prune',
      handle(req, res) {
        const filters = filtersParam(req.query, PRUNE_FILTERS);
        // API 1.42 and later prune only anonymous volumes unless all=true.
        const all = filters.get('all')?.some((v) => v === 'true' || v === '1') || compareVersions(req.version, '1.42') < 0;
        const deleted: string[] = [];
        let reclaimed = 0;
        for (const v of listVolumes(ctx)) {
          if (!all && !v.Anonymous) continue;
          if (filters.has('label') && !labelsMatch(v.Labels, filters.get('label')!)) continue;
          if (filters.has('label!') && filters.get('label!')!.some((w) => labelsMatch(v.Labels, [w]))) continue;
          if (volumeUsers(ctx, v.Name).length) continue;
          const size = diskUsage(v.Mountpoint);
          removeVolume(ctx, v.Name);
          deleted.push(v.Name);
          reclaimed += size;
        }
        ctx.events.emit('volume', 'prune', '', { reclaimed: String(reclaimed) });
        res.json({ VolumesDeleted: deleted, SpaceReclaimed: reclaimed });
      },
    },
  ];
}
