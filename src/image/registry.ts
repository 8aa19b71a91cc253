// A client for the OCI distribution API (v2): manifests and blobs of one repository.
//
// Transport: HTTPS. Plain HTTP only for a registry on the loopback interface or one the user
// marked insecure (--insecure-registry, HUSK_INSECURE_REGISTRIES); as Docker does, HTTPS is
// tried first and HTTP used when the TLS handshake fails.
//
// Auth: a request answered 401 carries WWW-Authenticate challenges. `Bearer` sends husk to
// the token endpoint (`realm`, with `service` and `scope=repository:NAME:pull`), with the
// user's credentials as HTTP basic auth when there are some (anonymous otherwise), and the
// token it gets is sent on every request after. `Basic` sends the credentials directly.
import * as http from 'http';
import * as https from 'https';
import { Readable } from 'stream';
import { HuskError, reason } from '../errors';
import { trace } from '../host/trace';
import { credentialsFor, parseChallenges, type Credentials } from './auth';
import { digestOf } from './digest';
import { ACCEPTED_MANIFESTS } from './manifest';
import { apiHost, isLoopbackRegistry } from './reference';

export interface RegistryOptions {
  /** Registries (host[:port]) that may be spoken to in plain HTTP. */
  insecure?: string[];
  /** Credentials to use instead of the ones in the Docker config (husk login checks them). */
  credentials?: Credentials | null;
  /** A user agent for requests. */
  userAgent?: string;
  /** Stops every request (and a body being read) when aborted. */
  signal?: AbortSignal;
}

export function insecureRegistries(extra: string[] = []): string[] {
  const env = (process.env.HUSK_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return [...env, ...extra];
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

function describeErrors(body: string): string | undefined {
  try {
    const doc = JSON.parse(body) as RegistryErrorBody;
    if (Array.isArray(doc.errors) && doc.errors.length) {
      return doc.errors.map((e) => `${e.message ?? 'error'}${e.code ? ` (${e.code})` : ''}`).join('; ');
    }
  } catch {
    // not JSON
  }
  const text = body.trim().replace(/\s+/g, ' ');
  return text ? text.slice(0, 200) : undefined;
}

function fetchFailure(err: unknown): string {
  const cause = (err as { cause?: NodeJS.ErrnoException & { message?: string } }).cause;
  if (cause) {
    const message = String(cause.message ?? cause);
    return cause.code && !message.includes(cause.code) ? `${message} (${cause.code})` : message;
  }
  return reason(err);
}

/**
 * A GET with node:http(s), following redirects; the registry's Authorization goes only to the
 * registry's own host (a redirect to a storage service carries its own). For blob bodies:
 * undici's fetch costs about twice the CPU per byte (280 against 160 ms for 61 MB here).
 */
function get(url: string, headers: Record<string, string>, registryHost: string, signal?: AbortSignal, redirects = 0): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const sent = { ...headers };
    if (target.host !== registryHost) delete sent.authorization;
    const req = (target.protocol === 'https:' ? https : http).get(target, { headers: sent, signal }, (res) => {
      const location = res.headers.location;
      if (res.statusCode && [301, 302, 303, 307, 308].includes(res.statusCode) && location) {
        res.resume();
        if (redirects >= 10) reject(new Error(`more than 10 redirects from ${url}`));
        else resolve(get(new URL(location, target).href, headers, registryHost, signal, redirects + 1));
        return;
      }
      resolve(res);
    });
    req.on('error', reject);
  });
}

/** A registry's answer, from node:http or from fetch. */
interface Answer {
  status: number;
  statusText: string;
  body?: Readable;
}

function fromFetch(res: Response): Answer {
  return { status: res.status, statusText: res.statusText, body: res.body ? Readable.fromWeb(res.body as import('stream/web').ReadableStream<Uint8Array>) : undefined };
}

/** The text of an answer's body (an error's), at most 64 KiB of it. */
function textOf(body: Readable | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (!body) return resolve('');
    let text = '';
    body.setEncoding('utf8').on('data', (c: string) => (text = (text + c).slice(0, 64 * 1024))).on('end', () => resolve(text)).on('error', () => resolve(text));
  });
}

/** The error for a registry's answer that is not a success: its status and its errors body. */
function failureOf(status: number, statusText: string, body: string, what: string): HuskError {
  const detail = describeErrors(body);
  return new HuskError(`${what}: ${status === 404 ? 'not found' : `${status} ${statusText}`.trim()}${detail ? `: ${detail}` : ''}`);
}

