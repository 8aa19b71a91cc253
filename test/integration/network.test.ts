// Container networks (issue 12, /work/net-design.md): `husk image run --net bridge|NAME -p ...`
// through the standard CNI plugins, as a user sees it: a published port answers, containers on
// one network reach each other, /etc/hosts and /etc/resolv.conf say what was asked, bad input is
// one line and leaves nothing, and nothing is left after --rm, delete, a SIGKILLed container or a
// SIGKILLed husk once `husk image prune` (or the next `husk image run --net`) has run.
//
// Every test has a network namespace of its own (TestNetns) standing in for the host: husk runs
// in it through a wrapper script (`nsenter --net=NS -- husk "$@"`, used as the harness's runtime,
// so cleanup's `delete --force` runs there too), the bridge, the veths, the published ports and
// the firewall rules all live in it, and every packet a test sends stays in it or on loopback.
// Each test also has its own --cni-config-dir, and the networks it writes have their own names,
// subnets and host-local `dataDir`, so tests never share a bridge or a lease directory. The
// default `husk` network keeps its leases where its conflist (written by husk on first use) says.
//
// What "nothing left" means here (leftovers()): no veth in the test's namespace; no lease file
// (other than host-local's `lock` and `last_reserved_ip.*`); no firewall rule or chain of a
// container (the CNI plugins' per-container chains CNI-DN-*/CNI-<hash>, rules naming an attach
// id or a container /32); no netns pin /run/netns/husk-<attach id>; no record in
// /var/lib/cni/husk made from the test's namespace; and, from the harness, no container state,
// mount or process; and for `image run`, no bundle in the store.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  expectStatus,
  isRunc,
  newId,
  parseReport,
  rt,
  rtSpawn,
  spawnTool,
  state,
  stateEntries,
  stateRoot,
  tempDir,
  waitFor,
  waitForStatus,
  which,
  sleep,
  RUNTIME,
  type RtOptions,
  type RtResult,
} from './harness';
import { buildImage, probeLayer, writeLayout, type BuiltImage } from './image-fixtures';
import { TestNetns } from '../lib/netns';

const BUSYBOX = which('busybox');
/** The page busybox httpd serves from /www in the test image. */
const PAGE = 'husk-network-test-page';
const RECORDS = '/var/lib/cni/husk';
const DEFAULT_LEASES = '/var/lib/cni/networks';
const PIN = /^husk-[0-9a-f]{32}$/;

// --------------------------------------------------------------------------------- the image

let image: BuiltImage;
beforeAll(async () => {
  if (!BUSYBOX) return;
  image = await buildImage({
    layers: [
      probeLayer([
        { path: 'www/', type: 'directory' },
        { path: 'www/index.html', content: `${PAGE}\n` },
      ]),
      {
        entries: [
          { path: 'bin/busybox', content: fs.readFileSync(BUSYBOX), mode: 0o755 },
          { path: 'bin/sh', type: 'symlink', linkname: 'busybox' },
        ],
      },
    ],
    config: { Cmd: ['/probe', 'report'], Env: ['PATH=/bin'] },
  });
});

// ------------------------------------------------------------------------ the test's "host"

interface NetTest {
  netns: TestNetns;
  /** The nsfs inode of the test's namespace (how a record may name it). */
  netnsInode: number;
  /** `nsenter --net=NS -- husk "$@"`: the runtime every husk call of the test goes through. */
  husk: string;
  cniDir: string;
  store: string;
  /** `oci:LAYOUT:v1`, the test image. */
  image: string;
  /** Directories of the test's own (store, bundles, config dir), to recognise its records. */
  dirs: string[];
  /** Lease directories (host-local dataDir/NAME) the test's networks use. */
  leaseDirs: Set<string>;
  /** What existed before the test in places other tests or people may use too. */
  before: { pins: Set<string>; leases: Map<string, Set<string>>; rootLinks: Set<string> };
  /** Host ports the test published (no rule for them may appear in the real host's netns). */
  ports: number[];
}

let current: NetTest | undefined;

function pins(): string[] {
  try {
    return fs.readdirSync('/run/netns').filter((n) => PIN.test(n));
  } catch {
    return [];
  }
}

function leaseFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
  } catch {
    return [];
  }
}

function rootLinks(): Set<string> {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return new Set(
    r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1].trim().split('@')[0]),
  );
}

/** A new "host" for the test: namespace, wrapper, config dir, store, image layout. */
function setup(): NetTest {
  const netns = new TestNetns();
  const scratch = tempDir('net-');
  const husk = path.join(scratch, 'husk');
  fs.writeFileSync(husk, `#!/bin/sh\nexec nsenter --net=${netns.path} -- ${RUNTIME} "$@"\n`, { mode: 0o755 });
  const cniDir = tempDir('cni-');
  const store = tempDir('store-');
  const layout = tempDir('layout-');
  writeLayout(layout, [{ tag: 'v1', image }]);
  const t: NetTest = {
    netns,
    netnsInode: fs.statSync(netns.path).ino,
    husk,
    cniDir,
    store,
    image: `oci:${layout}:v1`,
    dirs: [scratch, cniDir, store, layout],
    leaseDirs: new Set(),
    before: { pins: new Set(pins()), leases: new Map(), rootLinks: rootLinks() },
    ports: [],
  };
  const defaultLeases = path.join(DEFAULT_LEASES, 'husk');
  t.before.leases.set(defaultLeases, new Set(leaseFiles(defaultLeases)));
  current = t;
  return t;
}

/** A husk call inside the test's namespace. */
function husk(t: NetTest, args: string[], opts: RtOptions = {}): RtResult {
  return rt(args, { timeoutMs: 45_000, ...opts, runtime: t.husk });
}

/** The flags every networked `image run` of a test shares. */
function netFlags(t: NetTest, net = 'bridge'): string[] {
  return ['--store', t.store, '-q', '--net', net, '--cni-config-dir', t.cniDir];
}

/** A host port for the test: random, so a port left published by one test never meets another. */
function hostPort(t: NetTest): number {
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  t.ports.push(port);
  return port;
}

