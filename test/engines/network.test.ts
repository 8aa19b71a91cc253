/*
 * Differential: a container on a CNI bridge network made by husk (`husk image run --net NAME`)
 * against the same network made by Podman's CNI backend (`podman run --network NAME`, Podman 4.3
 * with network_backend = "cni"), with the same conflist (bridge + host-local + portmap +
 * firewall + tuning) in one directory both read, and the same plugins (/usr/lib/cni).
 *
 * Both run inside a TestNetns (test/lib/netns.ts) through `nsenter --net`: the bridge, the
 * veths, the NAT and filter rules are made there, and no packet leaves it (the test sends none
 * on purpose; the kernel's own IPv6 link-local chatter stays on the test's bridge).
 *
 * Each container prints what it sees (busybox's `ip -o addr`, `ip -o link`, `ip route`,
 * `ip -6 route`, /etc/hosts, /etc/resolv.conf, its hostname, the sysctl the tuning plugin sets),
 * then waits on its stdin; meanwhile the test reads what the "host" (the TestNetns) has: links,
 * addresses, iptables rules, the host-local lease. Then the container is let go (--rm), and
 * what is left in the TestNetns is read again. Compared after normalising what must differ:
 *   - the address host-local hands out (the containers run one after the other, so each gets
 *     the next one): the container's eth0 address is <container-ip> everywhere;
 *   - MAC addresses, and the IPv6 link-local addresses derived from them;
 *   - interface indexes (the veth peer's @ifN), the host-side veth's name (random), the name of
 *     the container's network namespace as the host-side veth shows it (link-netns);
 *   - the CNI container id (Podman's container id, husk's attach id) and the chain names the
 *     plugins derive from it (CNI-<hash>, CNI-DN-<hash>);
 *   - the container name Podman adds to the hostname's line in /etc/hosts (a Podman concept);
 *   - the names of ::1 in /etc/hosts: husk writes Docker's line for every network mode
 *     (`::1 localhost ip6-localhost ip6-loopback`), Podman `::1 localhost`; both say localhost.
 * Podman's own additions, which are no part of a CNI network, are turned off in its
 * containers.conf rather than normalised: base_hosts_file = "none" (else Podman copies this
 * machine's /etc/hosts into the container's) and host_containers_internal_ip = "none" (Podman's
 * name for the host, host.containers.internal).
 *
 * Known difference, not asserted: with -p, Podman's conmon holds the published host port open
 * (a listening socket in the host netns, so no host program can take it); husk checks the port
 * with bind() before ADD and holds nothing. The test prints both sides' listening sockets.
 *
 * If Podman's CNI backend cannot work here, every test is skipped with Podman's own words.
 *
 * HUSK_NETWORK_DIFF_SELF=1 runs Podman on both sides (a second container in husk's place): it
 * must find no difference, which shows the normalising hides nothing an engine does the same.
 *
 *   tini -s -- npx vitest run --project engines test/engines/network.test.ts
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestNetns } from '../lib/netns';
import { IMAGE, Workspace, buildImage, explain, need, requireRoot, run, runtimeBinary, shellQuote, yieldToRunner, type Result } from './setup';

requireRoot();

const ENGINE = 'network';
/** The network both use: its name, its bridge (inside the TestNetns), its subnet. */
const NETWORK = 'husk-diff';
const BRIDGE = 'hdiff0';
const SUBNET = '10.91.7.0/24';
const GATEWAY = '10.91.7.1';
const SUBNET_PREFIX = '10.91.7.';
/** What the tuning plugin sets in the container's namespace, read back inside. */
const TUNED_SYSCTL = 'net.ipv4.conf.eth0.arp_notify';
const HOSTNAME = 'husk-diff';

/** husk's own directories and files outside the workspace that the test may find created. */
const HUSK_RECORDS = '/var/lib/cni/husk';
/** What Podman's CNI backend and the plugins create outside the workspace (libcni's cache). */
const CNI_PATHS = ['/var/lib/cni/results', '/var/lib/cni/husk', '/var/lib/cni/networks', '/var/lib/cni'];

let ws: Workspace;
let netns: TestNetns;
let podmanBinary: string;
let podmanArgs: string[];
let podmanEnv: Record<string, string>;
let husk: string;
let huskArgs: string[];
let configDir: string;
let leaseDir: string;
/** Why Podman's CNI backend does not work here (every test is skipped with it), or undefined. */
let podmanProblem: string | undefined;
const cniPathsBefore = new Map<string, boolean>();

