// husk daemon: serve the Docker Engine API, so the docker client, Compose and Testcontainers
// drive husk's images, networks and runtime (see src/daemon/). Runs until SIGTERM or SIGINT.
import { Command } from 'commander';
import type { Action, GlobalOptions } from './globals';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export const DEFAULT_SOCKET = 'unix:///run/husk/docker.sock';

export function command(_g: GlobalOptions, action: Action): Command {
  return new Command('daemon')
    .description('serve the Docker Engine API (docker, docker-compose, Testcontainers talk to husk)')
    .option('-H, --host <address>', `where to listen: unix:///PATH, or tcp://HOST:PORT only with --tcp-i-know (default ${DEFAULT_SOCKET}); repeatable`, collect, [])
    .option('--tcp-i-know', 'allow tcp:// listeners: anyone who reaches the port is root on this host', false)
    .option('--group <name>', 'the group allowed to use the socket (default: docker, when it exists)')
    .option('--data-root <dir>', 'containers, logs and volumes', '/var/lib/husk/daemon')
    .option('--exec-root <dir>', 'sockets and runtime state', '/run/husk/daemon')
    .option('--store <dir>', 'the image store (default: $HUSK_STORE or /var/lib/husk)')
    .option('--cni-config-dir <dir>', 'the CNI networks (default: $HUSK_CNI_CONFIG_DIR or /etc/cni/net.d)')
    .option('--cni-plugin-dir <dir>', 'the CNI plugins; repeatable', collect)
    .option('--insecure-registry <host>', 'allow plain HTTP to this registry; repeatable', collect, [])
    .action(action('daemon', async (o: {
      host: string[]; tcpIKnow: boolean; group?: string; dataRoot: string; execRoot: string; store?: string;
      cniConfigDir?: string; cniPluginDir?: string[]; insecureRegistry: string[];
    }) => {
      const { HuskError } = require('../errors') as typeof import('../errors');
      const hosts = o.host.length ? o.host : [DEFAULT_SOCKET];
      const tcp = hosts.find((h) => h.startsWith('tcp://'));
      if (tcp && !o.tcpIKnow) throw new HuskError(`-H ${tcp}: a TCP socket gives anyone who reaches it root on this host; add --tcp-i-know to listen on it anyway`);
      // Started by the front door, the daemon is its one call; but what the daemon starts
      // itself (an exec's process) it clones and waits for itself: the door would be the
      // process's parent, out of the daemon's reach.
      const { call } = require('../host/call') as typeof import('../host/call');
      call.door = undefined;
      const { serve } = require('../daemon/server') as typeof import('../daemon/server');
      const { storeDir } = require('../image/store') as typeof import('../image/store');
      const path = require('path') as typeof import('path');
      const daemon = await serve({
        hosts,
        group: o.group,
        dataRoot: path.resolve(o.dataRoot),
        execRoot: path.resolve(o.execRoot),
        store: storeDir(o.store),
        cniConfigDir: o.cniConfigDir,
        cniPluginDirs: o.cniPluginDir,
        insecureRegistries: o.insecureRegistry,
      });
      process.stderr.write(`husk daemon: listening on ${hosts.join(', ')}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await daemon.close();
      return 0;
    }));
}
