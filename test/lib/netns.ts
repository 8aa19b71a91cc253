/*
 * A network namespace of the test's own, standing in for "the host" in network tests: the
 * bridge, the containers' veths, the published ports and the firewall rules all live inside
 * it, so no packet a test sends leaves namespaces the test made. Commands run inside it through
 * `nsenter --net=...`, which changes only the network namespace (`ip netns exec` would also
 * give the command a mount namespace of its own, hiding the netns pins husk mounts).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sh(argv: string[], input?: string, env?: NodeJS.ProcessEnv, timeoutMs = 120_000): Ran {
  const r = spawnSync(argv[0], argv.slice(1), { input, env: env ?? process.env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function must(argv: string[]): string {
  const r = sh(argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

export class TestNetns {
  /** Its name under /run/netns (as `ip netns list` shows it). */
  readonly name: string;
  readonly path: string;

  constructor(prefix = 'husk-t') {
    this.name = `${prefix}-${randomBytes(4).toString('hex')}`;
    this.path = `/run/netns/${this.name}`;
    must(['ip', 'netns', 'add', this.name]);
    must(['ip', '-n', this.name, 'link', 'set', 'lo', 'up']);
  }

  /** argv run inside the namespace. */
  argv(argv: string[]): string[] {
    return ['nsenter', `--net=${this.path}`, '--', ...argv];
  }

  run(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Ran {
    return sh(this.argv(argv), opts.input, opts.env, opts.timeoutMs);
  }

  /** The names of the namespace's network interfaces (without the @peer suffix). */
  links(): string[] {
    return must(['ip', '-n', this.name, '-o', 'link', 'show'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1].trim().split('@')[0]);
  }

  /** The namespace's firewall rules as iptables-save prints them (comments and counters dropped). */
  firewallRules(): string[] {
    const r = this.run(['iptables-save']);
    if (r.status !== 0) throw new Error(`iptables-save: ${r.stderr.trim()}`);
    return r.stdout.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith(':') && l !== 'COMMIT' && !l.startsWith('*'));
  }

  /** Adds a dummy interface (a parent for macvlan or ipvlan networks). */
  addDummy(name: string): void {
    must(['ip', '-n', this.name, 'link', 'add', name, 'type', 'dummy']);
    must(['ip', '-n', this.name, 'link', 'set', name, 'up']);
  }

  remove(): void {
    if (fs.existsSync(this.path)) sh(['ip', 'netns', 'delete', this.name]);
  }
}

/** The network namespaces pinned under /run/netns whose name starts with `prefix`. */
export function pinnedNetns(prefix: string): string[] {
  try {
    return fs.readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}
