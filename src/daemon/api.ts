// The Docker Engine API's HTTP layer: routes, version prefixes, request bodies, errors in
// Docker's shape. Everything above it (system.ts, images.ts, containers.ts, ...) registers
// routes and throws ApiError; nothing here knows about containers or images.
//
// What dockerd does, and husk does the same:
//  - every path may carry a version prefix, `/v1.41/containers/json`; a version above the
//    highest this daemon speaks is refused with 400, one below the lowest too;
//  - errors are `{"message": "..."}` with the status the CLI expects (404 no such container or
//    image, 409 conflict, 400 bad parameter, 304 not modified, 500 otherwise);
//  - booleans in the query are `1`/`true`/`True` (anything else false, as Go's ParseBool plus
//    dockerd's BoolValue), filters are a JSON object of arrays.
import * as http from 'http';
import type { Duplex } from 'stream';

/** The newest and the oldest API version this daemon speaks. */
export const API_VERSION = '1.43';
export const MIN_API_VERSION = '1.24';

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string) => new ApiError(404, what);
export const badRequest = (what: string) => new ApiError(400, what);
export const conflict = (what: string) => new ApiError(409, what);

/** One request, parsed: the path without its version prefix, the query, the version asked. */
export interface ApiRequest {
  method: string;
  path: string;
  /** The version in the prefix, or the newest when there is none. */
  version: string;
  query: URLSearchParams;
  /** What the route's pattern captured, by name. */
  params: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  raw: http.IncomingMessage;
  /** The body, at most `limit` bytes (413 beyond). */
  body(limit?: number): Promise<Buffer>;
  /** The body as JSON; an empty body is `fallback`; malformed JSON is a 400. */
  json<T = unknown>(fallback: T, limit?: number): Promise<T>;
}

/** A hijacked connection (attach, exec start): the raw socket after the 101 response was
 * written, and what came after the request's head. */
export interface Hijacked {
  socket: Duplex;
  head: Buffer;
}

export interface ApiResponse {
  raw: http.ServerResponse;
  /** Sends a JSON body with `status` (default 200). */
  json(body: unknown, status?: number): void;
  /** Sends an empty body with `status` (default 204). */
  empty(status?: number): void;
  /** Takes the connection over for a raw stream, as dockerd does for attach and exec. The
   * response head is written here: 101 UPGRADED when the client asked for an upgrade, else
   * 200 (old clients). `contentType` is raw-stream or multiplexed-stream. */
  hijack(contentType: string): Hijacked;
}

export type Handler = (req: ApiRequest, res: ApiResponse) => Promise<void> | void;

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD';
  /** `/containers/{id}/start`: each `{name}` matches one path segment (names may contain
   * slashes only in `{name*}`, for image names like `library/debian:12`). */
  path: string;
  handle: Handler;
}

interface Compiled extends Route {
  regex: RegExp;
  names: string[];
}

export class Router {
  private routes: Compiled[] = [];

  add(routes: Route[]): this {
    for (const r of routes) {
      const names: string[] = [];
      const source = r.path.replace(/[.+?^$()[\]\\|]/g, '\\$&').replace(/\{(\w+)(\*?)\}/g, (_, name: string, star: string) => {
        names.push(name);
        return star ? '(.+)' : '([^/]+)';
      });
      this.routes.push({ ...r, regex: new RegExp(`^${source}$`), names });
    }
    return this;
  }

  /** The route for a method and path, its captures, or undefined; `allowed` says whether the
   * path exists with another method (405 rather than 404). */
  match(method: string, path: string): { route: Compiled; params: Record<string, string> } | { allowed: boolean } {
    let allowed = false;
    for (const route of this.routes) {
      const m = route.regex.exec(path);
      if (!m) continue;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        allowed = true;
        continue;
      }
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1])));
      return { route, params };
    }
    return { allowed };
  }
}

/** "1.41" -> [1, 41], for comparing versions. */
function versionParts(v: string): [number, number] {
  const [a, b] = v.split('.').map(Number);
  return [a, b];
}

export function compareVersions(a: string, b: string): number {
  const [a1, a2] = versionParts(a);
  const [b1, b2] = versionParts(b);
  return a1 - b1 || a2 - b2;
}

/** Splits `/v1.41/containers/json` into the version and the path; checks the version. */
export function splitVersion(pathname: string): { version: string; path: string } {
  const m = /^\/v([0-9]+\.[0-9]+)(\/.*)$/.exec(pathname);
  if (!m) return { version: API_VERSION, path: pathname };
  const version = m[1];
  if (compareVersions(version, API_VERSION) > 0) {
    throw badRequest(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw badRequest(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  return { version, path: m[2] };
}

/** dockerd's BoolValue: `1`, `true`, `True`... true; absent, `0`, `false`, `no`, `none` false. */
export function boolParam(query: URLSearchParams, name: string, fallback = false): boolean {
  const v = query.get(name);
  if (v === null) return fallback;
  const s = v.trim().toLowerCase();
  return !(s === '' || s === '0' || s === 'no' || s === 'false' || s === 'none');
}

/** An integer query parameter, checked. */
export function intParam(query: URLSearchParams, name: string, fallback?: number): number | undefined {
  const v = query.get(name);
  if (v === null || v === '') return fallback;
  if (!/^-?[0-9]+$/.test(v)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)}: not an integer`);
  return Number(v);
}

/** `filters={"label":["a=b"],"status":{"running":true}}`: both of Docker's forms, as
 * name -> values. Unknown filter names are refused by the caller, which knows its own. */
export function filtersParam(query: URLSearchParams, known: string[]): Map<string, string[]> {
  const text = query.get('filters');
  const out = new Map<string, string[]>();
  if (!text) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest(`invalid filter: ${JSON.stringify(text)} is not JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('invalid filter: expected a JSON object');
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!known.includes(name)) throw badRequest(`invalid filter '${name}'`);
    const values = Array.isArray(value) ? value : value && typeof value === 'object' ? Object.keys(value).filter((k) => (value as Record<string, unknown>)[k]) : undefined;
    if (!values || values.some((v) => typeof v !== 'string')) throw badRequest(`invalid filter '${name}': expected a list of strings`);
    out.set(name, values as string[]);
  }
  return out;
}

