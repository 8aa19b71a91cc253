#!/usr/bin/env node
// npm run bench (part "network"): what a CNI bridge network costs a container, with husk and
// with Podman's CNI backend on the same conflist and the same plugins (/usr/lib/cni), in one run.
//  - husk: `husk image run --rm --net bridge IMAGE true` against `--net none`: the cost of the
//    network (ADD before the process, DEL after it) in ms and as a ratio.
//  - Podman 4.3 (network_backend = "cni", runtime runc): `podman run --rm --network husk IMAGE
//    true` against `--network none`; the ADD+DEL cost is (network) - (none) for each, and husk's
//    against Podman's is a ratio.
// Everything runs inside a network namespace of the bench's own (ip netns add; every call
// through `nsenter --net`): the bridge, the veths and the NAT rules are made there, no packet
// leaves it, and the namespace is removed at the end. The network is husk's default bridge
// network ("husk": bridge husk0, 10.73.0.0/16, host-local, portmap, firewall, tuning) as husk
// writes it, in a CNI config directory of the bench's own, with host-local's leases in the
// bench's directory too; Podman reads the same file (--network-config-dir). The four commands
// run interleaved (round i of each, then round i+1), after one untimed run of each; medians.
// husk is bin/husk (the front door, its warm server started by the first call, inside the
// namespace), with a --root and an image store of the bench's own.
//
// Environment: BENCH_NETWORK_ROUNDS (default min(BENCH_ROUNDS, 10)). Needs root, a built husk,
// Debian's podman, conmon, runc, containernetworking-plugins, iptables, busybox-static.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');
const { releaseDirectory, restorePaths } = require('./engineSetup');

const REPO = path.resolve(process.env.HUSK_BENCH_REPO || lib.REPO);
const HUSK = path.join(REPO, 'bin', 'husk');
const ROUNDS = Math.max(1, Number(process.env.BENCH_NETWORK_ROUNDS || Math.min(lib.ROUNDS, 10)));
const IMAGE = 'localhost/husk-bench-net:latest';
const PLUGINS = '/usr/lib/cni';
/** husk's default network (docs: net-design.md): `--net bridge` is the network of this name. */
const NETWORK = 'husk';

// What the engines create outside their configured directories whatever their configuration:
// removed afterwards when they did not exist before, and only when empty (directories) or
// listed (files). /var/lib/cni/results is libcni's cache (Podman's), /var/lib/cni/husk husk's
// attach records.
const SYSTEM_PATHS = [
  '/var/lib/cni/networks/husk/lock', '/var/lib/cni/networks/husk/last_reserved_ip.0', '/var/lib/cni/networks/husk',
  '/run/containers/networks', '/run/containers', '/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/var/lib/containers/cache',
  '/var/lib/containers', '/run/libpod', '/dev/shm/libpod_lock', '/var/lib/cni/results', '/var/lib/cni/husk', '/var/lib/cni/networks', '/var/lib/cni',
];




/**
 * husk's default network as husk writes it on first use, with host-local's leases moved into
 * the bench's directory (else they would share /var/lib/cni/networks/husk with this machine's
 * own husk containers). husk writes it into the config directory on the first use of
 * `bridge`: `husk network ls` when that writes it, else one `--net bridge` run (whose one lease
 * is in host-local's default directory, removed at the end when the bench made it).
 */
function writeNetwork(configDir, leaseDir, husk, firstRun) {
  const file = path.join(configDir, `${NETWORK}.conflist`);
  lib.sh([...husk, 'network', 'ls', '--cni-config-dir', configDir], { mayFail: true });
  if (!fs.existsSync(file)) lib.sh(firstRun);
  if (!fs.existsSync(file)) throw new Error(`husk did not write its default network into ${configDir} (on \`network ls\` nor on \`image run --net bridge\`)`);
  const list = JSON.parse(fs.readFileSync(file, 'utf8'));
  const bridge = (list.plugins || []).find((p) => p.type === 'bridge');
  if (!bridge || !bridge.ipam || bridge.ipam.type !== 'host-local') throw new Error(`${file}: no bridge plugin with host-local IPAM`);
  bridge.ipam.dataDir = leaseDir;
  fs.writeFileSync(file, JSON.stringify(list, null, 2));
  return list;
}