/** A TLS handshake failure (as against a plain-HTTP registry), not a network one. */
function isTlsFailure(err: unknown): boolean {
  const cause = (err as { cause?: NodeJS.ErrnoException & { message?: string } }).cause;
  return Boolean(cause && (/^(ERR_SSL|EPROTO|ECONNRESET)/.test(cause.code ?? '') || /SSL|TLS|certificate/i.test(String(cause.message))));
}

/** Everything husk says to one registry: the scheme it settled on and the tokens it got. */
export class RegistryClient {
  private base?: string;
  private authorization?: string;
  private credentials?: Credentials | null;
  private readonly host: string;

  constructor(readonly registry: string, readonly repository: string, private readonly opts: RegistryOptions = {}) {
    this.host = apiHost(registry);
    if (opts.credentials !== undefined) this.credentials = opts.credentials;
  }

  private get plainHttpAllowed(): boolean {
    return isLoopbackRegistry(this.registry) || insecureRegistries(this.opts.insecure).includes(this.registry);
  }

  private creds(): Credentials | undefined {
    if (this.credentials === undefined) this.credentials = credentialsFor(this.registry) ?? null;
    return this.credentials ?? undefined;
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.authorization) headers.set('authorization', this.authorization);
    headers.set('user-agent', this.opts.userAgent ?? 'husk');
    trace('husk', `${init.method ?? 'GET'} ${url}`, { kind: 'registryRequest', method: init.method ?? 'GET', url });
    return fetch(url, { ...init, headers, redirect: 'follow', signal: this.opts.signal });
  }

  /** Picks https://, or http:// when TLS fails and plain HTTP is allowed for this registry. */
  private async settleBase(path: string, init: RequestInit): Promise<Response> {
    const https = `https://${this.host}`;
    try {
      const res = await this.send(https + path, init);
      this.base = https;
      return res;
    } catch (err) {
      if (!this.plainHttpAllowed) {
        const hint = isTlsFailure(err) ? ` (for a registry without TLS, use --insecure-registry ${this.registry})` : '';
        throw new HuskError(`registry ${this.registry}: ${fetchFailure(err)}${hint}`);
      }
      const http = `http://${this.host}`;
      try {
        const res = await this.send(http + path, init);
        this.base = http;
        return res;
      } catch (err2) {
        throw new HuskError(`registry ${this.registry}: https: ${fetchFailure(err)}; http: ${fetchFailure(err2)}`);
      }
    }
  }

  private async once(path: string, init: RequestInit): Promise<Response> {
    if (!this.base) return this.settleBase(path, init);
    try {
      return await this.send(this.base + path, init);
    } catch (err) {
      throw new HuskError(`registry ${this.registry}: ${fetchFailure(err)}`);
    }
  }

  /** A request with the auth dance: one retry after answering a challenge. */
  async request(path: string, init: RequestInit = {}, what = path): Promise<Response> {
    let res = await this.once(path, init);
    if (res.status !== 401) return res;
    const header = res.headers.get('www-authenticate');
    const body = await res.text().catch(() => '');
    if (!header) throw new HuskError(`${what}: unauthorized${describeErrors(body) ? `: ${describeErrors(body)}` : ''}`);
    await this.authenticate(header, what);
    res = await this.once(path, init);
    if (res.status === 401) {
      const text = await res.text().catch(() => '');
      throw new HuskError(`${what}: unauthorized${this.creds() ? ' (the credentials were refused)' : ' (log in with `husk image login`)'}${describeErrors(text) ? `: ${describeErrors(text)}` : ''}`);
    }
    return res;
  }

  private async authenticate(header: string, what: string) {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const creds = this.creds();
    if (bearer) {
      this.authorization = `Bearer ${await this.token(bearer.params, creds, what)}`;
      return;
    }
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (basic) {
      if (!creds?.username) throw new HuskError(`${what}: the registry asks for a user name and password (log in with \`husk image login ${this.registry}\`)`);
      this.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      return;
    }
    throw new HuskError(`${what}: unsupported authentication challenge ${JSON.stringify(header)}`);
  }

  private async token(params: Record<string, string>, creds: Credentials | undefined, what: string): Promise<string> {
    const realm = params.realm;
    if (!realm) throw new HuskError(`${what}: the Bearer challenge has no realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new HuskError(`${what}: the token realm ${JSON.stringify(realm)} is not a URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (isLoopbackRegistry(url.host) || this.plainHttpAllowed))) {
      throw new HuskError(`${what}: refusing to send credentials to the token realm ${realm} over plain HTTP`);
    }
    // A challenge names the scope it wants; /v2/ (husk image login) asks for none.
    const scope = params.scope ?? (this.repository ? `repository:${this.repository}:pull` : undefined);
    let res: Response;
    try {
      if (creds?.identityToken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'husk' });
        if (scope) form.set('scope', scope);
        if (params.service) form.set('service', params.service);
        trace('husk', `POST ${url.origin}${url.pathname} (token, scope ${scope ?? 'none'})`,
          { kind: 'registryToken', url: `${url.origin}${url.pathname}`, scope });
        res = await fetch(url, { method: 'POST', body: form });
      } else {
        if (params.service) url.searchParams.set('service', params.service);
        if (scope) url.searchParams.set('scope', scope);
        const headers: Record<string, string> = {};
        if (creds?.username) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
        trace('husk', `GET ${url} (token${creds?.username ? ` for ${creds.username}` : ', anonymous'})`,
          { kind: 'registryToken', url: `${url.origin}${url.pathname}`, scope, user: creds?.username });
        res = await fetch(url, { headers });
      }
    } catch (err) {
      throw new HuskError(`${what}: token endpoint ${realm}: ${fetchFailure(err)}`);
    }
    const body = await res.text();
    if (!res.ok) {
      throw new HuskError(`${what}: token endpoint ${realm} answered ${res.status}${res.status === 401 ? ' (wrong user name or password?)' : ''}${describeErrors(body) ? `: ${describeErrors(body)}` : ''}`);
    }
    let doc: { token?: string; access_token?: string };
    try {
      doc = JSON.parse(body);
    } catch {
      throw new HuskError(`${what}: token endpoint ${realm} did not answer JSON`);
    }
    const token = doc.token ?? doc.access_token;
    if (!token) throw new HuskError(`${what}: token endpoint ${realm} gave no token`);
    return token;
  }

  private async failure(res: Response, what: string): Promise<HuskError> {
    return failureOf(res.status, res.statusText, await res.text().catch(() => ''), what);
  }

  /** GET /v2/: checks the registry answers and the credentials work. */
  async ping(): Promise<void> {
    const res = await this.request('/v2/', {}, `registry ${this.registry}`);
    if (!res.ok) throw await this.failure(res, `registry ${this.registry}`);
    await res.arrayBuffer();
  }

  async getManifest(reference: string, what: string): Promise<{ data: Buffer; mediaType?: string; digest: string }> {
    const res = await this.request(`/v2/${this.repository}/manifests/${reference}`, { headers: { accept: ACCEPTED_MANIFESTS.join(', ') } }, what);
    if (!res.ok) throw await this.failure(res, what);
    const length = Number(res.headers.get('content-length') ?? '0');
    if (length > 4 * 1024 * 1024) throw new HuskError(`${what}: the manifest is ${length} bytes, more than husk accepts (4 MiB)`);
    const data = Buffer.from(await res.arrayBuffer());
    if (data.length > 4 * 1024 * 1024) throw new HuskError(`${what}: the manifest is more than 4 MiB`);
    const mediaType = res.headers.get('content-type')?.split(';')[0].trim() || undefined;
    return { data, mediaType, digest: digestOf(data) };
  }

  /**
   * A blob's bytes from `offset` on; `offset` in the result is 0 when the server ignored the
   * range. Once the scheme is settled (the manifest came first, and got the token a registry
   * wants), through node:http(s); an answer of 401 takes fetch's path, with the challenge.
   */
  async getBlob(digest: string, offset: number, what: string): Promise<{ stream: Readable; offset: number }> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    const path = `/v2/${this.repository}/blobs/${digest}`;
    const answer = (this.base && (await this.getOverHttp(this.base + path, headers))) || fromFetch(await this.request(path, { headers }, what));
    if (answer.status === 416 && offset > 0) {
      answer.body?.resume();
      return this.getBlob(digest, 0, what);
    }
    if (answer.status < 200 || answer.status > 299) throw failureOf(answer.status, answer.statusText, await textOf(answer.body), what);
    if (!answer.body) throw new HuskError(`${what}: the registry sent no body`);
    return { stream: answer.body, offset: answer.status === 206 ? offset : 0 };
  }

  /** A GET through node:http(s) with what the client holds (its token); undefined when the
   * registry answers 401, for fetch's path and its challenge. */
  private async getOverHttp(url: string, headers: Record<string, string>): Promise<Answer | undefined> {
    trace('husk', `GET ${url}`, { kind: 'registryRequest', method: 'GET', url });
    const auth: Record<string, string> = this.authorization ? { authorization: this.authorization } : {};
    let res: http.IncomingMessage;
    try {
      res = await get(url, { ...headers, ...auth, 'user-agent': this.opts.userAgent ?? 'husk' }, this.host, this.opts.signal);
    } catch (err) {
      throw new HuskError(`registry ${this.registry}: ${reason(err)}`);
    }
    if (res.statusCode === 401) {
      res.resume();
      return undefined;
    }
    return { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body: res };
  }
}
