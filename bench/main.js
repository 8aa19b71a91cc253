#!/usr/bin/env node
// npm run bench: the runtime figures (run.js), the engines (engines.js), the image side
// (image.js), the cost of a CNI bridge network against Podman's (network.js) and the docker
// client against husk daemon and against dockerd (daemon.js) and a pod's start through
// containerd's CRI with husk and with runc as the handler (cri.js), each in a process of its
// own, then one summary table of every figure with a target: husk's path, husk, runc (or the
// tool husk is compared with), crun, the ratio, the target and whether it is met.
// A part that fails is named and the others still run; the exit status says whether all ran.
//
// Environment: BENCH_ROUNDS (timed rounds of each runtime figure, default 15),
// BENCH_ENGINE_ROUNDS (default min(BENCH_ROUNDS, 10)), BENCH_PARALLEL (50) and
// BENCH_PARALLEL_ROUNDS (3), BENCH_IMAGE_ROUNDS (5), BENCH_IMAGE_BIG=0 (skip the 1 GiB pull),
// BENCH_NETWORK_ROUNDS and BENCH_CRI_ROUNDS (default min(BENCH_ROUNDS, 10)), BENCH_PARTS (default
// "run,engines,image,network,daemon,cri").
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const lib = require('./lib');

const PARTS = (process.env.BENCH_PARTS || 'run,engines,image,network,daemon,cri').split(',').map((p) => p.trim()).filter(Boolean);

/** The Debian packages the parts use, by the program they provide. */
const PROGRAMS = {
  runc: 'runc', crun: 'crun', flock: 'util-linux', nsenter: 'util-linux', unshare: 'util-linux', tar: 'tar',
  containerd: 'containerd', ctr: 'containerd', 'containerd-shim-runc-v2': 'containerd', dockerd: 'docker.io', podman: 'podman', conmon: 'conmon', busybox: 'busybox-static',
  umoci: 'umoci', skopeo: 'skopeo', 'docker-registry': 'docker-registry', debootstrap: 'debootstrap',
  ip: 'iproute2', 'iptables-save': 'iptables',
};

function checkPrograms() {
  const missing = Object.entries(PROGRAMS).filter(([prog]) => !lib.which(prog));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  console.log(`bench: missing ${missing.map(([p]) => p).join(', ')}; the figures that need them are skipped. To have them: apt-get install ${packages.join(' ')}`);
}

function fmt(value, unit) {
  if (value === undefined || value === null || Number.isNaN(value)) return '-';
  if (unit === 'ms') return `${value.toFixed(value < 100 ? 1 : 0)} ms`;
  if (unit === 's') return `${value.toFixed(2)} s`;
  return `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`;
}

function summary(file) {
  let rows = [];
  try {
    rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    // no part recorded anything
  }
  const header = ['figure', 'husk path', 'husk', 'runc', 'crun', 'husk/runc', 'target', 'met', 'rounds'];
  const table = rows.map((r) => [
    r.figure,
    r.path,
    fmt(r.husk, r.unit),
    fmt(r.runc, r.unit),
    fmt(r.crun, r.unit),
    r.runc ? `${(r.husk / r.runc).toFixed(2)}x` : '-',
    r.target || '-',
    r.met === undefined || r.met === null ? '-' : r.met ? 'met' : 'NOT MET',
    String(r.rounds ?? '-'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells) => `  ${cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}`.trimEnd();
  console.log('\nsummary (medians; crun through nsenter where this host needs it, see above)');
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of table) console.log(line(row));
  const withTarget = rows.filter((r) => r.met !== undefined && r.met !== null);
  console.log(`  ${withTarget.filter((r) => r.met).length} of ${withTarget.length} targets met`);
}

function main() {
  const results = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'husk-bench-results-')), 'results.jsonl');
  const started = Date.now();
  checkPrograms();
  const failed = [];
  for (const part of PARTS) {
    const script = path.join(__dirname, `${part}.js`);
    if (!fs.existsSync(script)) {
      failed.push(`${part} (no ${script})`);
      continue;
    }
    const res = spawnSync(process.execPath, [script], { stdio: 'inherit', env: { ...process.env, BENCH_RESULTS: results } });
    if (res.status !== 0) failed.push(`${part} (exit ${res.status ?? res.signal})`);
  }
  summary(results);
  console.log(`  whole bench: ${((Date.now() - started) / 1000).toFixed(0)} s${failed.length ? `; parts that failed: ${failed.join(', ')}` : ''}`);
  fs.rmSync(path.dirname(results), { recursive: true, force: true });
  process.exit(failed.length ? 1 : 0);
}

main();