/** A `label` filter: every `KEY` is present and every `KEY=VALUE` has that value. */
export function labelsMatch(labels: Record<string, string>, wanted: string[]): boolean {
  return wanted.every((w) => {
    const [k, v] = w.split('=', 2);
    return v === undefined ? k in labels : labels[k] === v;
  });
}

/** The request body, at most `limit` bytes (413 beyond). */
export function readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new ApiError(413, `request body too large: ${declared} bytes (at most ${limit})`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new ApiError(413, `request body too large: more than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** An upgrade request's body (exec start sends one): Node hands over the socket right after
 * the head, so the Content-Length bytes are read from `head` and then the socket; what
 * follows them is the stream's, and goes back into `head`. */
function readUpgradeBody(req: http.IncomingMessage, up: { socket: Duplex; head: Buffer }, limit: number): Promise<Buffer> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isFinite(length) || length <= 0) return Promise.resolve(Buffer.alloc(0));
  if (length > limit) return Promise.reject(new ApiError(413, `request body too large: ${length} bytes (at most ${limit})`));
  return new Promise((resolve, reject) => {
    let got = up.head;
    const done = () => {
      up.socket.off('data', more);
      up.socket.off('error', reject);
      up.socket.pause();
      const body = got.subarray(0, length);
      up.head = got.subarray(length);
      resolve(body);
    };
    const more = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= length) done();
    };
    if (got.length >= length) return done();
    up.socket.on('data', more);
    up.socket.on('error', reject);
    up.socket.resume();
  });
}

function parseJson<T>(body: Buffer, fallback: T): T {
  if (!body.length) return fallback;
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (err) {
    throw badRequest(`malformed JSON in the request body: ${(err as Error).message}`);
  }
}

/**
 * Checks a decoded JSON object against the fields Docker's API defines for it: a field the API
 * does not have is refused (a typo would otherwise be ignored silently), naming where it was.
 */
export function checkFields(value: unknown, where: string, known: readonly string[]): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`${where}: expected a JSON object`);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) throw badRequest(`${where}: unknown field ${JSON.stringify(key)}`);
  }
  return record;
}

const SERVER = `husk/${require('../../package.json').version} (linux)`;

/** Headers dockerd sends on every response; the CLI reads Api-Version and Ostype from /_ping. */
export function commonHeaders(): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: SERVER,
  };
}

/** Answers one request through the router: errors become Docker's `{"message"}` bodies. */
export async function dispatch(router: Router, req: http.IncomingMessage, res: http.ServerResponse, upgradeSocket?: { socket: Duplex; head: Buffer }): Promise<void> {
  const headers = commonHeaders();
  const url = new URL(req.url ?? '/', 'http://docker');
  let hijacked = false;
  const response: ApiResponse = {
    raw: res,
    json(body, status = 200) {
      const text = JSON.stringify(body);
      res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
    empty(status = 204) {
      res.writeHead(status, headers);
      res.end();
    },
    hijack(contentType) {
      hijacked = true;
      if (upgradeSocket) {
        const head = [
          'HTTP/1.1 101 UPGRADED',
          `Content-Type: ${contentType}`,
          'Connection: Upgrade',
          'Upgrade: tcp',
          ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
          '', '',
        ].join('\r\n');
        upgradeSocket.socket.write(head);
        return upgradeSocket;
      }
      // An old client without Upgrade: dockerd answers 200 and hijacks all the same.
      const socket = req.socket;
      res.detachSocket(socket);
      socket.write(['HTTP/1.1 200 OK', `Content-Type: ${contentType}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n'));
      return { socket, head: Buffer.alloc(0) };
    },
  };
  try {
    const { version, path } = splitVersion(url.pathname);
    const found = router.match(req.method ?? 'GET', path);
    if (!('route' in found)) {
      if (found.allowed) throw new ApiError(405, `method ${req.method} not allowed for ${path}`);
      throw notFound(`page not found`);
    }
    let body: Promise<Buffer> | undefined;
    const readOnce = (limit = 1 << 20) => (body ??= upgradeSocket ? readUpgradeBody(req, upgradeSocket, limit) : readBody(req, limit));
    await found.route.handle({
      method: req.method ?? 'GET', path, version, query: url.searchParams, params: found.params, headers: req.headers, raw: req,
      body: readOnce,
      json: async <T>(fallback: T, limit?: number) => parseJson(await readOnce(limit), fallback),
    }, response);
  } catch (err) {
    if (hijacked) {
      (upgradeSocket?.socket ?? req.socket).destroy();
      return;
    }
    const status = err instanceof ApiError ? err.status : 500;
    const message = err instanceof Error ? err.message : String(err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    response.json({ message }, status);
  }
}
