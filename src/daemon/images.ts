// The image endpoints of the Docker Engine API over husk's image store: list, pull (with
// dockerd's JSON progress stream), inspect, history, tag, remove, load, save, prune.
//
// How Docker's images map onto husk's store: the store keeps names -> manifests (refs.json);
// Docker's image ID is the config's digest, so the names of one config are one image here.
// Docker keeps images that lost their last name ("dangling", <none>:<none>); the store keeps
// only named images, so such an image is recorded under a name no reference can spell,
// `<none>@sha256:<config>`, until it is tagged again or pruned.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Readable } from 'stream';
import { createGunzip } from 'zlib';
import * as tar from 'tar-stream';
import { reason } from '../errors';
import { native } from '../native';
import type { Credentials } from '../image/auth';
import { liveRegistrations } from '../image/bundle';
import { hexOf, isDigest } from '../image/digest';
import { collectGarbage } from '../image/images';
import { MEDIA, parseImageConfig, parsePlatform, type ImageConfig, type Platform } from '../image/manifest';
import { pull } from '../image/pull';
import { familiarName, formatReference, parseReference, type Reference } from '../image/reference';
import { sourceName, type SourceSpec } from '../image/source';
import type { ImageRef, ImageStore, RefsFile } from '../image/store';
import { ApiError, badRequest, boolParam, commonHeaders, compareVersions, conflict, filtersParam, labelsMatch, notFound, type ApiRequest, type ApiResponse, type Route } from './api';
import type { DaemonContext } from './context';
import { LoadProgress, PullProgress, errorMessage, type JsonMessage } from './imageProgress';

const DANGLING = '<none>@';

const shortId = (id: string) => hexOf(id).slice(0, 12);

export function danglingName(config: string): string {
  return `${DANGLING}${config}`;
}