/** A new bundle directory path (not yet existing) in a directory of the test. */
function bundlePath(t: NetTest): string {
  const dir = tempDir('bundle-');
  t.dirs.push(dir);
  return path.join(dir, 'b');
}

// ---------------------------------------------------------------------- networks of the test

let subnetCounter = 0;
/** A /24 no other test in this file uses (the namespaces are separate anyway). */
function subnet(): { subnet: string; prefix: string } {
  const third = (process.pid + ++subnetCounter * 7) % 250;
  return { subnet: `10.74.${third}.0/24`, prefix: `10.74.${third}.` };
}

function uniqueName(kind: string): string {
  return `t${kind}-${Math.random().toString(36).slice(2, 8)}`;
}

/** host-local IPAM with the test's own lease directory. */
function ipam(t: NetTest, cidr: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const dataDir = tempDir('leases-');
  t.dirs.push(dataDir);
  return { type: 'host-local', ranges: [[{ subnet: cidr }]], dataDir, ...extra };
}

/** Writes NAME.conflist into the test's config dir and records where its leases live. */
function writeConflist(t: NetTest, name: string, plugins: Record<string, unknown>[], file = `${name}.conflist`): string {
  const list = { cniVersion: '1.0.0', name, plugins };
  const at = path.join(t.cniDir, file);
  fs.writeFileSync(at, JSON.stringify(list, null, 2));
  for (const p of plugins) {
    const dataDir = (p.ipam as { dataDir?: string } | undefined)?.dataDir;
    if (dataDir) t.leaseDirs.add(path.join(dataDir, name));
  }
  return at;
}

/** A bridge network of the test's own: its bridge, subnet, leases, portmap and firewall. */
function writeBridgeNetwork(t: NetTest, extra: Record<string, unknown>[] = []): { name: string; prefix: string } {
  const name = uniqueName('br');
  const { subnet: cidr, prefix } = subnet();
  writeConflist(t, name, [
    { type: 'bridge', bridge: `br-${name.slice(-6)}`, isGateway: true, ipMasq: true, ipam: ipam(t, cidr, { routes: [{ dst: '0.0.0.0/0' }] }) },
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'firewall' },
    ...extra,
  ]);
  return { name, prefix };
}

/**
 * The default network as husk wrote it on first use: its file, and where host-local keeps its
 * leases (its dataDir, else host-local's default /var/lib/cni/networks).
 */
function defaultNetwork(t: NetTest): { file: string; list: any; leaseDir: string } | undefined {
  const file = path.join(t.cniDir, 'husk.conflist');
  if (!fs.existsSync(file)) return undefined;
  const list = JSON.parse(fs.readFileSync(file, 'utf8'));
  const withIpam = (list.plugins as any[]).find((p) => p.ipam);
  const leaseDir = path.join(withIpam?.ipam?.dataDir ?? DEFAULT_LEASES, list.name ?? 'husk');
  t.leaseDirs.add(leaseDir);
  return { file, list, leaseDir };
}

/** Registers the lease directory of every network in the test's config dir (whoever wrote it). */
function scanNetworks(t: NetTest): void {
  let files: string[];
  try {
    files = fs.readdirSync(t.cniDir).filter((f) => /\.(conflist|conf|json)$/.test(f));
  } catch {
    return;
  }
  for (const f of files) {
    try {
      const list = JSON.parse(fs.readFileSync(path.join(t.cniDir, f), 'utf8'));
      for (const p of list.plugins ?? [list]) {
        if (p?.ipam?.type === 'host-local' && list.name) t.leaseDirs.add(path.join(p.ipam.dataDir ?? DEFAULT_LEASES, list.name));
      }
    } catch {
      // not a network (the tests write broken ones on purpose)
    }
  }
}

/** A directory with fake CNI plugins (shell scripts, busybox sh) for --cni-plugin-dir. */
function pluginDir(t: NetTest, plugins: Record<string, string>): string {
  const dir = tempDir('plugins-');
  t.dirs.push(dir);
  for (const [name, body] of Object.entries(plugins)) {
    fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  return dir;
}

/** A CNI plugin script answering VERSION, and `add`/`del` (shell) for ADD and DEL. */
function fakePlugin(add: string, del = 'exit 0'): string {
  return [
    'case "$CNI_COMMAND" in',
    `VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}'; exit 0;;`,
    `ADD) cat >/dev/null; ${add};;`,
    `DEL) cat >/dev/null; ${del};;`,
    `*) cat >/dev/null; exit 0;;`,
    'esac',
  ].join('\n');
}

// ------------------------------------------------------------------------ what the user sees

/** GET / from inside the test's namespace (busybox nc): the response, or undefined. */
function httpGet(t: NetTest, host: string, port: number): string | undefined {
  // The request goes through a pipe inside: nc may exit (refused) before it reads its stdin.
  const script = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | ${BUSYBOX} nc -w 2 ${host} ${port}`;
  const r = t.netns.run([BUSYBOX!, 'sh', '-c', script], { timeoutMs: 10_000 });
  return r.status === 0 && r.stdout.startsWith('HTTP/1.') ? r.stdout : undefined;
}

async function expectPage(t: NetTest, host: string, port: number): Promise<void> {
  const response = await waitFor(`the page at ${host}:${port} from the test's namespace`, () => httpGet(t, host, port), 15_000);
  expect(response).toContain(PAGE);
}

/** The container's IPv4 address on eth0 (from the probe inside, through exec). */
function containerAddress(t: NetTest, id: string): string {
  const res = expectStatus(husk(t, ['exec', id, '/probe', 'report']), 0);
  const eth0 = parseReport(res.stdout).interfaces.find((i) => i.name === 'eth0');
  expect(eth0, `interfaces: ${res.stdout}`).toBeDefined();
  const v4 = eth0!.addresses.find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  expect(v4, `eth0 addresses: ${eth0!.addresses}`).toBeDefined();
  return v4!;
}

/** The server command of the test image: busybox httpd on `port` in the foreground. */
function httpd(port = 80): string[] {
  return ['/bin/busybox', 'httpd', '-f', '-p', String(port), '-h', '/www'];
}

/** Asserts a refusal: exit 1, nothing on stdout, one `husk: ...` line on stderr matching `what`. */
function expectRefused(res: RtResult, what: RegExp): void {
  expect(res.status, `\`${res.command}\`: ${res.stderr}`).toBe(1);
  const lines = res.stderr.split('\n').filter(Boolean);
  expect(lines, `stderr of \`${res.command}\``).toHaveLength(1);
  expect(lines[0]).toMatch(/^husk: /);
  expect(lines[0]).toMatch(what);
}

// --------------------------------------------------------------------------------- leftovers

/** The records in /var/lib/cni/husk that belong to the test: naming its namespace or its dirs. */
function records(t: NetTest): { file: string; text: string; attachId: string }[] {
  let files: string[];
  try {
    files = fs.readdirSync(RECORDS).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const found: { file: string; text: string; attachId: string }[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(RECORDS, f), 'utf8');
    } catch {
      continue;
    }
    if (recordIsOurs(t, text)) found.push({ file: path.join(RECORDS, f), text, attachId: f.replace(/\.json$/, '') });
  }
  return found;
}

