/*
 * Images for the image tests, built at test time from the probe and small files: layer tars
 * (with tar-stream, so hostile entries can be crafted byte for byte), OCI image layouts, a local
 * registry (Debian's docker-registry on 127.0.0.1, a random port, its own config and storage in
 * a temporary directory) with optional htpasswd or token auth, and skopeo to push.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tar from 'tar-stream';
import { probePath, which } from './harness';

export interface Entry {
  path: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

const EPOCH = new Date('2024-01-02T03:04:05Z');

/** A tar built entry by entry (names are taken as given: `../x` stays `../x`). */
export async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const finished = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? (e.content !== undefined ? 'file' : 'directory');
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    const header: Partial<tar.Header> & Pick<tar.Header, 'name'> = {
      name: e.path,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? EPOCH,
      linkname: e.linkname,
      devmajor: e.devmajor,
      devminor: e.devminor,
      pax: e.pax,
      size: content?.length ?? 0,
    };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content !== undefined) pack.entry(header, content, done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await finished;
  return Buffer.concat(chunks);
}

/**
 * A tar whose first entry's header declares `declared` bytes while only `content` follows (and
 * then the archive ends): the size field is rewritten and the header checksum recomputed.
 */
export async function lyingTar(name: string, declared: number, content: string): Promise<Buffer> {
  const buf = Buffer.from(await makeTar([{ path: name, content }]));
  // ustar numeric fields: octal, NUL-terminated; a size this large needs base-256 (GNU).
  const field = Buffer.alloc(12);
  if (declared < 8 ** 11) {
    field.write(declared.toString(8).padStart(11, '0') + '\0', 'ascii');
  } else {
    field[0] = 0x80;
    let v = BigInt(declared);
    for (let i = 11; i > 0; i--) {
      field[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  field.copy(buf, 124);
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += buf[i];
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  // Cut the archive right after the content's block: a stream that ends too early.
  return buf.subarray(0, 512 + Math.ceil(content.length / 512) * 512);
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export type Compression = 'gzip' | 'zstd' | 'none';

export function compress(data: Buffer, how: Compression): Buffer {
  if (how === 'gzip') return zlib.gzipSync(data);
  if (how === 'none') return data;
  const zstd = which('zstd');
  if (!zstd) throw new Error('zstd is not installed (apt-get install zstd)');
  const res = spawnSync(zstd, ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 });
  if (res.status !== 0) throw new Error(`zstd failed: ${res.stderr}`);
  return res.stdout;
}

export interface LayerSpec {
  entries?: Entry[];
  /** A prebuilt tar instead of entries. */
  tar?: Buffer;
  compression?: Compression;
}

export interface ImageSpec {
  layers: LayerSpec[];
  config?: Record<string, unknown>;
  architecture?: string;
  os?: string;
  variant?: string;
  /** Use Docker schema 2 media types instead of OCI ones. */
  docker?: boolean;
}

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  blobs: Map<string, Buffer>;
  diffIDs: string[];
  mediaType: string;
  platform: { os: string; architecture: string; variant?: string };
}

export async function buildImage(spec: ImageSpec): Promise<BuiltImage> {
  const blobs = new Map<string, Buffer>();
  const layerDescs: { mediaType: string; digest: string; size: number }[] = [];
  const diffIDs: string[] = [];
  for (const layer of spec.layers) {
    const raw = layer.tar ?? (await makeTar(layer.entries ?? []));
    const how = layer.compression ?? 'gzip';
    const blob = compress(raw, how);
    diffIDs.push(sha256(raw));
    const mediaType = spec.docker
      ? how === 'gzip' ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.docker.image.rootfs.diff.tar'
      : how === 'gzip' ? 'application/vnd.oci.image.layer.v1.tar+gzip' : how === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar';
    const digest = sha256(blob);
    blobs.set(digest, blob);
    layerDescs.push({ mediaType, digest, size: blob.length });
  }
  const platform = { os: spec.os ?? 'linux', architecture: spec.architecture ?? 'amd64', ...(spec.variant ? { variant: spec.variant } : {}) };
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-02T03:04:05Z',
      ...platform,
      config: spec.config ?? { Cmd: ['/probe', 'report'] },
      rootfs: { type: 'layers', diff_ids: diffIDs },
      history: spec.layers.map(() => ({ created: '2024-01-02T03:04:05Z', created_by: 'husk tests' })),
    }),
  );
  const configDigest = sha256(config);
  blobs.set(configDigest, config);
  const mediaType = spec.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: spec.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layerDescs,
    }),
  );
  const manifestDigest = sha256(manifest);
  blobs.set(manifestDigest, manifest);
  return { manifest, manifestDigest, config, configDigest, blobs, diffIDs, mediaType, platform };
}