function conflist(): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            // The leases in the workspace, where the test reads them (not /var/lib/cni/networks).
            dataDir: leaseDir,
            routes: [{ dst: '0.0.0.0/0' }],
            ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'firewall' },
        { type: 'tuning', sysctl: { [TUNED_SYSCTL]: '1' } },
      ],
    },
    null,
    2,
  );
}

beforeAll(async () => {
  ws = new Workspace(ENGINE);
  ws.cgroupMarkers.push('libpod_parent', 'libpod-');
  for (const p of CNI_PATHS) cniPathsBefore.set(p, fs.existsSync(p));
  podmanBinary = need('podman');
  need('conmon');
  need('runc');
  need('nsenter');
  need('iptables-save');
  husk = runtimeBinary('husk');
  netns = new TestNetns('husk-diff');

  configDir = ws.mkdir('cni');
  leaseDir = ws.mkdir('cni-leases');
  fs.writeFileSync(path.join(configDir, `${NETWORK}.conflist`), conflist());

  const conf = ws.path('containers.conf');
  fs.writeFileSync(
    conf,
    [
      '[containers]',
      // The session may lack CAP_SYS_RESOURCE: Podman's default rlimits would fail to apply.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      // Podman's own additions to /etc/hosts, no part of the CNI network (see the top).
      'base_hosts_file = "none"',
      'host_containers_internal_ip = "none"',
      '[network]',
      'network_backend = "cni"',
      'cni_plugin_dirs = ["/usr/lib/cni"]',
      '[engine]',
      'lock_type = "file"',
      '',
    ].join('\n'),
  );
  podmanEnv = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: ws.path('storage.conf') };
  fs.writeFileSync(
    podmanEnv.CONTAINERS_STORAGE_CONF,
    `[storage]\ndriver = "overlay"\nrunroot = ${JSON.stringify(ws.mkdir('runroot'))}\ngraphroot = ${JSON.stringify(ws.mkdir('root'))}\n`,
  );
  podmanArgs = [
    '--root', ws.mkdir('root'),
    '--runroot', ws.mkdir('runroot'),
    '--tmpdir', ws.mkdir('tmp'),
    '--network-config-dir', configDir,
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    '--storage-driver', 'overlay',
  ];
  huskArgs = ['--root', ws.mkdir('husk-state')];

  const tarball = buildImage(ws);
  await yieldToRunner();
  ok(podman(['load', '--input', tarball]));
  await yieldToRunner();
  ok(run([husk, 'image', 'pull', '--quiet', '--store', ws.mkdir('husk-store'), `docker-archive:${tarball}`]));
  await yieldToRunner();
  podmanProblem = podmanCniProblem();
  if (podmanProblem) console.log(`network.test.ts: Podman's CNI backend does not work here, the differential tests are skipped: ${podmanProblem}`);
}, 600_000);

afterAll(async () => {
  if (!ws) return;
  const problems = await ws.teardown(async () => {
    podman(['rm', '--all', '--force', '--time', '0']);
    await yieldToRunner();
    podman(['rmi', '--all', '--force']);
    await yieldToRunner();
    podman(['system', 'reset', '--force']);
  });
  netns?.remove();
  // libcni's cache and husk's records directories, when the test made them and left them empty.
  for (const [p, existed] of cniPathsBefore) {
    if (existed) continue;
    try {
      fs.rmdirSync(p);
    } catch {
      // absent, or holds something of someone else's
    }
  }
  if (problems.length) throw new Error(`network test left things behind:\n  ${problems.join('\n  ')}`);
}, 600_000);

function ok(res: Result): Result {
  expect(res.status, explain(res)).toBe(0);
  return res;
}

/** Podman in the TestNetns, with runc. */
function podman(args: string[]): Result {
  return run(netns.argv([podmanBinary, ...podmanArgs, ...args]), { env: podmanEnv });
}

/** Whether Podman 4.3 runs a container on our conflist here; if not, why, in Podman's words. */
function podmanCniProblem(): string | undefined {
  const info = podman(['info', '--format', '{{.Host.NetworkBackend}}']);
  if (info.status !== 0) return `podman info failed: ${info.stderr.trim()}`;
  if (info.stdout.trim() !== 'cni') return `Podman uses the network backend "${info.stdout.trim()}" although containers.conf says network_backend = "cni"`;
  const inspect = podman(['network', 'inspect', NETWORK]);
  if (inspect.status !== 0) return `podman network inspect ${NETWORK} (our conflist in ${configDir}): ${inspect.stderr.trim()}`;
  const trial = podman(['--runtime', 'runc', 'run', '--rm', '--network', NETWORK, IMAGE, '/bin/true']);
  if (trial.status !== 0) return `podman run --network ${NETWORK} (CNI backend, plugins in /usr/lib/cni) failed: ${trial.stderr.trim()}`;
  return undefined;
}