function recordIsOurs(t: NetTest, text: string): boolean {
  return text.includes(t.netns.name) || new RegExp(`\\b${t.netnsInode}\\b`).test(text) || t.dirs.some((d) => text.includes(d));
}

/** Records of others (not the test's): their pins and leases are not the test's business. */
function foreignAttachIds(t: NetTest): Set<string> {
  const ids = new Set<string>();
  try {
    for (const f of fs.readdirSync(RECORDS)) {
      if (!f.endsWith('.json')) continue;
      try {
        if (!recordIsOurs(t, fs.readFileSync(path.join(RECORDS, f), 'utf8'))) ids.add(f.replace(/\.json$/, ''));
      } catch {
        // gone
      }
    }
  } catch {
    // no records at all
  }
  return ids;
}

/** The firewall rules and chains of a container in the test's namespace. */
function containerRules(t: NetTest): string[] {
  const r = t.netns.run(['iptables-save']);
  if (r.status !== 0) throw new Error(`iptables-save in ${t.netns.name}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => /CNI-DN-|CNI-[0-9a-f]{16,}|id: \\?"|\/32\b/.test(l));
}

/** What the test left (see the top of the file); `containers` false leaves out state and bundles. */
function leftovers(t: NetTest, containers = true): string[] {
  const problems: string[] = [];
  scanNetworks(t);
  const veths = t.netns.links().filter((l) => l.startsWith('veth'));
  if (veths.length) problems.push(`veth in the test's namespace: ${veths.join(', ')}`);
  const rules = containerRules(t);
  if (rules.length) problems.push(`firewall rules in the test's namespace:\n    ${rules.join('\n    ')}`);
  const foreign = foreignAttachIds(t);
  for (const dir of t.leaseDirs) {
    const before = t.before.leases.get(dir) ?? new Set<string>();
    const left = leaseFiles(dir).filter((f) => {
      if (before.has(f)) return false;
      let owner = '';
      try {
        owner = fs.readFileSync(path.join(dir, f), 'utf8').split(/\r?\n/)[0].trim();
      } catch {
        return false;
      }
      return !foreign.has(owner);
    });
    if (left.length) problems.push(`leases in ${dir}: ${left.join(', ')}`);
  }
  const ours = records(t);
  for (const r of ours) problems.push(`record ${r.file}: ${r.text.slice(0, 200)}`);
  const leftPins = pins().filter((p) => !t.before.pins.has(p) && !foreign.has(p.slice('husk-'.length)));
  if (leftPins.length) problems.push(`netns pins: ${leftPins.map((p) => `/run/netns/${p}`).join(', ')}`);
  if (containers) {
    const dir = path.join(t.store, 'containers');
    const bundles = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    if (bundles.length) problems.push(`bundles in the store: ${bundles.join(', ')}`);
    const entries = stateEntries(stateRoot(t.husk));
    if (entries.length) problems.push(`container state: ${entries.join(', ')}`);
  }
  // Nothing of the test's network may appear in the real host's namespace.
  const newRootLinks = [...rootLinks()].filter((l) => !t.before.rootLinks.has(l) && (l === 'husk0' || l.startsWith('br-t')));
  if (newRootLinks.length) problems.push(`links in the real host's namespace: ${newRootLinks.join(', ')}`);
  return problems;
}

/** Polls (up to 5 s: a namespace dies asynchronously) until nothing of the test is left. */
async function expectNoLeftovers(t: NetTest, what = 'nothing left'): Promise<void> {
  let found = leftovers(t);
  const deadline = Date.now() + 5_000;
  while (found.length && Date.now() < deadline) {
    await sleep(100);
    found = leftovers(t);
  }
  expect(found, what).toEqual([]);
}

/** Removes what a failed test left outside its namespace, so the next test starts clean. */
function scrub(t: NetTest): void {
  for (const r of records(t)) {
    const pin = `/run/netns/husk-${r.attachId}`;
    spawnSync('umount', ['-l', pin], { stdio: 'ignore' });
    fs.rmSync(pin, { force: true });
    fs.rmSync(r.file, { force: true });
  }
  const foreign = foreignAttachIds(t);
  for (const p of pins()) {
    if (t.before.pins.has(p) || foreign.has(p.slice('husk-'.length))) continue;
    spawnSync('umount', ['-l', `/run/netns/${p}`], { stdio: 'ignore' });
    fs.rmSync(`/run/netns/${p}`, { force: true });
  }
  for (const dir of t.leaseDirs) {
    if (dir.startsWith(DEFAULT_LEASES)) {
      const before = t.before.leases.get(dir) ?? new Set<string>();
      for (const f of leaseFiles(dir)) {
        if (before.has(f)) continue;
        const owner = fs.readFileSync(path.join(dir, f), 'utf8').split(/\r?\n/)[0].trim();
        if (!foreign.has(owner)) fs.rmSync(path.join(dir, f), { force: true });
      }
    }
  }
}

afterEach(async () => {
  const t = current;
  current = undefined;
  const errors: string[] = [];
  if (t) scanNetworks(t);
  try {
    // Deletes the test's containers through the wrapper, so inside its namespace.
    await cleanup();
  } catch (err) {
    errors.push((err as Error).message);
  }
  if (t) {
    // The harness's context is gone: its state root is not asked for again.
    const found = leftovers(t, false);
    if (found.length) errors.push(`network leftovers after cleanup:\n  ${found.join('\n  ')}`);
    scrub(t);
    t.netns.remove();
  }
  if (errors.length) throw new Error(errors.join('\n'));
});

/**
 * What a user does after a husk died under a container: SIGKILL whatever of the test's
 * containers still has an init, `husk image prune` (which must release every network), then
 * `delete --force` of what remains of the containers, after which nothing may be left.
 */
async function killThenPrune(t: NetTest): Promise<void> {
  for (const id of stateEntries(stateRoot(t.husk))) {
    const s = state(id, { runtime: t.husk });
    if (s && s.pid > 0 && ['running', 'created', 'creating'].includes(s.status)) {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // gone already
      }
      if (s.status !== 'creating') await waitForStatus(id, 'stopped', { runtime: t.husk });
    }
  }
  expectStatus(husk(t, ['image', 'prune', '--store', t.store]), 0);
  expect(leftovers(t, false), 'network leftovers after prune').toEqual([]);
  for (const id of stateEntries(stateRoot(t.husk))) expectStatus(husk(t, ['delete', '--force', id]), 0);
  await expectNoLeftovers(t);
  await expectNothingLeft();
}

