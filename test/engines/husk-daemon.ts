/*
 * `husk daemon` for the tests that drive it with real Docker API clients (the docker CLI,
 * docker-compose, python3-docker, Testcontainers): started in the file's workspace, with its
 * data root, exec root, image store, CNI configuration and socket there, and stopped by the
 * workspace's teardown.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { REPO, run, type Daemon, type Result, type Workspace } from './setup';

export interface HuskDaemon {
  daemon: Daemon;
  /** The socket, and the environment a client needs (DOCKER_HOST). */
  socket: string;
  env: Record<string, string>;
  dataRoot: string;
  execRoot: string;
  store: string;
  /** Runs `docker ARGS` against this daemon (the current CLI unless `binary` is given). */
  docker(args: string[], opts?: { binary?: string; timeoutMs?: number; input?: string }): Result;
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
 * Starts the daemon; `inNetns` (e.g. a TestNetns's argv) wraps its command line, so that its
 * networks, bridges and published ports live in a network namespace the test made.
 */
export async function startHuskDaemon(ws: Workspace, extraArgs: string[] = [], name = 'husk-daemon', inNetns?: (argv: string[]) => string[]): Promise<HuskDaemon> {
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
  const daemon = ws.startDaemon(name, inNetns ? inNetns(argv) : argv);
  let up = false;
  await daemon.waitReady(() => {
    void connects(socket).then((ok) => (up = ok));
    return up;
  }, 30_000);
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: ws.mkdir('d', 'docker-config') };
  return {
    daemon, socket, env, dataRoot, execRoot, store,
    docker(args, opts = {}) {
      return run([opts.binary ?? DOCKER_CLIS[0], ...args], { env, timeoutMs: opts.timeoutMs, input: opts.input });
    },
  };
}