// ------------------------------------------------------------------ the container's view

/** Printed inside the container; `read` holds it until the test has looked at the host side. */
const END = '=== end';
const VIEW_SCRIPT = [
  'echo "=== addresses"; busybox ip -o addr',
  'echo "=== links"; busybox ip -o link',
  'echo "=== routes"; busybox ip route',
  'echo "=== routes6"; busybox ip -6 route',
  'echo "=== hosts"; cat /etc/hosts',
  'echo "=== resolv.conf"; cat /etc/resolv.conf',
  'echo "=== hostname"; busybox hostname',
  `echo "=== sysctl"; echo "${TUNED_SYSCTL} = $(cat /proc/sys/${TUNED_SYSCTL.replace(/\./g, '/')})"`,
  // Not compared: which pin in /run/netns, if any, is this container's namespace afterwards.
  'echo "=== netns"; busybox readlink /proc/self/ns/net',
  `echo "${END}"`,
  'read line',
].join('; ');

type Engine = 'husk' | 'podman';

interface Seen {
  /** The command's result (after the container was let go). */
  result: Result;
  /** The container's view, section by section, as printed. */
  view: Record<string, string[]>;
  /** The container's eth0 IPv4 address. */
  address: string;
  /** The TestNetns while the container ran. */
  during: HostSide;
  /** The TestNetns after the command returned. */
  after: HostSide;
}

interface HostSide {
  links: string[];
  addresses: string[];
  rules: string[];
  leases: string[];
  listening: string[];
  /** The pins in /run/netns: name -> the inode of the namespace it holds. */
  pins: Map<string, number>;
  /** husk's attach records: file name -> content. */
  records: Map<string, string>;
}

/**
 * Runs `argv` (a `run --rm` whose container prints VIEW_SCRIPT's view and waits on stdin), reads
 * the host side once the view is printed, lets the container go, reads the host side again.
 */
function runHeld(argv: string[], env: Record<string, string> = {}): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let during: HostSide | undefined;
    let settled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`timed out after 45 s: ${argv.map(shellQuote).join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 45_000);
    const finish = (err?: Error, seen?: Seen) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(seen!);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!during && stdout.includes(`${END}\n`)) {
        try {
          during = hostSide();
        } catch (err) {
          finish(err as Error);
        }
        child.stdin.end('\n');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => undefined); // the container may be gone already
    child.on('error', (err) => finish(err));
    // 'exit', not 'close': a warm husk server started by this call may hold a copy of the pipes.
    child.on('exit', (status, signal) => {
      const result: Result = { command: argv.map(shellQuote).join(' '), status, signal, stdout, stderr, ms: Date.now() - started };
      if (status !== 0 || !during) {
        finish(new Error(`the container did not print its view and exit 0:\n${explain(result)}`));
        return;
      }
      const view = sections(stdout);
      const address = /^\d+: eth0\s+inet (\d+\.\d+\.\d+\.\d+)\//m.exec((view.addresses ?? []).join('\n'))?.[1] ?? '';
      finish(undefined, { result, view, address, during, after: hostSide() });
    });
  });
}

function sections(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^=== (.+)$/.exec(line);
    if (m) {
      current = m[1] === 'end' ? undefined : m[1];
      if (current) out[current] = [];
    } else if (current && line.trim()) out[current].push(line);
  }
  return out;
}

function inode(file: string): number {
  try {
    return fs.statSync(file).ino;
  } catch {
    return 0; // gone meanwhile
  }
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** What the TestNetns (the test's "host") has, and the netns pins and husk's attach records. */
function hostSide(): HostSide {
  const must = (argv: string[]) => {
    const r = netns.run(argv);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${netns.name}: exit ${r.status}: ${r.stderr.trim()}`);
    return r.stdout.split('\n').filter(Boolean);
  };
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir).sort();
    } catch {
      return [];
    }
  };
  const leaseFiles = list(path.join(leaseDir, NETWORK)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
  return {
    links: must(['ip', '-o', 'link', 'show']),
    addresses: must(['ip', '-o', 'addr', 'show']),
    rules: must(['iptables-save']).filter((l) => !l.startsWith('#')),
    leases: leaseFiles.map((f) => `${f}: ${fs.readFileSync(path.join(leaseDir, NETWORK, f), 'utf8').replace(/\r?\n/g, ' ')}`),
    listening: must(['ss', '-Hltnu']).map((l) => l.replace(/\s+/g, ' ')),
    pins: new Map(list('/run/netns').map((n) => [n, inode(path.join('/run/netns', n))])),
    records: new Map(list(HUSK_RECORDS).map((n) => [n, read(path.join(HUSK_RECORDS, n))])),
  };
}