// ------------------------------------------------------------------------------------ tests

describe.skipIf(isRunc || !BUSYBOX)('husk image run --net', () => {
  it('publishes a port: the server in the container answers on 127.0.0.1:HOSTPORT, the gateway and its own address; delete tears it down', async () => {
    const t = setup();
    const port = hostPort(t);
    const id = newId('net');
    const res = husk(t, ['image', 'run', ...netFlags(t), '-d', '--name', id, '-p', `${port}:80`, t.image, ...httpd()]);
    expectStatus(res, 0);
    await waitForStatus(id, 'running', { runtime: t.husk });

    // The default network was written on first use, in the given config dir (not /etc/cni/net.d).
    const net = defaultNetwork(t);
    expect(net, `${t.cniDir} holds ${fs.readdirSync(t.cniDir)}`).toBeDefined();
    expect(net!.list.name).toBe('husk');
    const bridge = (net!.list.plugins as any[]).find((p) => p.type === 'bridge');
    expect(bridge.bridge).toBe('husk0');
    expect(JSON.stringify(bridge.ipam)).toContain('10.73.0.0/16');
    // Its bridge is in the test's namespace.
    expect(t.netns.links()).toContain('husk0');

    const address = containerAddress(t, id);
    expect(address).toMatch(/^10\.73\./);
    await expectPage(t, '127.0.0.1', port);
    await expectPage(t, '10.73.0.1', port);
    await expectPage(t, address, 80);

    // While it runs, its pieces are where the design says (so their absence later means
    // something): one veth, its lease, its rules, one pin, one record.
    expect(t.netns.links().filter((l) => l.startsWith('veth'))).toHaveLength(1);
    expect(leaseFiles(net!.leaseDir)).toContain(address);
    const ours = records(t);
    expect(ours, `records in ${RECORDS}`).toHaveLength(1);
    expect(ours[0].attachId).toMatch(/^[0-9a-f]{32}$/);
    expect(pins()).toContain(`husk-${ours[0].attachId}`);
    expect(containerRules(t).join('\n')).toContain(`--dport ${port}`);
    // Nothing was published in the real host's namespace.
    const rootRules = spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout;
    expect(rootRules).not.toContain(ours[0].attachId);

    expectStatus(husk(t, ['delete', '--force', id]), 0);
    await expectNoLeftovers(t);
    expect(httpGet(t, '127.0.0.1', port)).toBeUndefined();
    await expectNothingLeft();
  });

  it('writes the address and hostname, --add-host lines into /etc/hosts and --dns into /etc/resolv.conf; --rm leaves nothing', async () => {
    const t = setup();
    const res = husk(t, [
      'image', 'run', ...netFlags(t), '--rm', '--hostname', 'web', '--add-host', 'db.example:192.0.2.10', '--add-host', 'cache.example:192.0.2.11',
      '--dns', '192.0.2.53', '--dns', '192.0.2.54', t.image,
      '/bin/sh', '-c', 'cat /etc/hosts; echo ===; cat /etc/resolv.conf; echo ===; /probe report',
    ]);
    expectStatus(res, 0);
    const [hosts, resolv, report] = res.stdout.split('===\n');
    const probe = parseReport(report);
    expect(probe.hostname).toBe('web');
    expect(probe.interfaces.map((i) => i.name).sort()).toEqual(['eth0', 'lo']);
    const address = probe.interfaces.find((i) => i.name === 'eth0')!.addresses.find((a) => a.includes('.'))!;
    expect(address).toMatch(/^10\.73\./);
    const hostsLines = hosts.split('\n').map((l) => l.trim().split(/\s+/));
    expect(hosts).toMatch(new RegExp(`^${address.replace(/\./g, '\\.')}\\tweb(\\s|$)`, 'm'));
    expect(hostsLines, hosts).toContainEqual(['192.0.2.10', 'db.example']);
    expect(hostsLines, hosts).toContainEqual(['192.0.2.11', 'cache.example']);
    const nameservers = resolv.split('\n').filter((l) => l.startsWith('nameserver')).map((l) => l.split(/\s+/)[1]);
    expect(nameservers, resolv).toEqual(['192.0.2.53', '192.0.2.54']);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });

  it('without --dns, /etc/resolv.conf has the host\'s resolvers minus loopback ones', async () => {
    const t = setup();
    const res = husk(t, ['image', 'run', ...netFlags(t), '--rm', t.image, '/bin/busybox', 'cat', '/etc/resolv.conf']);
    expectStatus(res, 0);
    const host = fs
      .readFileSync('/etc/resolv.conf', 'utf8')
      .split('\n')
      .filter((l) => /^nameserver\s/.test(l))
      .map((l) => l.split(/\s+/)[1])
      .filter((a) => !/^127\./.test(a) && a !== '::1');
    const seen = res.stdout.split('\n').filter((l) => /^nameserver\s/.test(l)).map((l) => l.split(/\s+/)[1]);
    expect(seen.filter((a) => /^127\./.test(a) || a === '::1'), res.stdout).toEqual([]);
    // (Where the host has only loopback resolvers, what husk puts instead is its choice.)
    if (host.length) expect(seen).toEqual(host);
    await expectNoLeftovers(t);
  });

  it('two containers on one network reach each other by address', async () => {
    const t = setup();
    const server = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t), '-d', '--name', server, t.image, ...httpd()]), 0);
    await waitForStatus(server, 'running', { runtime: t.husk });
    const address = containerAddress(t, server);
    await expectPage(t, address, 80);
    const client = husk(t, [
      'image', 'run', ...netFlags(t), '--rm', t.image,
      '/bin/sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 ${address} 80`,
    ]);
    expectStatus(client, 0);
    expect(client.stdout).toContain(PAGE);

    // And the other way: a second server, reached from the first container.
    const second = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t), '-d', '--name', second, t.image, ...httpd(8000)]), 0);
    await waitForStatus(second, 'running', { runtime: t.husk });
    const secondAddress = containerAddress(t, second);
    expect(secondAddress).not.toBe(address);
    await expectPage(t, secondAddress, 8000);
    const back = husk(t, ['exec', server, '/bin/sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 3 ${secondAddress} 8000`]);
    expectStatus(back, 0);
    expect(back.stdout).toContain(PAGE);

    expectStatus(husk(t, ['delete', '--force', server]), 0);
    expectStatus(husk(t, ['delete', '--force', second]), 0);
    await expectNoLeftovers(t);
  });

  it('refuses a host port another container publishes: one line, exit 1, the first keeps working, nothing of the second left', async () => {
    const t = setup();
    const port = hostPort(t);
    const first = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t), '-d', '--name', first, '-p', `${port}:80`, t.image, ...httpd()]), 0);
    await waitForStatus(first, 'running', { runtime: t.husk });
    await expectPage(t, '127.0.0.1', port);
    const before = {
      links: t.netns.links().sort(),
      rules: containerRules(t).sort(),
      leases: [...t.leaseDirs].flatMap((d) => leaseFiles(d)).sort(),
      records: records(t).map((r) => r.file).sort(),
      pins: pins().sort(),
      bundles: fs.readdirSync(path.join(t.store, 'containers')).sort(),
      state: stateEntries(stateRoot(t.husk)).sort(),
    };
    for (const spec of [`${port}:80`, `${port}:8080/tcp`, `0.0.0.0:${port}:80`]) {
      const second = newId('net');
      const res = husk(t, ['image', 'run', ...netFlags(t), '--rm', '--name', second, '-p', spec, t.image, ...httpd()]);
      expectRefused(res, new RegExp(`\\b${port}\\b`));
      const after = {
        links: t.netns.links().sort(),
        rules: containerRules(t).sort(),
        leases: [...t.leaseDirs].flatMap((d) => leaseFiles(d)).sort(),
        records: records(t).map((r) => r.file).sort(),
        pins: pins().sort(),
        bundles: fs.readdirSync(path.join(t.store, 'containers')).sort(),
        state: stateEntries(stateRoot(t.husk)).sort(),
      };
      expect(after, `after -p ${spec}`).toEqual(before);
      await expectPage(t, '127.0.0.1', port);
    }
    // The host port is the host namespace's, whichever network asks for it.
    const { name } = writeBridgeNetwork(t);
    const other = husk(t, ['image', 'run', ...netFlags(t, name), '--rm', '-p', `${port}:80`, t.image, ...httpd()]);
    expectRefused(other, new RegExp(`\\b${port}\\b`));
    // The same port number for the other protocol is free.
    expectStatus(husk(t, ['image', 'run', ...netFlags(t), '--rm', '-p', `${port}:80/udp`, t.image, '/bin/busybox', 'true']), 0);
    await expectPage(t, '127.0.0.1', port);
    expectStatus(husk(t, ['delete', '--force', first]), 0);
    await expectNoLeftovers(t);
  });

  it('refuses a host port in use in the host namespace (a listener of the test): one line, exit 1, nothing left', async () => {
    const t = setup();
    const port = hostPort(t);
    const listener = spawnTool('nsenter', [`--net=${t.netns.path}`, '--', BUSYBOX!, 'nc', '-l', '-p', String(port)], { stdin: 'pipe' });
    await waitFor(`a listener on ${port} in the test's namespace`, () => {
      const ss = t.netns.run(['ss', '-Hltn', `sport = :${port}`]);
      return ss.stdout.includes(`:${port}`);
    });
    for (const spec of [`${port}:80`, `127.0.0.1:${port}:80`]) {
      const res = husk(t, ['image', 'run', ...netFlags(t), '--rm', '-p', spec, t.image, ...httpd()]);
      expectRefused(res, new RegExp(`\\b${port}\\b`));
      await expectNoLeftovers(t, `after -p ${spec}`);
    }
    listener.child.kill('SIGKILL');
    await listener.exited;
    await expectNothingLeft();
  });

  it('50 runs of --rm --net bridge leave no veth, lease, rule, pin or record', async () => {
    const t = setup();
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      const res = husk(t, ['image', 'run', ...netFlags(t), '--rm', t.image, '/bin/busybox', 'true']);
      expectStatus(res, 0);
      if (i === 0) defaultNetwork(t);
      // spawnSync blocks this worker's event loop: vitest's own messages get through between
      // runs (it gives up on a worker whose messages wait 60 s: "Timeout calling onTaskUpdate").
      await sleep(1);
    }
    const seconds = (Date.now() - started) / 1000;
    console.log(`network.test: 50 runs of image run --rm --net bridge took ${seconds.toFixed(1)} s`);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  }, 300_000);
});

