// husk image ...: pull, list, inspect, remove, prune, bundle, unbundle, run, login, logout.
// Loaded only when `image` is the verb (main.ts hands over the arguments), so the runtime's
// light verbs never load the image code. Each subcommand parses, makes one call, prints.
import { Command, Option } from 'commander';
import { HuskError } from '../errors';
import type { Action, GlobalOptions } from './globals';
import { oneLine, usageError } from './usage';
import { globalArgs } from './flags';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The command after the image: commander keeps a `--` that follows the image in it. */
const afterDashes = (words: string[]) => (words[0] === '--' ? words.slice(1) : words);

function storeOption(cmd: Command): Command {
  return cmd.option('--store <dir>', 'the image store (default: $HUSK_STORE or /var/lib/husk)');
}

function store(opts: { store?: string }) {
  const { ImageStore, storeDir } = require('../image/store') as typeof import('../image/store');
  return new ImageStore(storeDir(opts.store));
}

function containerOptions(cmd: Command): Command {
  return cmd
    .option('-e, --env <K=V>', 'set an environment variable (K alone: take it from husk\'s environment); repeatable', collect, [])
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user (name or uid, names resolved in the image\'s /etc/passwd)')
    .option('--entrypoint <program>', 'replace the image\'s Entrypoint')
    .option('-t, --tty', 'give the process a terminal', false)
    .option('--hostname <name>', 'the container\'s hostname')
    .option('--net, --network <mode>', 'none: own network namespace with loopback only; host: the host\'s; bridge: the CNI network husk (written on first use); NAME: a CNI network', 'none')
    .option('-p, --publish <[IP:]HOST:CONTAINER[/PROTO]>', 'publish a container port on the host (needs a CNI network); repeatable', collect, [])
    .option('--dns <ip>', 'a nameserver for the container\'s resolv.conf (instead of the host\'s); repeatable', collect, [])
    .option('--add-host <name:ip>', 'a line of the container\'s /etc/hosts; repeatable', collect, [])
    .option('--cni-config-dir <dir>', 'where the CNI networks are (default: $HUSK_CNI_CONFIG_DIR or /etc/cni/net.d)')
    .option('--cni-plugin-dir <dir>', 'where the CNI plugins are; repeatable (default: $HUSK_CNI_PLUGIN_DIR or /usr/lib/cni and /opt/cni/bin)', collect)
    .option('--read-only', 'mount the rootfs read-only', false)
    .option('--memory <size>', 'memory limit (e.g. 512m)')
    .option('--memory-swap <size>', 'memory plus swap limit (-1: unlimited swap)')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--cpus <n>', 'CPU limit, in CPUs (e.g. 1.5)')
    .option('--platform <os/arch[/variant]>', 'the platform to pull (default: the host\'s)')
    .option('--pull <policy>', 'missing (default), always or never', 'missing')
    .option('-q, --quiet', 'no pull progress', false)
    .option('--insecure-registry <host>', 'allow plain HTTP to this registry; repeatable', collect, []);
}

/** `image run`'s options (the command itself, and imageRunNeedsPull's parse of it). */
function runOptions(cmd: Command): Command {
  return containerOptions(storeOption(cmd))
    .option('--name <id>', 'the container id (default: random)')
    .option('--rm', 'remove the container and its writable layer when it exits', false)
    .option('-d, --detach', 'print the container id and return once it has started', false)
    .option('--console-socket <path>', 'with -d -t: unix socket that receives the terminal\'s pty master')
    .passThroughOptions();
}

/**
 * Whether `husk image run ARGS` (the words after `run`) would pull first: its image is not in
 * the store (or --pull always). The warm server runs such a call in a process of its own,
 * where the caller's Ctrl-C stops the pull. A command line that does not parse says false:
 * the call itself reports it. `env` is the caller's (HUSK_STORE).
 */
