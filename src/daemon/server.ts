// `husk daemon`: the Docker Engine API on a unix socket (and TCP only when asked), with husk's
// image store, bundles, CNI networks and runtime underneath. Each part of the API lives in its
// own file and hands its routes to the one router here.
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { log } from '../host/log';
import { Router, dispatch, type Route } from './api';
import { DaemonContext, type DaemonOptions } from './context';
import { routes as connectRoutes } from './connect';
import { counts, recover, routes as containerRoutes } from './containers';
import { eventRoutes } from './events';
import { routes as execRoutes } from './exec';
import { imageViews, routes as imageRoutes } from './images';
import { routes as networkRoutes } from './networks';
import { prepareSpare, stopSpare } from './monitor';
import { routes as systemDfRoutes } from './systemDf';
import { systemRoutes } from './system';
import { routes as volumeRoutes } from './volumes';

export interface Listener {
  /** `unix:///run/husk/docker.sock` or `tcp://127.0.0.1:2375`. */
  address: string;
}

export interface ServeOptions extends DaemonOptions {
  hosts: string[];
  /** The group that may use the socket (default `docker` when it exists). */
  group?: string;
}

export interface Daemon {
  ctx: DaemonContext;
  close(): Promise<void>;
}

/** The gid of `name` from /etc/group, or undefined when there is no such group. */
function groupId(name: string): number | undefined {
  try {
    for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
      const [n, , gid] = line.split(':');
      if (n === name) return Number(gid);
    }
  } catch {
    // no /etc/group
  }
  return undefined;
}

export function parseHost(text: string): { unix: string } | { host: string; port: number } {
  if (text.startsWith('unix://')) {
    const p = text.slice('unix://'.length);
    if (!path.isAbsolute(p)) throw new HuskError(`-H ${JSON.stringify(text)}: the socket path must be absolute`);
    return { unix: p };
  }
  if (text.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[0-9a-fA-F:]+\]|[^:/]+):([0-9]+)$/.exec(text);
    if (!m) throw new HuskError(`-H ${JSON.stringify(text)}: expected tcp://HOST:PORT`);
    return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }
  throw new HuskError(`-H ${JSON.stringify(text)}: expected unix:///PATH or tcp://HOST:PORT`);
}

/** Every part of the API; each file returns its routes. */
function routes(ctx: DaemonContext): Route[] {
  const info = () => ({ Images: imageViews(ctx.images).length, ...counts(ctx) });
  return [
    ...systemRoutes(ctx, { info }),
    ...eventRoutes(ctx.events),
    ...imageRoutes(ctx),
    ...containerRoutes(ctx),
    ...execRoutes(ctx),
    ...volumeRoutes(ctx),
    ...networkRoutes(ctx),
    ...connectRoutes(ctx),
    ...systemDfRoutes(ctx),
  ];
}

export async function serve(o: ServeOptions): Promise<Daemon> {
  // Every address checked before anything is made.
  const listeners = o.hosts.map((address) => ({ address, where: parseHost(address) }));
  const ctx = new DaemonContext(o);
  const router = new Router().add(routes(ctx));
  const servers: http.Server[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void dispatch(router, req, res);
  for (const { address, where } of listeners) {
    // No request timeout: a `docker load` upload or a followed log may last for hours, as with dockerd.
    const server = http.createServer({ keepAliveTimeout: 0, requestTimeout: 0 }, handler);
    server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => {
      const res = new http.ServerResponse(req);
      res.assignSocket(socket as import('net').Socket);
      void dispatch(router, req, res, { socket, head });
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new HuskError(`listen on ${address}: ${reason(err)}`)));
      if ('unix' in where) {
        fs.mkdirSync(path.dirname(where.unix), { recursive: true });
        // A socket left by a daemon that died: nobody answers on it any more.
        if (fs.existsSync(where.unix) && fs.statSync(where.unix).isSocket()) fs.rmSync(where.unix);
        server.listen(where.unix, () => {
          const gid = groupId(o.group ?? 'docker');
          if (o.group && gid === undefined) log.warn(`--group ${o.group}: no such group; the socket is root's only`);
          fs.chownSync(where.unix, 0, gid ?? 0);
          fs.chmodSync(where.unix, 0o660);
          resolve();
        });
      } else {
        server.listen(where.port, where.host, () => resolve());
      }
    });
    servers.push(server);
  }
  // Containers that ran when the last daemon ended: watched again, restarted by their policy.
  recover(ctx);
  // The first container's monitor is ready before it is asked for.
  prepareSpare(ctx.runtimeRoot, ctx.o.execRoot);
  return {
    ctx,
    async close() {
      stopSpare();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      })));
    },
  };
}