describe.skipIf(isRunc || !BUSYBOX)('husk image run --net: bad input is one line, exit 1, and leaves nothing', () => {
  it('a malformed -p', async () => {
    const t = setup();
    for (const spec of ['eighty:80', '8080', '8080:', ':80', '70000:80', '8080:0', '8080:80/sctp', '300.1.1.1:8080:80', '1.2.3.4:5:6:7', '8080:80/tcp/udp', '']) {
      const res = husk(t, ['image', 'run', ...netFlags(t), '--rm', '-p', spec, t.image, '/bin/busybox', 'true']);
      expectRefused(res, /-p|port|publish/i);
      await expectNoLeftovers(t, `after -p '${spec}'`);
    }
    await expectNothingLeft();
  });

  it('an unknown network', async () => {
    const t = setup();
    const name = uniqueName('none');
    const res = husk(t, ['image', 'run', ...netFlags(t, name), '--rm', t.image, '/bin/busybox', 'true']);
    expectRefused(res, new RegExp(name));
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });

  it('a conflist that does not parse', async () => {
    const t = setup();
    const name = uniqueName('broken');
    fs.writeFileSync(path.join(t.cniDir, `${name}.conflist`), `{"cniVersion": "1.0.0", "name": "${name}", "plugins": [{"type": "bridge",`);
    const res = husk(t, ['image', 'run', ...netFlags(t, name), '--rm', t.image, '/bin/busybox', 'true']);
    expectRefused(res, new RegExp(`${name}\\.conflist`));
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });

  it('a plugin that does not exist', async () => {
    const t = setup();
    const name = uniqueName('missing');
    writeConflist(t, name, [{ type: 'husk-no-such-plugin', ipam: ipam(t, subnet().subnet) }]);
    const res = husk(t, ['image', 'run', ...netFlags(t, name), '--rm', t.image, '/bin/busybox', 'true']);
    expectRefused(res, /husk-no-such-plugin/);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });

  it('a plugin that fails: bridge with an invalid subnet, its own message shown, no veth left', async () => {
    const t = setup();
    const name = uniqueName('badnet');
    writeConflist(t, name, [{ type: 'bridge', bridge: `br-${name.slice(-6)}`, isGateway: true, ipam: ipam(t, '10.999.0.0/16') }]);
    const res = husk(t, ['image', 'run', ...netFlags(t, name), '--rm', t.image, '/bin/busybox', 'true']);
    // host-local's own words.
    expectRefused(res, /invalid CIDR address: 10\.999\.0\.0\/16/);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });

  it('a plugin that fails after bridge succeeded: its message shown, the bridge\'s veth and lease undone', async () => {
    const t = setup();
    const log = path.join(tempDir('pluginlog-'), 'calls');
    const plugins = pluginDir(t, {
      'husk-fake-refuse': fakePlugin(
        `echo "ADD $CNI_CONTAINERID" >> ${log}; echo '{"cniVersion":"1.0.0","code":11,"msg":"fake plugin refuses","details":"by design of the test"}'; exit 1`,
        `echo "DEL $CNI_CONTAINERID" >> ${log}; exit 0`,
      ),
    });
    const { name } = writeBridgeNetwork(t, [{ type: 'husk-fake-refuse' }]);
    const res = husk(t, [
      'image', 'run', ...netFlags(t, name), '--cni-plugin-dir', plugins, '--cni-plugin-dir', '/usr/lib/cni', '--rm', t.image, '/bin/busybox', 'true',
    ]);
    expectRefused(res, /fake plugin refuses/);
    await expectNoLeftovers(t);
    // The runtime undid the ADD: the failing plugin saw a DEL for the same attachment.
    const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(calls[0]).toMatch(/^ADD [0-9a-f]{32}$/);
    expect(calls).toContain(`DEL ${calls[0].slice(4)}`);
    await expectNothingLeft();
  });
});