/** Docker's short form of a stored name: `busybox:1`, `localhost:5000/a/b:t`, `a@sha256:...`. */
export function familiarString(name: string): string | undefined {
  if (name.startsWith(DANGLING)) return undefined;
  try {
    const ref = parseReference(name);
    return `${familiarName(ref)}${ref.tag && !ref.digest ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
  } catch {
    return undefined;
  }
}

/** One Docker image: a config digest and every stored name that leads to it. */
export interface ImageView {
  id: string;
  names: string[];
  ref: ImageRef;
  config: ImageConfig;
  repoTags: string[];
  repoDigests: string[];
  size: number;
}

const configs = new Map<string, ImageConfig>();

function readConfig(store: ImageStore, digest: string): ImageConfig {
  let config = configs.get(digest);
  if (!config) {
    config = parseImageConfig(store.readBlob(digest), `config ${digest}`);
    configs.set(digest, config);
  }
  return config;
}

function layerSize(store: ImageStore, config: ImageConfig): number {
  let size = 0;
  for (const d of new Set(config.rootfs.diff_ids)) size += store.layerMeta(d)?.contentSize ?? 0;
  return size;
}

function viewOf(store: ImageStore, id: string, entries: [string, ImageRef][]): ImageView | undefined {
  let config: ImageConfig;
  try {
    config = readConfig(store, id);
  } catch {
    return undefined;
  }
  const repoTags = new Set<string>();
  const repoDigests = new Set<string>();
  for (const [name, ref] of entries) {
    if (name.startsWith(DANGLING)) continue;
    let parsed: Reference | undefined;
    try {
      parsed = parseReference(name);
    } catch {
      // a husk transport name (oci:DIR:TAG, ...): shown as it is
      repoTags.add(name);
      continue;
    }
    if (parsed.digest) repoDigests.add(`${familiarName(parsed)}@${parsed.digest}`);
    else repoTags.add(familiarString(name)!);
    // Pulled from a registry under this name: the digest the registry gave for it.
    if (ref.source === name && !parsed.digest) repoDigests.add(`${familiarName(parsed)}@${ref.index ?? ref.digest}`);
  }
  const named = entries.filter(([n]) => !n.startsWith(DANGLING));
  return {
    id,
    names: entries.map(([n]) => n),
    ref: (named[0] ?? entries[0])[1],
    config,
    repoTags: [...repoTags].sort(),
    repoDigests: [...repoDigests].sort(),
    size: layerSize(store, config),
  };
}

export function imageViews(store: ImageStore, refs: RefsFile = store.readRefs()): ImageView[] {
  const byConfig = new Map<string, [string, ImageRef][]>();
  for (const [name, ref] of Object.entries(refs.images)) {
    const list = byConfig.get(ref.config);
    if (list) list.push([name, ref]);
    else byConfig.set(ref.config, [[name, ref]]);
  }
  const out: ImageView[] = [];
  for (const [id, entries] of byConfig) {
    const view = viewOf(store, id, entries);
    if (view) out.push(view);
  }
  return out.sort((a, b) => created(b) - created(a) || a.id.localeCompare(b.id));
}

function created(v: ImageView): number {
  const t = Date.parse(v.config.created ?? '');
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
}

/**
 * The image a user names, as dockerd finds it: a stored reference (`busybox` is
 * `docker.io/library/busybox:latest`), `repo@digest` by the digests the image was pulled
 * with, or the ID (the config's digest) or a prefix of it; else a 404 in dockerd's words.
 * One config reached through several manifests (pulled, then loaded) is one image.
 */
export function lookup(store: ImageStore, query: string): ImageView {
  const refs = store.readRefs();
  const views = imageViews(store, refs);
  let parsed: Reference | undefined;
  try {
    parsed = parseReference(query);
  } catch {
    // not a reference: an ID perhaps
  }
  if (parsed) {
    const stored = refs.images[formatReference(parsed)];
    const byName = stored && views.find((v) => v.id === stored.config);
    if (byName) return byName;
    if (parsed.digest) {
      const wanted = `${familiarName(parsed)}@${parsed.digest}`;
      const byDigest = views.find((v) => v.repoDigests.includes(wanted));
      if (byDigest) return byDigest;
    }
  }
  const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(query);
  if (m) {
    const hits = views.filter((v) => hexOf(v.id).startsWith(m[1]));
    if (hits.length > 1) throw badRequest(`${query} is ambiguous: it matches ${hits.map((v) => shortId(v.id)).join(', ')}`);
    if (hits.length) return hits[0];
  }
  throw notFound(`No such image: ${query}`);
}

/** Whether the user named the image by its ID (or a prefix) rather than by a reference. */
function byId(store: ImageStore, query: string): boolean {
  if (!/^(sha256:)?[a-f0-9]{4,64}$/.test(query)) return false;
  try {
    return !store.readRefs().images[formatReference(parseReference(query))];
  } catch {
    return true;
  }
}

/** The stored names a reference removes: itself (a tag or a digest reference). */
function namesOf(store: ImageStore, query: string, v: ImageView): string[] {
  const parsed = parseReference(query);
  const name = formatReference(parsed);
  if (store.readRefs().images[name]) return [name];
  // repo@digest of a pulled image: the tags of that repository carry the digest.
  return v.names.filter((n) => {
    try {
      return familiarName(parseReference(n)) === familiarName(parsed);
    } catch {
      return false;
    }
  });
}

/**
 * After names moved (tag, pull, load): an image that has a real name loses its dangling one,
 * and an image in `displaced` that has no name left is kept as dangling, as Docker keeps it.
 */
function tidyDangling(refs: RefsFile, displaced: ImageRef[]): void {
  const named = new Set<string>();
  for (const [n, r] of Object.entries(refs.images)) if (!n.startsWith(DANGLING)) named.add(r.config);
  for (const n of Object.keys(refs.images)) if (n.startsWith(DANGLING) && named.has(refs.images[n].config)) delete refs.images[n];
  for (const old of displaced) {
    if (!Object.values(refs.images).some((r) => r.config === old.config)) refs.images[danglingName(old.config)] = old;
  }
}

/** Containers (bundles registered with the store, mounted) that use an image. */
function usersOf(store: ImageStore, config: string): string[] {
  return liveRegistrations(store).filter(({ reg }) => reg.image.config === config).map(({ reg }) => (reg.container ? `container ${reg.container.id.slice(0, 12)}` : `bundle ${reg.bundle}`));
}


// ------------------------------------------------------------------------------ filters

/** Go's path.Match for the `reference` filter: `*` and `?` stop at `/`, `[...]` classes. */
export function globMatch(pattern: string, text: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return false;
      re += `[${pattern.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(text);
}

function referenceMatches(v: ImageView, pattern: string): boolean {
  return v.repoTags.concat(v.repoDigests).some((t) => {
    const repo = t.replace(/(@sha256:[a-f0-9]+|:[\w][\w.-]*)$/, '');
    return globMatch(pattern, t) || globMatch(pattern, repo);
  });
}

function labelMatches(config: ImageConfig, filter: string): boolean {
  return labelsMatch(config.config?.Labels ?? {}, [filter]);
}

function isDangling(v: ImageView): boolean {
  return v.names.every((n) => n.startsWith(DANGLING));
}

function boolFilter(values: string[] | undefined, name: string): boolean | undefined {
  if (!values?.length) return undefined;
  const v = values[values.length - 1].toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw badRequest(`invalid filter '${name}=${values[values.length - 1]}'`);
}

/** `until`: a Unix time or an RFC 3339 date, as dockerd's prune takes it. */
function untilFilter(values: string[] | undefined): number | undefined {
  if (!values?.length) return undefined;
  const v = values[0];
  if (/^[0-9]+(\.[0-9]+)?$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw badRequest(`invalid filter 'until=${v}': not a Unix timestamp nor a date`);
  return t / 1000;
}

// ------------------------------------------------------------------------------ shapes

function summary(v: ImageView, version: string) {
  const dangling = !v.repoTags.length && !v.repoDigests.length;
  return {
    Id: v.id,
    ParentId: '',
    RepoTags: dangling ? ['<none>:<none>'] : v.repoTags,
    RepoDigests: dangling ? ['<none>@<none>'] : v.repoDigests,
    Created: created(v),
    Size: v.size,
    SharedSize: -1,
    ...(compareVersions(version, '1.44') < 0 ? { VirtualSize: v.size } : {}),
    Labels: v.config.config?.Labels ?? {},
    Containers: -1,
  };
}

function inspect(store: ImageStore, v: ImageView) {
  const c = v.config;
  const config = c.config ?? {};
  const lowers = c.rootfs.diff_ids.map((d) => store.layerDir(d) + '/diff').reverse();
  return {
    Id: v.id,
    RepoTags: v.repoTags,
    RepoDigests: v.repoDigests,
    Parent: '',
    Comment: historyEntries(c).find((h) => h.comment)?.comment ?? '',
    Created: c.created ?? '0001-01-01T00:00:00Z',
    Container: '',
    ContainerConfig: { Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null },
    DockerVersion: (c as { docker_version?: string }).docker_version ?? '',
    Author: c.author ?? '',
    Config: {
      Hostname: '', Domainname: '', User: config.User ?? '', AttachStdin: false, AttachStdout: false, AttachStderr: false,
      ...(config.ExposedPorts ? { ExposedPorts: config.ExposedPorts } : {}),
      Tty: false, OpenStdin: false, StdinOnce: false,
      Env: config.Env ?? null, Cmd: config.Cmd ?? null, Image: '', Volumes: config.Volumes ?? null, WorkingDir: config.WorkingDir ?? '',
      Entrypoint: config.Entrypoint ?? null, OnBuild: null, Labels: config.Labels ?? null,
      ...(config.StopSignal ? { StopSignal: config.StopSignal } : {}),
    },
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os,
    ...(c['os.version'] ? { OsVersion: c['os.version'] } : {}),
    Size: v.size,
    VirtualSize: v.size,
    GraphDriver: { Name: 'overlay2', Data: { LowerDir: lowers.join(':') } },
    RootFS: { Type: c.rootfs.type, Layers: c.rootfs.diff_ids },
    Metadata: { LastTagTime: v.ref.pulled },
  };
}

interface HistoryEntry {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

function historyEntries(c: ImageConfig): HistoryEntry[] {
  return Array.isArray(c.history) ? (c.history.filter((h) => h && typeof h === 'object') as HistoryEntry[]) : [];
}

/** `docker history`: newest first; the top entry carries the image's ID and tags, the rest
 * `<missing>` (their intermediate images were never on this host), as dockerd shows pulled
 * images. Each non-empty entry is matched to the next layer. */
export function history(store: ImageStore, v: ImageView) {
  const diffIDs = v.config.rootfs.diff_ids;
  let layer = 0;
  const rows = historyEntries(v.config).map((h) => {
    const size = h.empty_layer ? 0 : store.layerMeta(diffIDs[layer++] ?? '')?.contentSize ?? 0;
    return { Id: '<missing>', Created: h.created ? Math.floor(Date.parse(h.created) / 1000) || 0 : 0, CreatedBy: h.created_by ?? '', Tags: null as string[] | null, Size: size, Comment: h.comment ?? '' };
  });
  // Layers the history does not account for.
  for (; layer < diffIDs.length; layer++) rows.push({ Id: '<missing>', Created: created(v), CreatedBy: '', Tags: null, Size: store.layerMeta(diffIDs[layer])?.contentSize ?? 0, Comment: '' });
  rows.reverse();
  if (rows.length) {
    rows[0].Id = v.id;
    rows[0].Tags = v.repoTags.length ? v.repoTags : null;
  } else {
    rows.push({ Id: v.id, Created: created(v), CreatedBy: '', Tags: v.repoTags.length ? v.repoTags : null, Size: v.size, Comment: '' });
  }
  return rows;
}

// ------------------------------------------------------------------------------ pull

/** X-Registry-Auth: base64url JSON {username, password, identitytoken, ...}; absent or empty
 * is anonymous (the daemon does not read its own user's Docker config, as dockerd does not). */
export function registryAuth(header: string | string[] | undefined): Credentials | null {
  const text = Array.isArray(header) ? header[0] : header;
  if (!text) return null;
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
  } catch {
    throw badRequest('X-Registry-Auth: not base64-encoded JSON');
  }
  if (!doc || typeof doc !== 'object') return null;
  const str = (k: string) => (typeof doc[k] === 'string' && doc[k] ? (doc[k] as string) : undefined);
  const creds: Credentials = { username: str('username'), password: str('password'), identityToken: str('identitytoken') };
  return creds.username || creds.identityToken ? creds : null;
}

function parseRef(text: string, what = 'invalid reference format'): Reference {
  try {
    return parseReference(text);
  } catch (err) {
    throw badRequest(`${what}: ${reason(err)}`);
  }
}

/** A registry client's message as a docker client reads it: without the reference it starts
 * with (the caller names it), and with docker's login verb rather than husk's. */
function clientMessage(err: unknown, name: string): string {
  const message = reason(err).replace(/husk image login/g, 'docker login');
  return message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message;
}

function pullFailure(err: unknown, name: string, shown: string): ApiError {
  if (err instanceof ApiError) return err;
  const message = clientMessage(err, name);
  // "REF: not found: manifest unknown (MANIFEST_UNKNOWN)": the registry's own words, as dockerd gives them.
  const missing = /(?:^|: )not found(?:: (.*?))?(?: \([A-Z_]+\))?$/.exec(message);
  if (missing) return notFound(`manifest for ${shown} not found: ${missing[1] ?? 'manifest unknown'}`);
  if (/no image for|is for .*, not /.test(message)) return notFound(`no matching manifest for ${shown}: ${message}`);
  return new ApiError(500, message);
}

function streamHead(res: ApiResponse): (m: JsonMessage) => void {
  let started = false;
  return (m) => {
    if (!started) {
      started = true;
      res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/json' });
    }
    res.raw.write(JSON.stringify(m) + '\r\n');
  };
}

async function create(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  if (req.query.get('fromSrc') !== null) {
    throw new ApiError(501, 'husk daemon does not import root filesystems (fromSrc, docker import); load an image archive with docker load instead');
  }
  const fromImage = req.query.get('fromImage');
  if (!fromImage) throw badRequest('fromImage is required (or fromSrc, which husk does not support)');
  const ref = parseRef(fromImage);
  const tag = req.query.get('tag');
  if (tag) {
    if (isDigest(tag)) {
      ref.digest = tag;
      ref.tag = undefined;
    } else if (/^[\w][\w.-]{0,127}$/.test(tag)) {
      ref.tag = tag;
    } else {
      throw badRequest(`invalid tag format: ${JSON.stringify(tag)}`);
    }
  }
  let platform: Platform | undefined;
  const platformText = req.query.get('platform');
  if (platformText) {
    try {
      platform = parsePlatform(platformText);
    } catch (err) {
      throw badRequest(reason(err));
    }
  }
  const credentials = registryAuth(req.headers['x-registry-auth']);
  const name = formatReference(ref);
  const shown = familiarString(name) ?? name;
  const store = ctx.images;
  const before = store.readRefs().images[name];
  const send = streamHead(res);
  const progress = new PullProgress(send, { status: `Pulling from ${ref.repository}`, id: ref.digest ?? ref.tag });
  // The store lock is held across the pull and the renaming after it, so a prune never sees
  // the image that lost its name before it is recorded as dangling.
  const held = await store.lockStore('sh');
  try {
    const pulled = await pull(store, { kind: 'registry', ref }, { platform, progress, insecure: ctx.o.insecureRegistries, credentials, userAgent: 'husk-daemon' });
    if (before && before.config !== pulled.ref.config) await store.updateRefs((refs) => tidyDangling(refs, [before]));
    else await store.updateRefs((refs) => tidyDangling(refs, []));
    progress.start();
    send({ status: `Digest: ${pulled.ref.index ?? pulled.ref.digest}` });
    send({ status: before && before.digest === pulled.ref.digest ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` });
    res.raw.end();
    ctx.events.emit('image', 'pull', shown, { name: familiarName(ref) });
  } catch (err) {
    if (!progress.started) throw pullFailure(err, name, shown);
    send(errorMessage(clientMessage(err, name)));
    res.raw.end();
  } finally {
    held.release();
  }
}

// ------------------------------------------------------------------------------ tag, remove

async function tagImage(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const v = lookup(ctx.images, req.params.name);
  const repo = req.query.get('repo');
  if (!repo) throw badRequest('repository name (repo) is required');
  const ref = parseRef(`${repo}${req.query.get('tag') ? `:${req.query.get('tag')}` : ''}`);
  if (ref.digest) throw badRequest('refusing to create a tag with a digest reference');
  const name = formatReference(ref);
  await ctx.images.updateRefs((refs) => {
    const old = refs.images[name];
    refs.images[name] = { ...v.ref, source: v.ref.source, pulled: new Date().toISOString() };
    tidyDangling(refs, old ? [old] : []);
  });
  ctx.events.emit('image', 'tag', v.id, { name: familiarString(name) ?? name });
  res.empty(201);
}

type DeleteItem = { Untagged: string } | { Deleted: string };

async function removeImage(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const store = ctx.images;
  const query = req.params.name;
  const force = boolParam(req.query, 'force');
  const v = lookup(store, query);
  const held = await store.lockStore('ex');
  const items: DeleteItem[] = [];
  try {
    let remove: string[];
    if (byId(store, query)) {
      const named = v.names.filter((n) => !n.startsWith(DANGLING) && familiarString(n) && !parseReference(n).digest);
      if (named.length > 1 && !force) {
        throw conflict(`conflict: unable to delete ${shortId(v.id)} (must be forced) - image is referenced in multiple repositories`);
      }
      remove = v.names;
    } else {
      remove = namesOf(store, query, v);
      // The digest references of the same repository go with its last tag.
      const rest = v.names.filter((n) => !remove.includes(n));
      if (rest.every((n) => n.startsWith(DANGLING) || /@sha256:/.test(n))) remove = v.names;
    }
    const last = remove.length === v.names.length;
    if (last) {
      const users = usersOf(store, v.id);
      if (users.length && !force) {
        const what = byId(store, query) ? `unable to delete ${shortId(v.id)} (cannot be forced)` : `unable to remove repository reference "${query}" (must force)`;
        throw conflict(`conflict: ${what} - ${users[0]} is using its referenced image ${shortId(v.id)}`);
      }
      // Forced away from a running container: the names go, the image stays (dangling).
      if (users.length) remove = remove.filter((n) => !n.startsWith(DANGLING));
    }
    await store.updateRefs((refs) => {
      for (const n of remove) {
        if (!refs.images[n]) continue;
        delete refs.images[n];
        const shown = familiarString(n);
        if (shown) items.push({ Untagged: shown });
      }
      if (last && usersOf(store, v.id).length) refs.images[danglingName(v.id)] = v.ref;
    });
    const gone = !Object.values(store.readRefs().images).some((r) => r.config === v.id);
    if (gone) {
      collectGarbage(store);
      items.push({ Deleted: v.id });
    }
  } finally {
    held.release();
  }
  for (const item of items) {
    if ('Untagged' in item) ctx.events.emit('image', 'untag', v.id, { name: item.Untagged });
    else ctx.events.emit('image', 'delete', v.id, { name: v.id });
  }
  res.json(items);
}

async function prune(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const filters = filtersParam(req.query, ['dangling', 'until', 'label', 'label!']);
  const danglingOnly = boolFilter(filters.get('dangling'), 'dangling') ?? true;
  const until = untilFilter(filters.get('until'));
  const store = ctx.images;
  const held = await store.lockStore('ex');
  const deleted: DeleteItem[] = [];
  let reclaimed = 0;
  const gone: string[] = [];
  const untagged: [string, string][] = [];
  try {
    const used = new Set(liveRegistrations(store).map(({ reg }) => reg.image.config));
    const victims = imageViews(store).filter((v) => {
      if (used.has(v.id)) return false;
      if (danglingOnly && !isDangling(v)) return false;
      if (until !== undefined && created(v) >= until) return false;
      if (!(filters.get('label') ?? []).every((l) => labelMatches(v.config, l))) return false;
      if ((filters.get('label!') ?? []).some((l) => labelMatches(v.config, l))) return false;
      return true;
    });
    await store.updateRefs((refs) => {
      for (const v of victims) {
        for (const n of v.names) {
          if (!refs.images[n]) continue;
          delete refs.images[n];
          const shown = familiarString(n);
          if (shown) {
            deleted.push({ Untagged: shown });
            untagged.push([v.id, shown]);
          }
        }
        deleted.push({ Deleted: v.id });
        gone.push(v.id);
      }
    });
    reclaimed = collectGarbage(store).bytes;
  } finally {
    held.release();
  }
  for (const [id, name] of untagged) ctx.events.emit('image', 'untag', id, { name });
  for (const id of gone) ctx.events.emit('image', 'delete', id, { name: id });
  res.json({ ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

// ------------------------------------------------------------------------------ load

/** How big an archive `docker load` may send: what the store's filesystem has free, less a
 * margin for unpacking it (the layers take as much again), and at most 64 GiB. */
function loadLimit(store: ImageStore): number {
  const env = Number(process.env.HUSK_DAEMON_LOAD_LIMIT);
  if (Number.isFinite(env) && env > 0) return env;
  try {
    const st = fs.statfsSync(store.tmp);
    return Math.max(0, Math.min(64 * 2 ** 30, Math.floor((st.bavail * st.bsize) / 2)));
  } catch {
    return 64 * 2 ** 30;
  }
}

/** Copies the request body into fd, at most `limit` bytes (413 beyond). */
function receive(body: Readable, fd: number, limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let size = 0;
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      body.removeAllListeners('data');
      body.resume();
      reject(err);
    };
    body.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) return fail(new ApiError(413, `image archive too large: more than the ${limit} bytes the image store can take`));
      try {
        fs.writeSync(fd, chunk);
      } catch (err) {
        fail(new ApiError(500, `image archive: ${reason(err)}`));
      }
    });
    body.on('end', () => !failed && resolve(size));
    body.on('error', (err) => fail(badRequest(`image archive: ${reason(err)}`)));
    body.on('aborted', () => fail(badRequest('image archive: the upload was cut off')));
  });
}

interface ArchiveScan {
  manifestJson?: Buffer;
  indexJson?: Buffer;
  ociLayout: boolean;
}

/**
 * Reads an image archive's table of contents: refuses entries whose path leaves the archive
 * (absolute, or `..`) before anything is unpacked, and keeps manifest.json and index.json.
 */
export async function scanArchive(file: string): Promise<ArchiveScan> {
  const head = Buffer.alloc(2);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, head, 0, 2, 0);
  } finally {
    fs.closeSync(fd);
  }
  const input: Readable = fs.createReadStream(file);
  const extract = tar.extract();
  const out: ArchiveScan = { ociLayout: false };
  let entries = 0;
  (head[0] === 0x1f && head[1] === 0x8b ? input.pipe(createGunzip()) : input).pipe(extract);
  try {
    for await (const entry of extract) {
      entries++;
      const name = entry.header.name;
      const parts = name.split('/');
      if (name.startsWith('/') || parts.includes('..')) {
        throw badRequest(`image archive: entry ${JSON.stringify(name)} points outside the archive`);
      }
      const link = entry.header.linkname;
      if (link && entry.header.type === 'link' && (link.startsWith('/') || link.split('/').includes('..'))) {
        throw badRequest(`image archive: entry ${JSON.stringify(name)} links outside the archive (${JSON.stringify(link)})`);
      }
      const clean = parts.filter((p) => p && p !== '.').join('/');
      if (['manifest.json', 'index.json'].includes(clean) && (entry.header.size ?? 0) <= 16 * 1024 * 1024) {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        if (clean === 'manifest.json') out.manifestJson = Buffer.concat(chunks);
        else out.indexJson = Buffer.concat(chunks);
      } else {
        if (clean === 'oci-layout') out.ociLayout = true;
        entry.resume();
      }
    }
  } catch (err) {
    input.destroy();
    if (err instanceof ApiError) throw err;
    throw badRequest(`image archive: not a tar archive: ${reason(err)}`);
  }
  if (!entries) throw badRequest('image archive: empty (no tar entries)');
  return out;
}

/** What an archive holds: the images to load, each with the name an OCI layout gives it (a
 * full reference in org.opencontainers.image.ref.name, as Docker 25+ reads it). */
function archiveSpecs(file: string, scan: ArchiveScan): { spec: SourceSpec; name?: string }[] {
  if (scan.manifestJson) {
    let entries: unknown;
    try {
      entries = JSON.parse(scan.manifestJson.toString('utf8'));
    } catch (err) {
      throw badRequest(`image archive: manifest.json: ${reason(err)}`);
    }
    if (!Array.isArray(entries) || !entries.length) throw badRequest('image archive: manifest.json lists no image');
    return entries.map((_, index) => ({ spec: { kind: 'docker-archive', path: file, index } }));
  }
  if (scan.ociLayout && scan.indexJson) {
    let index: { manifests?: { annotations?: Record<string, string> }[] };
    try {
      index = JSON.parse(scan.indexJson.toString('utf8'));
    } catch (err) {
      throw badRequest(`image archive: index.json: ${reason(err)}`);
    }
    const manifests = Array.isArray(index.manifests) ? index.manifests : [];
    if (!manifests.length) throw badRequest('image archive: index.json lists no image');
    const fullName = (tag: string | undefined) => {
      if (!tag || !/[/:]/.test(tag)) return undefined;
      try {
        return formatReference(parseReference(tag));
      } catch {
        return undefined;
      }
    };
    if (manifests.length === 1) return [{ spec: { kind: 'oci-archive', path: file }, name: fullName(manifests[0].annotations?.['org.opencontainers.image.ref.name']) }];
    return manifests.map((m) => {
      const tag = m.annotations?.['org.opencontainers.image.ref.name'];
      if (!tag) throw badRequest('image archive: index.json lists several images, not all of them named (org.opencontainers.image.ref.name)');
      return { spec: { kind: 'oci-archive', path: file, tag }, name: fullName(tag) };
    });
  }
  throw badRequest('image archive: neither a docker archive (manifest.json) nor an OCI layout (oci-layout, index.json)');
}

async function load(ctx: DaemonContext, req: ApiRequest, res: ApiResponse): Promise<void> {
  const store = ctx.images;
  const quiet = boolParam(req.query, 'quiet');
  const limit = loadLimit(store);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.raw.resume();
    res.raw.setHeader('Connection', 'close');
    throw new ApiError(413, `image archive too large: ${declared} bytes, more than the ${limit} the image store can take`);
  }
  const file = path.join(store.tmp, `load-${randomBytes(8).toString('hex')}.tar`);
  const fd = fs.openSync(file, 'wx', 0o600);
  // Held while the archive is here: a pull's cleanup of tmp/ leaves a locked entry alone.
  native.flock(fd, 'ex', true);
  // The response starts with the first message: until then a failure is an HTTP status.
  let started = false;
  const write = streamHead(res);
  const send = (m: JsonMessage) => {
    started = true;
    write(m);
  };
  let loaded = 0;
  // Which image of the archive is being loaded, to name it in a failure rather than the temporary file.
  let current: { describe: string; index: number } | undefined;
  try {
    await receive(req.raw, fd, limit);
    const specs = archiveSpecs(file, await scanArchive(file));
    const held = await store.lockStore('sh');
    try {
      for (const [index, { spec, name }] of specs.entries()) {
        current = { describe: sourceName(spec), index };
        const before = store.readRefs().images;
        const pulled = await pull(store, spec, quiet ? {} : { progress: new LoadProgress(send) });
        const transport = pulled.names.filter((n) => /^(docker-archive|oci-archive):/.test(n));
        const names = [...new Set([...pulled.names.filter((n) => !transport.includes(n)), ...(name ? [name] : [])])];
        await store.updateRefs((refs) => {
          for (const n of transport) delete refs.images[n];
          // A name that already led to this image keeps its record (and the registry digest it was pulled with).
          for (const n of names) refs.images[n] = before[n]?.config === pulled.ref.config ? before[n] : pulled.ref;
          if (!names.length) refs.images[danglingName(pulled.ref.config)] = pulled.ref;
          tidyDangling(refs, names.map((n) => before[n]).filter((r): r is ImageRef => Boolean(r) && r.config !== pulled.ref.config));
        });
        loaded++;
        const shown = names.map((n) => familiarString(n)).filter((n): n is string => Boolean(n));
        if (shown.length) for (const s of shown) send({ stream: `Loaded image: ${s}\n` });
        else send({ stream: `Loaded image ID: ${pulled.ref.config}\n` });
        ctx.events.emit('image', 'load', pulled.ref.config, { name: shown[0] ?? pulled.ref.config });
      }
    } finally {
      held.release();
    }
  } catch (err) {
    if (!loaded) {
      // Blobs and layers a failed load verified and stored, which no name holds.
      const held = await store.lockStore('ex');
      try {
        collectGarbage(store);
      } finally {
        held.release();
      }
    }
    const where = current ? `image archive: image ${current.index + 1}: ` : 'image archive: ';
    const failure = err instanceof ApiError ? err : badRequest(`${where}${reason(err).split(`${current?.describe}: `).join('')}`);
    if (!started) throw failure;
    send(errorMessage(failure.message));
  } finally {
    fs.rmSync(file, { force: true });
    fs.closeSync(fd);
  }
  res.raw.end();
}

// ------------------------------------------------------------------------------ save

interface SaveItem {
  view: ImageView;
  /** The tags written into the archive (none when the image was named by its ID). */
  tags: string[];
}

/**
 * `docker save`: a docker-archive tar in the layout Docker 25+ writes — an OCI image layout
 * (oci-layout, index.json, blobs/sha256/...) with the legacy manifest.json beside it, whose
 * Config and Layers point into blobs/. Layers are the store's blobs as pulled (compressed
 * or not): dockerd's and husk's load both decompress them.
 */
async function save(ctx: DaemonContext, queries: string[], res: ApiResponse): Promise<void> {
  const store = ctx.images;
  if (!queries.length) throw badRequest('no image named (names=...)');
  const items: SaveItem[] = [];
  for (const q of queries) {
    const view = lookup(store, q);
    let tags: string[] = [];
    if (!byId(store, q)) {
      const shown = familiarString(formatReference(parseReference(q)));
      if (shown && !shown.includes('@')) tags = [shown];
    }
    const same = items.find((i) => i.view.id === view.id);
    if (same) same.tags.push(...tags.filter((t) => !same.tags.includes(t)));
    else items.push({ view, tags });
  }
  const blobs = new Set<string>();
  const files: { name: string; digest: string }[] = [];
  const manifestJson: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const indexManifests: unknown[] = [];
  for (const { view, tags } of items) {
    const manifestData = store.readBlob(view.ref.digest);
    const manifest = JSON.parse(manifestData.toString('utf8')) as { mediaType?: string; layers: { digest: string }[] };
    const add = (digest: string) => {
      if (!store.hasBlob(digest)) throw new ApiError(500, `image ${shortId(view.id)}: blob ${digest} is missing from the image store`);
      if (blobs.has(digest)) return;
      blobs.add(digest);
      files.push({ name: `blobs/sha256/${hexOf(digest)}`, digest });
    };
    add(view.ref.digest);
    add(view.id);
    for (const l of manifest.layers) add(l.digest);
    manifestJson.push({ Config: `blobs/sha256/${hexOf(view.id)}`, RepoTags: tags.length ? tags : null, Layers: manifest.layers.map((l) => `blobs/sha256/${hexOf(l.digest)}`) });
    const desc = { mediaType: manifest.mediaType ?? MEDIA.ociManifest, digest: view.ref.digest, size: manifestData.length };
    if (tags.length) {
      for (const t of tags) {
        const ref = parseReference(t);
        indexManifests.push({ ...desc, annotations: { 'io.containerd.image.name': formatReference(ref), 'org.opencontainers.image.ref.name': ref.tag } });
      }
    } else {
      indexManifests.push(desc);
    }
  }
  // Shared: a remove or prune waits, so no blob goes while it is being sent.
  const held = await store.lockStore('sh');
  const pack = tar.pack();
  res.raw.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/x-tar' });
  // Errors come out of the entries' promises; the streams' own 'error' events must not go unheard.
  pack.on('error', () => undefined);
  pack.pipe(res.raw);
  // A client that goes away (docker save piped into a command that ended) ends the save.
  let input: fs.ReadStream | undefined;
  const gone = new Promise<never>((_, reject) => res.raw.on('close', () => {
    if (res.raw.writableFinished) return;
    input?.destroy();
    reject(new Error('the client closed the connection'));
  }));
  gone.catch(() => undefined);
  const mtime = new Date(0);
  /** One entry: a directory, a small text, or a file streamed from the store. */
  const entry = (header: Partial<tar.Header> & { name: string }, content: { data?: string; file?: string } = {}) => Promise.race([gone, new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content.file === undefined) {
      if (content.data === undefined) pack.entry(header, done);
      else pack.entry(header, content.data, done);
      return;
    }
    const sink = pack.entry(header, done);
    const source = fs.createReadStream(content.file);
    input = source;
    source.on('error', (err) => {
      sink.destroy(err);
      reject(err);
    });
    sink.on('error', (err: Error) => {
      source.destroy();
      reject(err);
    });
    source.pipe(sink);
  })]);
  try {
    await entry({ name: 'blobs/', type: 'directory', mtime, mode: 0o755 });
    await entry({ name: 'blobs/sha256/', type: 'directory', mtime, mode: 0o755 });
    for (const f of files) {
      const file = store.blobPath(f.digest);
      await entry({ name: f.name, size: fs.statSync(file).size, mtime, mode: 0o644 }, { file });
    }
    await entry({ name: 'index.json', mtime, mode: 0o644 }, { data: JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: indexManifests }) });
    await entry({ name: 'manifest.json', mtime, mode: 0o644 }, { data: JSON.stringify(manifestJson) });
    await entry({ name: 'oci-layout', mtime, mode: 0o644 }, { data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) });
    pack.finalize();
  } catch (err) {
    // The archive is cut short: the client sees a broken tar, never a whole one.
    input?.destroy();
    pack.destroy();
    res.raw.destroy();
    throw err;
  } finally {
    held.release();
  }
  for (const { view, tags } of items) ctx.events.emit('image', 'save', view.id, { name: tags[0] ?? view.id });
}

// ------------------------------------------------------------------------------ routes

export function routes(ctx: DaemonContext): Route[] {
  const store = ctx.images;
  return [
    {
      method: 'GET',
      path: '/images/json',
      handle(req, res) {
        const filters = filtersParam(req.query, ['dangling', 'label', 'reference', 'before', 'since', 'until']);
        const dangling = boolFilter(filters.get('dangling'), 'dangling');
        const before = filters.get('before')?.map((q) => created(lookup(store, q)));
        const since = filters.get('since')?.map((q) => created(lookup(store, q)));
        const until = untilFilter(filters.get('until'));
        const list = imageViews(store).filter((v) => {
          if (dangling !== undefined && isDangling(v) !== dangling) return false;
          if (!(filters.get('label') ?? []).every((l) => labelMatches(v.config, l))) return false;
          const refs = filters.get('reference');
          if (refs && !refs.some((p) => referenceMatches(v, p))) return false;
          if (before && !before.every((t) => created(v) < t)) return false;
          if (since && !since.every((t) => created(v) > t)) return false;
          if (until !== undefined && created(v) >= until) return false;
          return true;
        });
        res.json(list.map((v) => summary(v, req.version)));
      },
    },
    { method: 'POST', path: '/images/create', handle: (req, res) => create(ctx, req, res) },
    { method: 'POST', path: '/images/load', handle: (req, res) => load(ctx, req, res) },
    { method: 'GET', path: '/images/get', handle: (req, res) => save(ctx, req.query.getAll('names').flatMap((n) => n.split(',')).filter(Boolean), res) },
    { method: 'POST', path: '/images/prune', handle: (req, res) => prune(ctx, req, res) },
    {
      method: 'GET',
      path: '/images/search',
      handle() {
        throw new ApiError(501, 'husk daemon does not search registries');
      },
    },
    { method: 'GET', path: '/images/{name*}/json', handle: (req, res) => res.json(inspect(store, lookup(store, req.params.name))) },
    { method: 'GET', path: '/images/{name*}/history', handle: (req, res) => res.json(history(store, lookup(store, req.params.name))) },
    { method: 'GET', path: '/images/{name*}/get', handle: (req, res) => save(ctx, [req.params.name], res) },
    { method: 'POST', path: '/images/{name*}/tag', handle: (req, res) => tagImage(ctx, req, res) },
    {
      method: 'POST',
      path: '/images/{name*}/push',
      handle() {
        throw new ApiError(501, 'husk daemon does not push images (use skopeo copy)');
      },
    },
    { method: 'DELETE', path: '/images/{name*}', handle: (req, res) => removeImage(ctx, req, res) },
  ];
}
