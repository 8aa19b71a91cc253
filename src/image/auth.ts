// Registry credentials and challenges.
//
// Credentials live where Docker keeps them, so `docker login` and `husk login` share them:
// `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), `auths` keyed by registry
// (Docker Hub's key is "https://index.docker.io/v1/"), each with a base64 "user:password" `auth`
// (or `username`/`password`, or an `identitytoken`). Credential helpers (`credsStore`,
// `credHelpers`) are asked with `docker-credential-<name> get`, as Docker does.
//
// Challenges are the WWW-Authenticate headers of a 401: `Basic realm="..."` or
// `Bearer realm="...",service="...",scope="..."` (RFC 7235 syntax, quoted or bare values).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { writeFileAtomic } from '../host/atomicWrite';
import { DOCKER_HUB } from './reference';

export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token endpoint. */
  identityToken?: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one WWW-Authenticate header value into its challenges. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipSpace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i])) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    skipSpace();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    for (;;) {
      skipSpace();
      const save = i;
      const name = token();
      skipSpace();
      if (!name || s[i] !== '=') {
        i = save;
        break;
      }
      i++;
      skipSpace();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        value = token();
      }
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (s[i] === ',') i++;
    }
  }
  return out;
}

export function dockerConfigDir(): string {
  return process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
}

export function dockerConfigPath(): string {
  return path.join(dockerConfigDir(), 'config.json');
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

function readConfig(file: string): DockerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new HuskError(`${file}: ${reason(err)}`);
  }
  try {
    const doc = JSON.parse(text);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
    return doc as DockerConfig;
  } catch (err) {
    throw new HuskError(`${file}: ${(err as Error).message}`);
  }
}

/** The key a registry's credentials are stored under: Docker Hub's historic URL, or the host. */
export function authKey(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
}

/** `https://host:5000/v1/`, `http://host`, `host` all name the registry `host[:port]`. */
function normalizeKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//, '');
  k = k.split('/')[0];
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') return DOCKER_HUB;
  return k;
}

function decodeAuth(entry: { auth?: string; username?: string; password?: string; identitytoken?: string }, where: string): Credentials | undefined {
  if (entry.identitytoken) return { username: entry.username, identityToken: entry.identitytoken };
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) throw new HuskError(`${where}: "auth" is not base64 of "user:password"`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (entry.username !== undefined || entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

function fromHelper(helper: string, registry: string): Credentials | undefined {
  const program = `docker-credential-${helper}`;
  const res = spawnSync(program, ['get'], { input: authKey(registry), encoding: 'utf8', timeout: 30_000 });
  if (res.error) throw new HuskError(`credential helper ${program}: ${reason(res.error)}`);
  if (res.status !== 0) {
    if (/credentials not found/i.test(res.stdout + res.stderr)) return undefined;
    throw new HuskError(`credential helper ${program} get: ${(res.stderr || res.stdout).trim() || `exit status ${res.status}`}`);
  }
  try {
    const doc = JSON.parse(res.stdout) as { Username?: string; Secret?: string };
    if (doc.Username === '<token>') return { identityToken: doc.Secret };
    return { username: doc.Username, password: doc.Secret };
  } catch {
    throw new HuskError(`credential helper ${program} get: output is not JSON`);
  }
}

/** The credentials for a registry, or undefined (anonymous). */
export function credentialsFor(registry: string, file = dockerConfigPath()): Credentials | undefined {
  const config = readConfig(file);
  const helper = config.credHelpers?.[authKey(registry)] ?? config.credHelpers?.[registry];
  if (helper) return fromHelper(helper, registry);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (normalizeKey(key) === registry) {
      const creds = decodeAuth(entry ?? {}, `${file}: auths[${JSON.stringify(key)}]`);
      if (creds) return creds;
    }
  }
  if (config.credsStore) return fromHelper(config.credsStore, registry);
  return undefined;
}

function writeConfig(file: string, config: DockerConfig) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, JSON.stringify(config, null, '\t') + '\n', 0o600);
}

/** Stores credentials as `docker login` does (base64 in `auths`), keeping everything else. */
export function saveCredentials(registry: string, username: string, password: string, file = dockerConfigPath()) {
  const config = readConfig(file);
  const auths = { ...(config.auths ?? {}) };
  for (const key of Object.keys(auths)) if (normalizeKey(key) === registry) delete auths[key];
  auths[authKey(registry)] = { auth: Buffer.from(`${username}:${password}`).toString('base64') };
  writeConfig(file, { ...config, auths });
}

/** Removes a registry's credentials; false when there were none. */
export function removeCredentials(registry: string, file = dockerConfigPath()): boolean {
  const config = readConfig(file);
  const auths = { ...(config.auths ?? {}) };
  let removed = false;
  for (const key of Object.keys(auths)) {
    if (normalizeKey(key) === registry) {
      delete auths[key];
      removed = true;
    }
  }
  if (removed) writeConfig(file, { ...config, auths });
  return removed;
}