describe.skipIf(isRunc || !BUSYBOX)('husk image run --net NAME with a conflist of the user', () => {
  it('a bridge conflist by its name: an address in its subnet, the published port answers', async () => {
    const t = setup();
    const { name, prefix } = writeBridgeNetwork(t);
    const port = hostPort(t);
    const id = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t, name), '-d', '--name', id, '-p', `127.0.0.1:${port}:80`, t.image, ...httpd()]), 0);
    await waitForStatus(id, 'running', { runtime: t.husk });
    expect(containerAddress(t, id).startsWith(prefix)).toBe(true);
    await expectPage(t, '127.0.0.1', port);
    expectStatus(husk(t, ['delete', '--force', id]), 0);
    await expectNoLeftovers(t);
  });

  /** A parent for macvlan/ipvlan inside the test's namespace: a dummy, or a veth where the kernel has no dummy. */
  function parentLink(t: NetTest): string {
    try {
      t.netns.addDummy('parent0');
      return 'parent0';
    } catch {
      // This kernel may lack CONFIG_DUMMY: a veth pair inside the namespace is a parent as good.
      const add = spawnSync('ip', ['-n', t.netns.name, 'link', 'add', 'parent0', 'type', 'veth', 'peer', 'name', 'parent0p'], { encoding: 'utf8' });
      if (add.status !== 0) throw new Error(`ip link add parent0 type veth: ${add.stderr}`);
      for (const l of ['parent0', 'parent0p']) spawnSync('ip', ['-n', t.netns.name, 'link', 'set', l, 'up']);
      return 'parent0';
    }
  }

  /** Whether the kernel makes ipvlan links (CONFIG_IPVLAN). */
  function kernelHasIpvlan(t: NetTest, parent: string): boolean {
    const r = spawnSync('ip', ['-n', t.netns.name, 'link', 'add', 'ipvtest0', 'link', parent, 'type', 'ipvlan'], { encoding: 'utf8' });
    if (r.status === 0) spawnSync('ip', ['-n', t.netns.name, 'link', 'del', 'ipvtest0']);
    return r.status === 0;
  }

  for (const driver of ['macvlan', 'ipvlan'] as const) {
    it(`a ${driver} conflist whose master is in the test's namespace: an address in its subnet`, async () => {
      const t = setup();
      const parent = parentLink(t);
      const name = uniqueName(driver.slice(0, 3));
      const { subnet: cidr, prefix } = subnet();
      writeConflist(t, name, [{ type: driver, master: parent, ...(driver === 'macvlan' ? { mode: 'bridge' } : { mode: 'l2' }), ipam: ipam(t, cidr) }]);
      const res = husk(t, ['image', 'run', ...netFlags(t, name), '--rm', t.image]);
      if (driver === 'ipvlan' && !kernelHasIpvlan(t, parent)) {
        // This kernel has no ipvlan: then the plugin's own failure is the answer, and nothing is left.
        expectRefused(res, /ipvlan.*(not supported|Unknown device)/i);
        await expectNoLeftovers(t);
        await expectNothingLeft();
        return;
      }
      expectStatus(res, 0);
      const report = parseReport(res.stdout);
      const eth0 = report.interfaces.find((i) => i.name === 'eth0');
      expect(eth0, res.stdout).toBeDefined();
      expect(eth0!.addresses.some((a) => a.startsWith(prefix)), `eth0: ${eth0!.addresses}`).toBe(true);
      await expectNoLeftovers(t);
      await expectNothingLeft();
    });
  }
});

