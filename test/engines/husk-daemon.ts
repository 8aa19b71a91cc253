/*
 * `husk daemon` for the tests that drive it with real Docker API clients (the docker CLI,
 * docker-compose, python3-docker, Testcontainers): started in the file's workspace, with its
 * data root, exec root, image store, CNI configuration and socket there, and stopped by the
 * workspace's teardown.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { TestNetns } from '../lib/netns';
import { REPO, explain, need, run, type Daemon, type Result, type Workspace } from './setup';

export interface HuskDaemon {
  daemon: Daemon;
  /** The network namespace the daemon runs in (none: the host's). */
  netns?: TestNetns;
  /** The socket, and the environment a client needs (DOCKER_HOST). */
  socket: string;
  env: Record<string, string>;
  dataRoot: string;
  execRoot: string;
  store: string;
  /** Runs `docker ARGS` against this daemon (the current CLI unless `binary` is given). */
  docker(args: string[], opts?: { binary?: string; timeoutMs?: number; input?: string }): Result;
  /** One raw request on the daemon's socket: the status, the headers and the body. */
  request(method: string, path: string, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>;
  /** Removes every container (`rm -f -v`): what a test that failed half-way left, before teardown. */
  removeAll(): void;
}

/** The current docker CLI (/usr/local/bin) and Debian's 20.10 (/usr/bin), where present. */
export const DOCKER_CLIS = ['/usr/local/bin/docker', '/usr/bin/docker'].filter((p) => fs.existsSync(p));

function connects(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/**
 * Starts the daemon in a network namespace of the test's own (made here, or `netns`), so that
 * its networks' bridges, the containers' addresses and the published ports never reach the
 * host's network; teardown removes the namespace it made. `host`: in the host's namespace, for
 * a test whose containers use no network but whose daemon pulls from a registry on the host's
 * loopback.
 */
export async function startHuskDaemon(ws: Workspace, extraArgs: string[] = [], name = 'husk-daemon', where?: TestNetns | 'host'): Promise<HuskDaemon> {
  let netns: TestNetns | undefined = where === 'host' ? undefined : where;
  if (!where) {
    const own = new TestNetns('husk-dd');
    ws.atTeardown(() => {
      // Containers a failed test left (their monitors are gone by now) are deleted through the
      // runtime from the namespace they were attached in, so that their poststop hooks detach
      // them; prune releases any attachment left after that.
      const husk = path.join(REPO, 'bin', 'husk');
      const root = path.join(ws.dir, 'd', 'run', 'runtime');
      const left = run([husk, '--root', root, 'list', '-q']).stdout.split('\n').filter(Boolean);
      for (const id of left) own.run([husk, '--root', root, 'delete', '--force', id]);
      const prune = own.run([husk, 'network', 'prune']);
      own.remove();
      if (prune.status !== 0 || prune.stderr.trim()) throw new Error(`husk network prune in ${own.name}: exit ${prune.status}: ${prune.stderr.trim()}`);
    });
    netns = own;
  }
  // Short paths: a unix socket path has at most 107 bytes, and the monitors' sockets live under
  // the exec root, one directory per container id.
  const dataRoot = ws.mkdir('d', 'data');
  const execRoot = ws.mkdir('d', 'run');
  const store = ws.mkdir('d', 'store');
  const cniConfigDir = ws.mkdir('d', 'cni');
  const socket = path.join(ws.dir, 'd', 'docker.sock');
  const argv = [
    path.join(REPO, 'bin', 'husk'), 'daemon', '-H', `unix://${socket}`, '--data-root', dataRoot, '--exec-root', execRoot,
    '--store', store, '--cni-config-dir', cniConfigDir, ...extraArgs,
  ];
  const daemon = ws.startDaemon(name, netns ? netns.argv(argv) : argv);
  let up = false;
  await daemon.waitReady(() => {
    void connects(socket).then((ok) => (up = ok));
    return up;
  }, 30_000);
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: ws.mkdir('d', 'docker-config') };
  const d: HuskDaemon = {
    daemon, netns, socket, env, dataRoot, execRoot, store,
    docker(args, opts = {}) {
      return run([opts.binary ?? DOCKER_CLIS[0], ...args], { env, timeoutMs: opts.timeoutMs, input: opts.input });
    },
    request(method, urlPath, body) {
      return new Promise((resolve, reject) => {
        const headers = body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {};
        const req = http.request({ socketPath: socket, method, path: urlPath, headers }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    removeAll() {
      const ids = d.docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      if (ids.length) d.docker(['rm', '-f', '-v', ...ids]);
    },
  };
  return d;
}

/**
 * A docker-archive of one layer: busybox-static with every applet (sh, httpd, wget, nc, awk...)
 * in /bin, /etc/passwd and /etc/group, and `files` (path -> content) beside them. `cmd` is the
 * image's default command.
 */
export function busyboxImage(ws: Workspace, tag: string, files: Record<string, string> = {}, cmd: string[] = ['sh']): string {
  const busybox = need('busybox');
  if (fs.readFileSync(busybox).subarray(0, 4096).includes('ld-linux')) throw new Error(`${busybox} is dynamically linked; install busybox-static`);
  const work = ws.mkdir(`image-${crypto.createHash('sha256').update(tag).digest('hex').slice(0, 8)}`);
  const rootfs = path.join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var/tmp']) fs.mkdirSync(path.join(rootfs, d), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const applets = run([busybox, '--list']).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(rootfs, file)), { recursive: true });
    fs.writeFileSync(path.join(rootfs, file), content);
  }
  const tar = (args: string[]) => {
    const res = run(['tar', '--numeric-owner', '--owner=0', '--group=0', '--sort=name', ...args]);
    if (res.status !== 0) throw new Error(`tar failed:\n${explain(res)}`);
  };
  const layerTar = path.join(work, 'layer.tar');
  tar(['-C', rootfs, '-cf', layerTar, '.']);
  const diffId = crypto.createHash('sha256').update(fs.readFileSync(layerTar)).digest('hex');
  const archive = path.join(work, 'archive');
  fs.mkdirSync(path.join(archive, diffId), { recursive: true });
  fs.renameSync(layerTar, path.join(archive, diffId, 'layer.tar'));
  const created = '2024-01-01T00:00:00Z';
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: cmd, WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created, created_by: 'test/engines/husk-daemon.ts' }],
  });
  const configId = crypto.createHash('sha256').update(config).digest('hex');
  fs.writeFileSync(path.join(archive, `${configId}.json`), config);
  fs.writeFileSync(path.join(archive, 'manifest.json'), JSON.stringify([{ Config: `${configId}.json`, RepoTags: [tag], Layers: [`${diffId}/layer.tar`] }]));
  const tarball = path.join(work, 'image.tar');
  tar(['-C', archive, '-cf', tarball, '.']);
  fs.rmSync(archive, { recursive: true, force: true });
  fs.rmSync(rootfs, { recursive: true, force: true });
  return tarball;
}