/** husk's default network as net-design.md describes it, for Podman when husk cannot write it. */
function designNetwork(leaseDir) {
  return {
    cniVersion: '1.0.0',
    name: NETWORK,
    plugins: [
      {
        type: 'bridge', bridge: 'husk0', isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: 'host-local', dataDir: leaseDir, routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: '10.73.0.0/16', gateway: '10.73.0.1' }]] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'firewall' },
      { type: 'tuning' },
    ],
  };
}

function timed(argv, env) {
  return lib.timedRun(argv, { ...process.env, ...env });
}

function links(netns) {
  return lib.sh(['ip', '-n', netns, '-o', 'link', 'show']).stdout.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim().split('@')[0]);
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  // husk's default path (the front door and its warm server), whatever the caller's environment.
  delete process.env.HUSK_SERVER;
  delete process.env.HUSK_FRONT_DOOR_FD;
  for (const p of ['podman', 'conmon', 'runc', 'nsenter', 'ip', 'iptables-save']) lib.need(p);
  if (!fs.existsSync(path.join(PLUGINS, 'bridge'))) throw new Error(`${PLUGINS}/bridge is missing (apt-get install containernetworking-plugins)`);
  const runc = lib.need('runc');
  const podman = lib.need('podman');
  const ws = fs.mkdtempSync('/tmp/husk-bench-network-');
  fs.chmodSync(ws, 0o755);
  const existed = new Map(SYSTEM_PATHS.map((p) => [p, fs.existsSync(p)]));
  const pinsBefore = new Set(fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []);
  const netns = `husk-bench-net-${crypto.randomBytes(4).toString('hex')}`;
  const mk = (d) => {
    fs.mkdirSync(path.join(ws, d), { recursive: true });
    return path.join(ws, d);
  };
  const inNetns = (argv) => ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv];
  const cleanups = [];
  const problems = [];
  console.log(`\nnetwork: \`run --rm IMAGE true\` on a CNI bridge network (bridge, host-local, portmap, firewall, tuning: husk's default "${NETWORK}" network) against no network, husk and Podman 4.3 (CNI backend, runc), inside a network namespace of the bench's own (${ROUNDS} rounds, interleaved, median ms from the call to its exit; one untimed run of each first)`);
  try {
    lib.sh(['ip', 'netns', 'add', netns]);
    lib.sh(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    const tarball = lib.busyboxImage(mk('image'), IMAGE, 'bench/network.js');
    const configDir = mk('cni');
    const leaseDir = mk('cni-leases');
    const store = mk('husk-store');
    const huskRoot = mk('husk-state');
    const husk = inNetns([HUSK, '--root', huskRoot]);
    const huskEnv = {};
    lib.sh([HUSK, 'image', 'pull', '--quiet', '--store', store, `docker-archive:${tarball}`]);
    cleanups.push(() => lib.stopServer(huskRoot));
    const huskRun = [...husk, 'image', 'run', '--rm', '--quiet', '--store', store, '--cni-config-dir', configDir, '--cni-plugin-dir', PLUGINS];
    // A husk that cannot make its bridge network is named with its reason, and Podman is still
    // measured on the network as the design describes it (designNetwork).
    let huskProblem;
    let network;
    try {
      network = writeNetwork(configDir, leaseDir, husk, [...huskRun, '--net', 'bridge', IMAGE, 'true']);
    } catch (err) {
      huskProblem = err.message.split('\n')[0];
      network = designNetwork(leaseDir);
      fs.writeFileSync(path.join(configDir, `${NETWORK}.conflist`), JSON.stringify(network, null, 2));
    }

    // runc's --root through a wrapper: Podman 4.3 passes --runtime-flag to create and start but
    // not to its `delete --force`, which would leave each container's state and cgroups behind.
    const runcWrapper = path.join(mk('runtimes'), 'runc');
    fs.writeFileSync(runcWrapper, `#!/bin/sh\nexec ${runc} --root ${mk('podman-runc-state')} "$@"\n`, { mode: 0o755 });
    const conf = path.join(ws, 'containers.conf');
    fs.writeFileSync(conf, [
      '[containers]',
      // Podman's default RLIMIT_NOFILE (1048576) is above this VM's hard limit.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[network]', 'network_backend = "cni"', `cni_plugin_dirs = [${JSON.stringify(PLUGINS)}]`,
      '[engine]', 'lock_type = "file"', `[engine.runtimes]`, `runc = [${JSON.stringify(runcWrapper)}]`, '',
    ].join('\n'));
    const storage = path.join(ws, 'storage.conf');
    fs.writeFileSync(storage, `[storage]\ndriver = "overlay"\nrunroot = ${JSON.stringify(mk('podman-runroot'))}\ngraphroot = ${JSON.stringify(mk('podman-root'))}\n`);
    const podmanEnv = { CONTAINERS_CONF: conf, CONTAINERS_STORAGE_CONF: storage };
    const base = inNetns([podman, '--root', mk('podman-root'), '--runroot', mk('podman-runroot'), '--tmpdir', mk('podman-tmp'), '--network-config-dir', configDir,
      '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'overlay']);
    const podmanRun = [...base, '--runtime', 'runc', 'run', '--rm'];
    cleanups.push(() => {
      lib.sh([...base, 'rm', '--all', '--force', '--time', '0'], { env: podmanEnv, mayFail: true });
      lib.sh([...base, 'rmi', '--all', '--force'], { env: podmanEnv, mayFail: true });
      lib.sh([...base, 'system', 'reset', '--force'], { env: podmanEnv, mayFail: true });
    });
    lib.sh([...base, 'load', '--input', tarball], { env: podmanEnv });
    const backend = lib.sh([...base, 'info', '--format', '{{.Host.NetworkBackend}}'], { env: podmanEnv }).stdout.trim();
    if (backend !== 'cni') throw new Error(`Podman uses the network backend "${backend}", not cni, whatever containers.conf says`);

    const commands = [
      ...(huskProblem ? [] : [
        { key: 'husk none', argv: [...huskRun, '--net', 'none', IMAGE, 'true'], env: huskEnv },
        { key: 'husk bridge', argv: [...huskRun, '--net', 'bridge', IMAGE, 'true'], env: huskEnv },
      ]),
      { key: 'podman none', argv: [...podmanRun, '--network', 'none', IMAGE, 'true'], env: podmanEnv },
      { key: 'podman bridge', argv: [...podmanRun, '--network', NETWORK, IMAGE, 'true'], env: podmanEnv },
    ];
    // One untimed run of each (husk's first call starts its warm server, in the namespace).
    for (const c of commands) lib.sh(c.argv, { env: c.env });
    const samples = new Map(commands.map((c) => [c.key, []]));
    for (let i = 0; i < ROUNDS; i++) for (const c of commands) samples.get(c.key).push(timed(c.argv, c.env));
    const m = (key) => (samples.has(key) ? lib.median(samples.get(key)) : undefined);
    const ms = (v) => (v === undefined ? '-' : `${v.toFixed(1)} ms`);
    const times = (a, b) => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}x`);
    const range = (key) => (samples.has(key) ? `${Math.min(...samples.get(key)).toFixed(0)}..${Math.max(...samples.get(key)).toFixed(0)}` : '-');

    const huskCost = huskProblem ? undefined : m('husk bridge') - m('husk none');
    const podmanCost = m('podman bridge') - m('podman none');
    const rows = [
      ['', '--net none', `--net bridge (${NETWORK})`, 'network cost (ADD+DEL)', 'bridge / none'],
      ['husk image run --rm', ms(m('husk none')), ms(m('husk bridge')), ms(huskCost), times(m('husk bridge'), m('husk none'))],
      ['podman run --rm (CNI, runc)', ms(m('podman none')), ms(m('podman bridge')), ms(podmanCost), times(m('podman bridge'), m('podman none'))],
      ['  min..max husk', range('husk none'), range('husk bridge'), '', ''],
      ['  min..max podman', range('podman none'), range('podman bridge'), '', ''],
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(`  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ')}`.trimEnd());
    const ratio = huskCost !== undefined && podmanCost > 0 ? huskCost / podmanCost : undefined;
    console.log(`  ADD+DEL, husk / Podman: ${ms(huskCost)} / ${ms(podmanCost)} = ${ratio === undefined ? '-' : `${ratio.toFixed(2)}x`}`);
    if (huskProblem) {
      console.log(`  husk not measured: ${huskProblem}`);
      process.exitCode = 1;
    }
    console.log(`  (the network: ${network.plugins.map((p) => p.type).join(', ')}; subnet ${(((network.plugins[0].ipam || {}).ranges || [[{}]])[0][0] || {}).subnet || '?'}${huskProblem ? '; as net-design.md describes husk\'s default, not written by husk' : '; as husk wrote it'})`);

    if (!huskProblem) {
      lib.record({ figure: 'image run --net bridge - --net none (ADD+DEL)', path: 'default (door, server)', husk: huskCost, unit: 'ms', rounds: ROUNDS, target: '-', met: undefined });
      lib.record({ figure: `ADD+DEL, husk / Podman CNI (${podmanCost.toFixed(0)} ms): ${ratio === undefined ? '-' : `${ratio.toFixed(2)}x`}`, path: 'default (door, server)', husk: huskCost, unit: 'ms', rounds: ROUNDS, target: '-', met: undefined });
    }

    // Nothing of the containers' networks may be left in the namespace.
    const leftLinks = links(netns).filter((l) => l !== 'lo' && !network.plugins.some((p) => p.type === 'bridge' && p.bridge === l));
    if (leftLinks.length) problems.push(`links left in the namespace: ${leftLinks.join(', ')}`);
    const leases = fs.existsSync(path.join(leaseDir, NETWORK)) ? fs.readdirSync(path.join(leaseDir, NETWORK)).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')) : [];
    if (leases.length) problems.push(`host-local leases left: ${leases.join(', ')}`);
    const rules = lib.sh(inNetns(['iptables-save'])).stdout.split('\n').filter((l) => /^-A .*(id: |CNI-[0-9a-f]{20,}|CNI-DN-)/.test(l));
    if (rules.length) problems.push(`firewall rules of containers left: ${rules.length}, e.g. ${rules[0]}`);
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch (err) {
        problems.push(`cleanup: ${err.message}`);
      }
    }
    const pins = (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []).filter((p) => !pinsBefore.has(p) && p !== netns);
    if (pins.length) problems.push(`network namespace pins left in /run/netns: ${pins.join(', ')}`);
    if (fs.existsSync(`/run/netns/${netns}`)) lib.sh(['ip', 'netns', 'delete', netns], { mayFail: true });
    // Processes tied to the workspace (conmon, containers, husk's server), its mounts, itself.
    problems.push(...releaseDirectory(ws));
    restorePaths(existed);
    console.log(problems.length ? `  network: left behind (removed where possible): ${problems.join('; ')}` : '  network: nothing left (links, leases, rules, netns pins, processes, mounts)');
  }
}

main().catch((err) => {
  process.stderr.write(`bench: network: ${err.stack || err.message}\n`);
  process.exit(1);
});