describe.skipIf(isRunc || !BUSYBOX)('husk image run --net: what a killed container or a killed husk leaves is cleaned', () => {
  for (const prune of [['image', 'prune'], ['network', 'prune']]) {
    it(`a container whose init is SIGKILLed: \`husk ${prune.join(' ')}\` releases its network`, async () => {
      const t = setup();
      const port = hostPort(t);
      const id = newId('net');
      expectStatus(husk(t, ['image', 'run', ...netFlags(t), '-d', '--name', id, '-p', `${port}:80`, t.image, ...httpd()]), 0);
      const { pid } = await waitForStatus(id, 'running', { runtime: t.husk });
      await expectPage(t, '127.0.0.1', port);
      defaultNetwork(t);
      expect(records(t)).toHaveLength(1);
      process.kill(pid, 'SIGKILL');
      await waitForStatus(id, 'stopped', { runtime: t.husk });
      expectStatus(husk(t, [...prune, ...(prune[0] === 'image' ? ['--store', t.store] : [])]), 0);
      // The network is gone before the container is deleted: prune did it.
      const left = leftovers(t, false);
      expect(left).toEqual([]);
      expectStatus(husk(t, ['delete', id]), 0);
      await expectNoLeftovers(t);
      await expectNothingLeft();
    });
  }

  it('a container whose init is SIGKILLed: the next `husk image run --net` releases its network', async () => {
    const t = setup();
    const port = hostPort(t);
    const id = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t), '-d', '--name', id, '-p', `${port}:80`, t.image, ...httpd()]), 0);
    const { pid } = await waitForStatus(id, 'running', { runtime: t.husk });
    defaultNetwork(t);
    const killed = records(t);
    expect(killed).toHaveLength(1);
    process.kill(pid, 'SIGKILL');
    await waitForStatus(id, 'stopped', { runtime: t.husk });
    // The same host port is free again for the next container.
    const next = husk(t, ['image', 'run', ...netFlags(t), '--rm', '-p', `${port}:80`, t.image, '/bin/busybox', 'true']);
    expectStatus(next, 0);
    expect(fs.existsSync(killed[0].file)).toBe(false);
    expect(pins()).not.toContain(`husk-${killed[0].attachId}`);
    const left = leftovers(t, false);
    expect(left).toEqual([]);
    expectStatus(husk(t, ['delete', id]), 0);
    await expectNoLeftovers(t);
  });

  it('a foreground `husk image run --rm --net` SIGKILLed while its container serves: once the container is gone, prune cleans everything', async () => {
    const t = setup();
    const port = hostPort(t);
    const run = rtSpawn(['image', 'run', ...netFlags(t), '--rm', '-p', `${port}:80`, t.image, ...httpd()], { runtime: t.husk });
    await expectPage(t, '127.0.0.1', port);
    defaultNetwork(t);
    run.child.kill('SIGKILL');
    await run.exited;
    // The user finds the container and kills it (or it died with husk).
    await sleep(500);
    await killThenPrune(t);
  });

  it('a husk SIGKILLed in the middle of attaching (a plugin still running): prune cleans everything', async () => {
    const t = setup();
    const marker = path.join(tempDir('marker-'), 'started');
    // ADD: says it started, then waits for the test to kill husk (its caller) or 15 s, then fails.
    const plugins = pluginDir(t, {
      'husk-fake-slow': fakePlugin(
        `touch ${marker}; i=0; while [ $i -lt 150 ] && kill -0 $PPID 2>/dev/null; do sleep 0.1; i=$((i+1)); done; echo '{"cniVersion":"1.0.0","code":11,"msg":"slow plugin gave up"}'; exit 1`,
      ),
    });
    const { name } = writeBridgeNetwork(t, [{ type: 'husk-fake-slow' }]);
    const run = rtSpawn(['image', 'run', ...netFlags(t, name), '--cni-plugin-dir', plugins, '--cni-plugin-dir', '/usr/lib/cni', '--rm', t.image, '/bin/busybox', 'true'], {
      runtime: t.husk,
    });
    await waitFor('the slow plugin to start its ADD', () => fs.existsSync(marker), 30_000);
    // Attached half-way: the bridge plugin's veth is there.
    expect(t.netns.links().some((l) => l.startsWith('veth'))).toBe(true);
    run.child.kill('SIGKILL');
    await run.exited;
    // Whatever still runs of it (the slow plugin, the container's init) ends within 20 s.
    await waitFor(
      'the slow plugin to end',
      () => !spawnSync('pgrep', ['-f', plugins], { encoding: 'utf8' }).stdout.trim(),
      20_000,
    );
    await killThenPrune(t);
  });
});