/**
 * Writes an OCI image layout. Each entry is one image under a tag; `multiPlatform` puts the
 * given images behind one index under that tag instead.
 */
export function writeLayout(dir: string, images: { tag?: string; image: BuiltImage }[], multiPlatform?: { tag: string }): { indexDigest?: string } {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = (digest: string, data: Buffer) => fs.writeFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7)), data);
  for (const { image } of images) for (const [d, b] of image.blobs) put(d, b);
  let manifests: unknown[];
  let indexDigest: string | undefined;
  if (multiPlatform) {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: images.map(({ image }) => ({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, platform: image.platform })),
      }),
    );
    indexDigest = sha256(index);
    put(indexDigest, index);
    manifests = [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: indexDigest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': multiPlatform.tag } }];
  } else {
    manifests = images.map(({ tag, image }) => ({
      mediaType: image.mediaType,
      digest: image.manifestDigest,
      size: image.manifest.length,
      ...(tag ? { annotations: { 'org.opencontainers.image.ref.name': tag } } : {}),
    }));
  }
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  return { indexDigest };
}

/** The base layer every runnable test image has: the probe, the usual dirs, passwd and group. */
export function probeLayer(extra: Entry[] = []): LayerSpec {
  return {
    entries: [
      { path: 'bin/', type: 'directory' },
      { path: 'etc/', type: 'directory' },
      { path: 'proc/', type: 'directory' },
      { path: 'sys/', type: 'directory' },
      { path: 'dev/', type: 'directory' },
      { path: 'tmp/', type: 'directory', mode: 0o1777 },
      { path: 'home/', type: 'directory' },
      { path: 'home/alice/', type: 'directory', uid: 1000, gid: 1000, mode: 0o750 },
      { path: 'probe', content: fs.readFileSync(probePath()), mode: 0o755 },
      {
        path: 'etc/passwd',
        content: 'root:x:0:0:root:/root:/probe\nalice:x:1000:1000:Alice:/home/alice:/probe\nbob:x:1001:1001::/home/bob:/probe\n',
      },
      { path: 'etc/group', content: 'root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice\nwheel:x:10:alice,bob\n' },
      ...extra,
    ],
  };
}

// ------------------------------------------------------------------------------ the registry

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not listen on ${port}: ${log()}`);
}

export interface Registry {
  host: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
  log(): string;
}

export interface RegistryOptions {
  /** htpasswd: basic auth with this user and password. */
  htpasswd?: { user: string; password: string };
  /** token: bearer tokens from this realm, signed by a key whose certificate is given. */
  token?: { realm: string; service: string; issuer: string; certFile: string };
  /** Where the registry keeps its data (to restart one over the same storage). */
  storage?: string;
}

/** Starts Debian's docker-registry on 127.0.0.1 (a free port). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const bin = which('docker-registry');
  if (!bin) throw new Error('docker-registry is not installed (apt-get install docker-registry)');
  const dir = fs.mkdtempSync('/tmp/husk-registry-');
  const storage = opts.storage ?? path.join(dir, 'storage');
  fs.mkdirSync(storage, { recursive: true });
  let auth = '';
  if (opts.htpasswd) {
    const htpasswd = which('htpasswd');
    if (!htpasswd) throw new Error('htpasswd is not installed (apt-get install apache2-utils)');
    const res = spawnSync(htpasswd, ['-Bbn', opts.htpasswd.user, opts.htpasswd.password], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`htpasswd failed: ${res.stderr}`);
    fs.writeFileSync(path.join(dir, 'htpasswd'), res.stdout);
    auth = `auth:\n  htpasswd:\n    realm: husk-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (opts.token) {
    auth = `auth:\n  token:\n    realm: ${opts.token.realm}\n    service: ${opts.token.service}\n    issuer: ${opts.token.issuer}\n    rootcertbundle: ${opts.token.certFile}\n`;
  }
  // The free port may be taken by someone else before the registry binds it: then it exits
  // ("address already in use") and another port is tried.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`;
    fs.writeFileSync(path.join(dir, 'config.yml'), config);
    const child = spawn(bin, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    try {
      await waitForPort(port, child, () => output);
      // Someone else's server may answer on the port while ours failed to bind it.
      await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${output}`);
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      if (attempt < 5 && /address already in use/.test(output)) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return registry(port, dir, child, exited, () => output);
  }
}

function registry(port: number, dir: string, child: ChildProcess, exited: Promise<void>, log: () => string): Registry {
  return {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    log,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      // The storage survives when it was given (it lies outside dir).
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** skopeo copy SRC DEST, with --dest-tls-verify=false for the loopback registry. */
export function skopeo(args: string[], opts: { authFile?: string } = {}): { stdout: string; stderr: string } {
  const bin = which('skopeo');
  if (!bin) throw new Error('skopeo is not installed (apt-get install skopeo)');
  const res = spawnSync(bin, args, {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...(opts.authFile ? { REGISTRY_AUTH_FILE: opts.authFile } : {}) },
  });
  if (res.status !== 0) throw new Error(`skopeo ${args.join(' ')} failed: ${res.stderr}`);
  return { stdout: res.stdout, stderr: res.stderr };
}

export function pushLayout(layoutDir: string, tag: string, registry: Registry, name: string, creds?: string, all = false) {
  skopeo([
    'copy', '--quiet', '--dest-tls-verify=false', ...(all ? ['--all'] : []), ...(creds ? ['--dest-creds', creds] : []),
    `oci:${layoutDir}:${tag}`, `docker://${registry.host}/${name}`,
  ]);
}