// -------------------------------------------------------------------------- normalising

const MAC = /\b(?!00:00:00:00:00:00\b)(?!ff:ff:ff:ff:ff:ff\b)[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b/g;

/** The replacements every line of either side goes through (see the top of the file). */
function normaliser(address: string, podmanName?: string): (line: string) => string {
  return (line) => {
    let l = line.replace(/[ \t]+/g, ' ').trim();
    if (address) l = l.replace(new RegExp(`(?<![\\d.])${address.replace(/\./g, '\\.')}(?![\\d])`, 'g'), '<container-ip>');
    l = l
      .replace(MAC, '<mac>')
      .replace(/\bfe80::[0-9a-f:]+\/64/g, 'fe80::<from mac>/64')
      .replace(/@if\d+/g, '@if<peer>')
      .replace(/^\d+: /, '')
      .replace(/\bveth[0-9a-f]{8}\b/g, 'veth<random>')
      .replace(/\blink-netns(id)? \S+/g, 'link-netns <container netns>')
      .replace(/\bCNI-DN-[0-9a-f]+\b/g, 'CNI-DN-<hash>')
      .replace(/\bCNI-[0-9a-f]{24}\b/g, 'CNI-<hash>')
      .replace(/\b[0-9a-f]{64}\b|\b[0-9a-f]{32}\b/g, '<container id>')
      // The IPv6 link-local address may still be in duplicate address detection.
      .replace(/ tentative\b/g, '')
      .replace(/ valid_lft forever preferred_lft forever/g, '');
    if (podmanName) l = l.replace(new RegExp(`(^| )${podmanName}( |$)`), '$1').trim();
    return l;
  };
}

/** /etc/hosts as "address names..." lines, comments dropped, sorted. */
function hostsLines(lines: string[], normalise: (l: string) => string): string[] {
  return lines
    .map((l) => l.replace(/#.*/, ''))
    .map((l) => (/^::1\s+localhost\s+ip6-localhost\s+ip6-loopback\s*$/.test(l) ? '::1\tlocalhost' : l))
    .map(normalise)
    .filter(Boolean)
    .sort();
}

/** Lines only on one side, as readable text; empty when the two agree (order is kept when it matters). */
function differ(what: string, husk: string[], podman: string[], ordered = false): string[] {
  const count = (lines: string[]) => lines.reduce((m, l) => m.set(l, (m.get(l) ?? 0) + 1), new Map<string, number>());
  const h = count(husk);
  const p = count(podman);
  const onlyHusk = [...h].filter(([l, n]) => (p.get(l) ?? 0) < n).map(([l]) => l);
  const onlyPodman = [...p].filter(([l, n]) => (h.get(l) ?? 0) < n).map(([l]) => l);
  if (onlyHusk.length || onlyPodman.length) {
    return [`${what}:\n      only with husk:   ${onlyHusk.join('\n                        ') || '-'}\n      only with Podman: ${onlyPodman.join('\n                        ') || '-'}`];
  }
  if (ordered && husk.join('\n') !== podman.join('\n')) return [`${what}: the same lines in another order:\n      husk:   ${husk.join(' | ')}\n      Podman: ${podman.join(' | ')}`];
  return [];
}

/** The rules of the CNI plugins (and only those) in iptables-save's output, per table. */
function cniRules(lines: string[], normalise: (l: string) => string): string[] {
  let table = '';
  const out: string[] = [];
  for (const line of lines) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith('-A ') || line.startsWith(':')) {
      const l = normalise(line).replace(/ \[\d+:\d+\]$/, '');
      // Built-in chains' declarations carry packet counters and policies only.
      if (/^:(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) /.test(l)) continue;
      out.push(`${table}: ${l}`);
    }
  }
  return out;
}

/**
 * The host-side links: the bridge and the veths on it, loopback left out. Their carrier and
 * operational state are left out too: the kernel reports a bridge's carrier change with a
 * delay (linkwatch, up to a second), so right after a port comes or goes it reads either way.
 */
function hostLinks(side: HostSide, normalise: (l: string) => string): string[] {
  return side.links
    .map(normalise)
    .filter((l) => !l.startsWith('lo:'))
    .map((l) => l.replace(/\\\s+/, ' ').replace(/NO-CARRIER,|,LOWER_UP/g, '').replace(/ state \S+/, ''))
    .sort();
}

function hostAddresses(side: HostSide, normalise: (l: string) => string): string[] {
  return side.addresses.map(normalise).filter((l) => !l.startsWith('lo ')).sort();
}

function compare(husk: Seen, podman: Seen, podmanName: string, selfName?: string): string[] {
  const nh = normaliser(husk.address, selfName);
  const np = normaliser(podman.address, podmanName);
  const lines = (seen: Seen, key: string, n: (l: string) => string) => (seen.view[key] ?? []).map(n);
  const found: string[] = [];
  for (const [key, ordered] of [['addresses', false], ['links', false], ['routes', true], ['routes6', false], ['hostname', false], ['sysctl', false]] as const) {
    found.push(...differ(`in the container, ${key}`, lines(husk, key, nh), lines(podman, key, np), ordered));
  }
  found.push(...differ('in the container, /etc/hosts', hostsLines(husk.view.hosts ?? [], nh), hostsLines(podman.view.hosts ?? [], np)));
  const resolv = (seen: Seen, n: (l: string) => string) => (seen.view['resolv.conf'] ?? []).map((l) => l.replace(/#.*/, '')).map(n).filter(Boolean);
  found.push(...differ('in the container, /etc/resolv.conf', resolv(husk, nh), resolv(podman, np), true));

  found.push(...differ('on the host, while it ran: links', hostLinks(husk.during, nh), hostLinks(podman.during, np)));
  found.push(...differ('on the host, while it ran: addresses', hostAddresses(husk.during, nh), hostAddresses(podman.during, np)));
  // Unordered: the order of portmap's rules follows the order of the port mappings, which
  // Podman itself does not keep from one run to the next.
  found.push(...differ('on the host, while it ran: iptables rules', cniRules(husk.during.rules, nh), cniRules(podman.during.rules, np)));
  const lease = (side: HostSide, n: (l: string) => string) => side.leases.map(n);
  found.push(...differ('on the host, while it ran: host-local leases', lease(husk.during, nh), lease(podman.during, np)));

  found.push(...differ('on the host, after --rm: links', hostLinks(husk.after, nh), hostLinks(podman.after, np)));
  found.push(...differ('on the host, after --rm: iptables rules', cniRules(husk.after.rules, nh), cniRules(podman.after.rules, np)));
  found.push(...differ('on the host, after --rm: host-local leases', lease(husk.after, nh), lease(podman.after, np)));
  return found;
}

/** What either engine left in the TestNetns and on the machine after its `run --rm` returned. */
function leftovers(engine: Engine, seen: Seen, before: HostSide): string[] {
  const problems: string[] = [];
  const veths = seen.after.links.filter((l) => /\bveth/.test(l));
  if (veths.length) problems.push(`${engine} left veths in the test netns: ${veths.join(' | ')}`);
  const mentions = seen.after.rules.filter((l) => (seen.address && l.includes(`${seen.address}/`)) || l.includes(`${seen.address}:`) || /\bCNI-(DN-)?[0-9a-f]{20,}/.test(l));
  if (mentions.length) problems.push(`${engine} left firewall rules or chains of its container: ${mentions.join(' | ')}`);
  if (seen.after.leases.length) problems.push(`${engine} left host-local leases: ${seen.after.leases.join(' | ')}`);
  // Other tests may pin namespaces and write records meanwhile: only the container's own count,
  // its namespace (by inode) and its CNI container id (from the plugins' rule comments).
  const ownNetns = Number(/net:\[(\d+)\]/.exec((seen.view.netns ?? []).join(''))?.[1] ?? -1);
  const pins = [...seen.after.pins].filter(([, ino]) => ino === ownNetns).map(([name]) => name);
  if (pins.length) problems.push(`${engine} left its container's network namespace pinned in /run/netns: ${pins.join(', ')}`);
  const ids = new Set([...seen.during.rules.join('\n').matchAll(/id: \\?"([0-9a-f]{16,})\\?"/g)].map((m) => m[1]));
  const records = [...seen.after.records].filter(([name, text]) => !before.records.has(name) && [...ids].some((id) => text.includes(id) || name.includes(id))).map(([name]) => name);
  if (records.length) problems.push(`${engine} left attach records in ${HUSK_RECORDS}: ${records.join(', ')}`);
  return problems;
}

function huskRun(options: string[]): string[] {
  return netns.argv([
    husk, ...huskArgs, 'image', 'run', '--rm', '--quiet', '--store', ws.path('husk-store'),
    '--net', NETWORK, '--cni-config-dir', configDir, '--cni-plugin-dir', '/usr/lib/cni',
    ...options, IMAGE, '/bin/sh', '-c', VIEW_SCRIPT,
  ]);
}

function podmanRun(name: string, options: string[]): string[] {
  return netns.argv([
    podmanBinary, ...podmanArgs, '--runtime', 'runc', 'run', '--rm', '--interactive', '--name', name,
    '--network', NETWORK, ...options, IMAGE, '/bin/sh', '-c', VIEW_SCRIPT,
  ]);
}

function rawView(engine: Engine, seen: Seen): string {
  const indent = (lines: string[]) => lines.map((l) => `      ${l}`).join('\n');
  return [
    `  ${engine} (${seen.result.command}):`,
    `    in the container:\n${seen.result.stdout.trimEnd().split('\n').map((l) => `      ${l}`).join('\n')}`,
    `    the host's iptables rules while it ran:\n${indent(seen.during.rules)}`,
    `    the host's links while it ran:\n${indent(seen.during.links)}`,
  ].join('\n');
}

/** Both engines with the same options; the differences found, with both raw views. */
async function differential(label: string, options: string[]): Promise<void> {
  const podmanName = `husk-diff-${randomBytes(4).toString('hex')}`;
  await yieldToRunner();
  const beforePodman = hostSide();
  const podmanSeen = await runHeld(podmanRun(podmanName, options), podmanEnv);
  await yieldToRunner();
  const beforeHusk = hostSide();
  // HUSK_NETWORK_DIFF_SELF: a second Podman container stands in for husk's (see the top).
  const selfName = process.env.HUSK_NETWORK_DIFF_SELF ? `husk-diff-${randomBytes(4).toString('hex')}` : undefined;
  const huskSeen = await runHeld(selfName ? podmanRun(selfName, options) : huskRun(options), selfName ? podmanEnv : {});
  await yieldToRunner();

  // What must hold whatever the other engine does.
  for (const [engine, seen] of [['husk', huskSeen], ['podman', podmanSeen]] as const) {
    expect(seen.address.startsWith(SUBNET_PREFIX), `${engine}'s container has no eth0 address in ${SUBNET}:\n${rawView(engine, seen)}`).toBe(true);
  }
  const left = [...leftovers('podman', podmanSeen, beforePodman), ...leftovers('husk', huskSeen, beforeHusk)];
  const differences = compare(huskSeen, podmanSeen, podmanName, selfName);
  console.log(
    `${label}: listening sockets in the test netns while the container ran (Podman's conmon holds published ports, husk holds none):\n` +
      `  husk:   ${huskSeen.during.listening.join(' | ') || '-'}\n  Podman: ${podmanSeen.during.listening.join(' | ') || '-'}`,
  );
  expect(
    [...differences, ...left],
    `${label}: husk image run --net ${NETWORK} ${options.join(' ')} and podman run --network ${NETWORK} ${options.join(' ')} differ (after normalising addresses, MACs, ids):\n  ${[...differences, ...left].join('\n  ')}\n\nas printed:\n${rawView('husk', huskSeen)}\n${rawView('podman', podmanSeen)}`,
  ).toEqual([]);
}

it('the same conflist, default DNS and hosts: what the container and the host see with husk and with Podman', async (ctx) => {
  if (podmanProblem) ctx.skip(`Podman's CNI backend does not work here: ${podmanProblem}`);
  await differential('defaults', ['--hostname', HOSTNAME]);
});

it('the same conflist with --dns, --add-host and -p: what the container and the host see with husk and with Podman', async (ctx) => {
  if (podmanProblem) ctx.skip(`Podman's CNI backend does not work here: ${podmanProblem}`);
  await differential('--dns --add-host -p', ['--hostname', HOSTNAME, '--dns', '10.91.7.53', '--add-host', 'db.internal:10.91.7.99', '-p', '18080:80/tcp', '-p', '127.0.0.1:18081:81/udp']);
});