describe.skipIf(isRunc || !BUSYBOX)('husk image bundle --net', () => {
  it('a bundle made with --net bridge -p runs with plain `husk run -d` (reachable), and `husk delete` tears the network down', async () => {
    const t = setup();
    const port = hostPort(t);
    const bundle = bundlePath(t);
    expectStatus(
      husk(t, ['image', 'bundle', ...netFlags(t), '-p', `${port}:80`, '--hostname', 'bundled', '--add-host', 'db.example:192.0.2.10', t.image, bundle, ...httpd()]),
      0,
    );
    // The network is set up by the bundle's own hooks, so nothing is attached yet.
    expect(t.netns.links().filter((l) => l.startsWith('veth'))).toEqual([]);
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    expect(config.hooks?.createRuntime?.length, JSON.stringify(config.hooks)).toBeGreaterThan(0);
    expect(config.hooks?.poststop?.length, JSON.stringify(config.hooks)).toBeGreaterThan(0);

    const id = newId('net');
    expectStatus(husk(t, ['run', '-d', '--bundle', bundle, id]), 0);
    await waitForStatus(id, 'running', { runtime: t.husk });
    await expectPage(t, '127.0.0.1', port);
    const address = containerAddress(t, id);
    const hosts = expectStatus(husk(t, ['exec', id, '/bin/busybox', 'cat', '/etc/hosts']), 0).stdout;
    expect(hosts).toMatch(new RegExp(`^${address.replace(/\./g, '\\.')}\\tbundled(\\s|$)`, 'm'));
    expect(hosts).toMatch(/^192\.0\.2\.10\s+db\.example$/m);
    expect(records(t)).toHaveLength(1);

    expectStatus(husk(t, ['kill', id, 'KILL']), 0);
    await waitForStatus(id, 'stopped', { runtime: t.husk });
    expectStatus(husk(t, ['delete', id]), 0);
    defaultNetwork(t);
    expect(httpGet(t, '127.0.0.1', port)).toBeUndefined();

    // Run again from the same bundle: it attaches afresh (the hooks are the bundle's).
    const again = newId('net');
    expectStatus(husk(t, ['run', '-d', '--bundle', bundle, again]), 0);
    await waitForStatus(again, 'running', { runtime: t.husk });
    await expectPage(t, '127.0.0.1', port);
    expectStatus(husk(t, ['delete', '--force', again]), 0);

    expectStatus(husk(t, ['image', 'unbundle', '--store', t.store, bundle]), 0);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });
});


describe.skipIf(isRunc || !BUSYBOX)('husk network', () => {
  it('create, ls, inspect a network of the user\'s own; a container on it; rm refused while it is attached', async () => {
    const t = setup();
    const name = uniqueName('cli');
    const { subnet: cidr, prefix } = subnet();
    const dir = ['--cni-config-dir', t.cniDir];
    expectStatus(husk(t, ['network', 'create', name, '--subnet', cidr, ...dir]), 0);
    const ls = expectStatus(husk(t, ['network', 'ls', ...dir]), 0).stdout;
    const line = ls.split('\n').find((l) => l.split(/\s+/)[0] === name);
    expect(line, ls).toBeDefined();
    expect(line!.split(/\s+/).slice(1, 3)).toEqual(['bridge', cidr]);
    const inspect = JSON.parse(expectStatus(husk(t, ['network', 'inspect', name, ...dir]), 0).stdout);
    expect(inspect).toHaveLength(1);
    expect(inspect[0].name).toBe(name);

    const id = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t, name), '-d', '--name', id, t.image, ...httpd()]), 0);
    await waitForStatus(id, 'running', { runtime: t.husk });
    const address = containerAddress(t, id);
    expect(address.startsWith(prefix), address).toBe(true);
    await expectPage(t, address, 80);

    expectRefused(husk(t, ['network', 'rm', name, ...dir]), new RegExp(name));
    expect(expectStatus(husk(t, ['network', 'ls', ...dir]), 0).stdout).toContain(name);
    expectStatus(husk(t, ['delete', '--force', id]), 0);
    expectStatus(husk(t, ['network', 'rm', name, ...dir]), 0);
    expect(expectStatus(husk(t, ['network', 'ls', ...dir]), 0).stdout).not.toContain(name);
    // host-local's lease directory goes with the network, once it holds no lease.
    expect(fs.existsSync(path.join(DEFAULT_LEASES, name))).toBe(false);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });

  it('check: CNI CHECK says ok while the attachment is whole, and names what is missing once it is not', async () => {
    const t = setup();
    const name = uniqueName('chk');
    const { subnet: cidr, prefix } = subnet();
    // No portmap: its CHECK fails on a network without IPv6 (Debian's 1.1.1).
    writeConflist(t, name, [
      { type: 'bridge', bridge: `br-${name.slice(-6)}`, isGateway: true, ipMasq: true, ipam: ipam(t, cidr) },
      { type: 'firewall' },
      { type: 'tuning' },
    ]);
    const id = newId('net');
    expectStatus(husk(t, ['image', 'run', ...netFlags(t, name), '-d', '--name', id, t.image, ...httpd()]), 0);
    await waitForStatus(id, 'running', { runtime: t.husk });
    const address = containerAddress(t, id);
    expect(address.startsWith(prefix), address).toBe(true);
    expect(expectStatus(husk(t, ['network', 'check', id]), 0).stdout).toBe(`${name}: ok (${address})\n`);

    // Take the address away behind the plugins' back, in the container's pinned namespace.
    const ours = records(t);
    expect(ours).toHaveLength(1);
    const flushed = spawnSync('nsenter', [`--net=/run/netns/husk-${ours[0].attachId}`, 'ip', 'addr', 'flush', 'dev', 'eth0'], { encoding: 'utf8' });
    expect(flushed.status, flushed.stderr).toBe(0);
    expectRefused(husk(t, ['network', 'check', id]), new RegExp(`network "${name}": plugin "bridge" \\(CHECK\\): .*${address.replace(/\./g, '\\.')}`));
    expectRefused(husk(t, ['network', 'check', 'no-such-container']), /attached to no network/);

    // Put it back: bridge's DEL finds its masquerade rules by the addresses eth0 has.
    const prefixLength = cidr.split('/')[1];
    const restored = spawnSync('nsenter', [`--net=/run/netns/husk-${ours[0].attachId}`, 'ip', 'addr', 'add', `${address}/${prefixLength}`, 'dev', 'eth0'], { encoding: 'utf8' });
    expect(restored.status, restored.stderr).toBe(0);
    expect(expectStatus(husk(t, ['network', 'check', id]), 0).stdout).toBe(`${name}: ok (${address})\n`);

    expectStatus(husk(t, ['delete', '--force', id]), 0);
    await expectNoLeftovers(t);
    await expectNothingLeft();
  });
});