export function imageRunNeedsPull(args: string[], env: Record<string, string | undefined>): boolean {
  let parsed: { image: string; opts: { store?: string; pull?: string; platform?: string } } | undefined;
  const probe = runOptions(new Command('run').arguments('<image> [command...]'))
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined })
    .action((image: string, _command: string[], opts: { store?: string; pull?: string; platform?: string }) => {
      parsed = { image, opts };
    });
  try {
    probe.parse(args, { from: 'user' });
  } catch {
    return false;
  }
  if (!parsed) return false;
  const { ImageStore, storeDir } = require('../image/store') as typeof import('../image/store');
  const { storedImage } = require('../image/run') as typeof import('../image/run');
  try {
    return !storedImage(new ImageStore(storeDir(parsed.opts.store || env.HUSK_STORE)), parsed.image, parsed.opts);
  } catch {
    return false;
  }
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('   ').trimEnd()).join('\n') + '\n';
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function image(args: string[], g: GlobalOptions, action: Action): Promise<void> {
  const cmd = new Command('husk image')
    .description('images: pull them from registries or archives, keep them in a store, run them')
    .enablePositionalOptions()
    .showHelpAfterError(false)
    .configureOutput({ outputError: (str) => usageError(`image: ${oneLine(str)}`, g) })
    .exitOverride((err) => {
      process.exit(err.exitCode);
    });

  storeOption(cmd.command('pull <image>').description('pull an image (registry reference, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF])'))
    .option('--platform <os/arch[/variant]>', 'the platform to pull from a multi-platform image (default: the host\'s)')
    .option('-q, --quiet', 'print only the image name', false)
    .option('--insecure-registry <host>', 'allow plain HTTP to this registry; repeatable', collect, [])
    .action(action('image pull', async (text: string, opts: any) => {
      const { parseSource } = require('../image/source') as typeof import('../image/source');
      const { parsePlatform } = require('../image/manifest') as typeof import('../image/manifest');
      const { pull } = require('../image/pull') as typeof import('../image/pull');
      const { createProgress } = require('../image/progress') as typeof import('../image/progress');
      const source = parseSource(text);
      const platform = opts.platform ? parsePlatform(opts.platform) : undefined;
      const progress = createProgress(opts.quiet ? 'quiet' : 'auto');
      const { call } = require('../host/call') as typeof import('../host/call');
      const pulled = await pull(store(opts), source, { platform, progress, insecure: opts.insecureRegistry, signal: call.gone });
      if (!opts.quiet) process.stderr.write(`Digest: ${pulled.ref.digest}\nPlatform: ${pulled.ref.platform}\n`);
      process.stdout.write(`${pulled.names[0]}\n`);
    }));

  storeOption(cmd.command('list').alias('ls').alias('images').description('list the images in the store'))
    .option('-q, --quiet', 'print only image IDs', false)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .option('--digests', 'show full digests', false)
    .action(action('image list', (opts: any) => {
      const { listImages } = require('../image/images') as typeof import('../image/images');
      const { formatBytes } = require('../image/progress') as typeof import('../image/progress');
      const { shortDigest } = require('../image/digest') as typeof import('../image/digest');
      const rows = listImages(store(opts));
      if (opts.format === 'json') {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      if (opts.quiet) {
        process.stdout.write([...new Set(rows.map((r) => shortDigest(r.id)))].map((id) => `${id}\n`).join(''));
        return;
      }
      const fmt = (d: string) => (opts.digests ? d : d.slice(0, 7 + 12));
      const lines = [['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'PLATFORM', 'SIZE']];
      for (const r of rows) lines.push([r.repository, r.tag, fmt(r.digest), shortDigest(r.id), r.platform, formatBytes(r.size)]);
      process.stdout.write(table(lines));
    }));

  storeOption(cmd.command('inspect <image>').description('print an image\'s digest, config and layers as JSON'))
    .action(action('image inspect', (text: string, opts: any) => {
      const { inspectImage } = require('../image/images') as typeof import('../image/images');
      process.stdout.write(JSON.stringify(inspectImage(store(opts), text), null, 2) + '\n');
    }));

  storeOption(cmd.command('remove <images...>').alias('rm').alias('rmi').description('remove images (refused while a container uses one, unless --force)'))
    .option('-f, --force', 'remove the names even if a container uses the image (its layers stay until unused)', false)
    .action(action('image remove', async (texts: string[], opts: any) => {
      const { removeImages } = require('../image/images') as typeof import('../image/images');
      const s = store(opts);
      if (!s.exists()) throw new HuskError(`no image ${JSON.stringify(texts[0])} in the store ${s.dir}`);
      const { untagged, collected } = await removeImages(s, texts, opts.force);
      for (const n of untagged) process.stdout.write(`Untagged: ${n}\n`);
      if (collected.layers || collected.blobs) process.stdout.write(`Deleted: ${collected.layers} layers, ${collected.blobs} blobs\n`);
    }));

  storeOption(cmd.command('prune').description('delete blobs and layers no image uses, and leftovers of interrupted pulls'))
    .option('-a, --all', 'also remove every image no container uses', false)
    .action(action('image prune', async (opts: any) => {
      const { pruneImages } = require('../image/images') as typeof import('../image/images');
      const { formatBytes } = require('../image/progress') as typeof import('../image/progress');
      const { sweep } = require('../network/attach') as typeof import('../network/attach');
      // The networks of killed containers first: their poststop hooks never ran.
      const released = await sweep();
      const { untagged, collected } = await pruneImages(store(opts), opts.all);
      if (released.length) process.stdout.write(`Released network of ${released.length} container${released.length > 1 ? 's' : ''}\n`);
      for (const n of untagged) process.stdout.write(`Untagged: ${n}\n`);
      process.stdout.write(`Deleted ${collected.layers} layers, ${collected.blobs} blobs, ${collected.registrations} stale bundle records, ${collected.tmp} temporary files\nTotal reclaimed space: ${formatBytes(collected.bytes)}\n`);
    }));

  containerOptions(storeOption(cmd.command('bundle <image> <dir> [command...]').description('make an OCI bundle (config.json and rootfs) from an image')))
    .option('--copy', 'a plain rootfs directory instead of an overlay mount (for hosts without overlayfs)', false)
    .passThroughOptions()
    .action(action('image bundle', async (text: string, dir: string, command: string[], opts: any) => {
      const { findOrPull, networkOf } = require('../image/run') as typeof import('../image/run');
      const { createBundle } = require('../image/bundle') as typeof import('../image/bundle');
      const { resourcesFromRunFlags } = require('../image/convert') as typeof import('../image/convert');
      const resources = resourcesFromRunFlags(opts);
      const net = networkOf(opts);
      const s = store(opts).init();
      const img = await findOrPull(s, text, { ...opts, insecureRegistry: opts.insecureRegistry });
      const b = await createBundle(s, img, dir, {
        copy: opts.copy, cmd: afterDashes(command), entrypoint: opts.entrypoint === undefined ? undefined : [opts.entrypoint], env: opts.env, workdir: opts.workdir,
        user: opts.user, terminal: opts.tty, hostname: opts.hostname, ...net, resources, readonlyRootfs: opts.readOnly,
      });
      process.stdout.write(`${b.dir}\n`);
    }));

  storeOption(cmd.command('unbundle <dir>').description('unmount and remove a bundle made by `husk image bundle` (or a container\'s, from its hook)'))
    .option('-f, --force', 'even while processes still have their root in it (detaches the mount lazily)', false)
    .action(action('image unbundle', (dir: string, opts: any) => {
      const { removeBundle } = require('../image/bundle') as typeof import('../image/bundle');
      removeBundle(store(opts), dir, opts.force);
    }));

  runOptions(cmd.command('run <image> [command...]').description('pull if needed, make a container and run it (like docker run)'))
    .action(action('image run', async (text: string, command: string[], opts: any) => {
      const { imageRun } = require('../image/run') as typeof import('../image/run');
      const { storeDir } = require('../image/store') as typeof import('../image/store');
      return imageRun({
        ...opts, root: g.root, store: storeDir(opts.store), image: text, cmd: afterDashes(command), systemdCgroup: g.systemdCgroup,
        globalArgs: globalArgs(g),
      });
    }));

  storeOption(cmd.command('reap <id>', { hidden: true }).description('wait for a container to stop and delete it (for run -d --rm)'))
    .action(action('image reap', async (id: string) => {
      await (require('../image/run') as typeof import('../image/run')).reap(g.root, id);
    }));

  cmd.command('login [registry]').description('check credentials with a registry and save them in the Docker config (~/.docker/config.json)')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin', false)
    .option('--insecure-registry <host>', 'allow plain HTTP to this registry; repeatable', collect, [])
    .action(action('image login', async (registryArg: string | undefined, opts: any) => {
      const { parseReference, DOCKER_HUB } = require('../image/reference') as typeof import('../image/reference');
      const { RegistryClient } = require('../image/registry') as typeof import('../image/registry');
      const { saveCredentials, dockerConfigPath } = require('../image/auth') as typeof import('../image/auth');
      let registry = DOCKER_HUB;
      if (registryArg) {
        const host = registryArg.replace(/^[a-z]+:\/\//, '').split('/')[0];
        registry = parseReference(`${host}/x`).registry;
      }
      if (!opts.username) throw new HuskError('--username is required');
      let password: string | undefined = opts.password;
      if (opts.passwordStdin) {
        if (password !== undefined) throw new HuskError('--password and --password-stdin are exclusive');
        password = await readStdin();
      }
      if (!password) throw new HuskError('a password is required (--password-stdin)');
      // GET /v2/ with the credentials, as docker login checks them.
      const client = new RegistryClient(registry, '', { credentials: { username: opts.username, password }, insecure: opts.insecureRegistry });
      await client.ping();
      saveCredentials(registry, opts.username, password);
      process.stdout.write(`Login Succeeded (saved in ${dockerConfigPath()})\n`);
    }));

  cmd.command('logout [registry]').description('remove a registry\'s credentials from the Docker config')
    .action(action('image logout', (registryArg: string | undefined) => {
      const { parseReference, DOCKER_HUB } = require('../image/reference') as typeof import('../image/reference');
      const { removeCredentials } = require('../image/auth') as typeof import('../image/auth');
      const registry = registryArg ? parseReference(`${registryArg.replace(/^[a-z]+:\/\//, '').split('/')[0]}/x`).registry : DOCKER_HUB;
      process.stdout.write(removeCredentials(registry) ? `Removing login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
    }));

  if (!args.length || args[0] === 'help' || args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(cmd.helpInformation());
    return;
  }
  await cmd.parseAsync(args, { from: 'user' });
}