// ------------------------------------------------------------------------------ token server

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Requests the server answered: scope and who asked (user or "anonymous"). */
  readonly requests: { scope: string; user: string; granted: string[] }[];
  stop(): Promise<void>;
}

// The server runs in a process of its own: the tests call husk and skopeo synchronously, which
// would block a server living in the test's own event loop.
const TOKEN_SERVER = String.raw`
const http = require('http');
const fs = require('fs');
const { createSign, createPrivateKey } = require('crypto');
const { USER, PASSWORD, KEY_FILE, CERT_DER, ISSUER, SERVICE, LOG_FILE } = process.env;
const privateKey = createPrivateKey(fs.readFileSync(KEY_FILE));
const b64url = (d) => Buffer.from(d).toString('base64url');
const server = http.createServer((req, res) => {
  const url = new URL(req.url || '/', 'http://x');
  const scopes = url.searchParams.getAll('scope');
  let who = 'anonymous';
  const authz = req.headers.authorization;
  if (authz && authz.startsWith('Basic ')) {
    const [u, p] = Buffer.from(authz.slice(6), 'base64').toString('utf8').split(':');
    if (u !== USER || p !== PASSWORD) {
      fs.appendFileSync(LOG_FILE, JSON.stringify({ scope: scopes.join(' '), user: u, granted: [], refused: true }) + '\n');
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    who = u;
  }
  const access = scopes.map((scope) => {
    const [type, name, actions] = scope.split(':');
    const wanted = (actions || '').split(',');
    const granted = who === USER ? wanted : name && name.startsWith('public/') ? wanted.filter((a) => a === 'pull') : [];
    fs.appendFileSync(LOG_FILE, JSON.stringify({ scope, user: who, granted }) + '\n');
    return { type, name, actions: granted };
  });
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', x5c: [CERT_DER] };
  const claims = { iss: ISSUER, sub: who, aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: now + '-' + Math.random(), access };
  const input = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims));
  const token = input + '.' + b64url(createSign('RSA-SHA256').update(input).sign(privateKey));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * A bearer-token server for docker-registry's `token` auth: JWTs signed with an RSA key whose
 * self-signed certificate (made with openssl) the registry trusts. Anonymous requests get pull
 * access to repositories under `public/`; `user:password` gets push and pull everywhere.
 */
export async function startTokenServer(user: string, password: string): Promise<TokenServer> {
  const dir = fs.mkdtempSync('/tmp/husk-token-');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(dir, 'key.pem');
  fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const certFile = path.join(dir, 'cert.pem');
  const res = spawnSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=husk-test-token'], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`openssl failed: ${res.stderr}`);
  const der = fs.readFileSync(certFile, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const issuer = 'husk-test-issuer';
  const service = 'husk-test-registry';
  const logFile = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(logFile, '');
  const child = spawn(process.execPath, ['-e', TOKEN_SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { USER: user, PASSWORD: password, KEY_FILE: keyFile, CERT_DER: der, ISSUER: issuer, SERVICE: service, LOG_FILE: logFile },
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.on('exit', (code) => reject(new Error(`the token server exited ${code}`)));
  });
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    get requests() {
      return fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
