#!/usr/bin/env node
// npm run bench: husk side by side with runc (and crun where it works on this host) on the
// same bundle, in one run, reported as ratios. Needs root, a built husk and Debian's runc.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const REPO = path.join(__dirname, '..');
const HUSK = path.join(REPO, 'bin', 'husk');
const ROUNDS = Number(process.env.BENCH_ROUNDS || 20);

function which(name) {
  for (const dir of (process.env.PATH || '').split(':')) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

function bundle(dir) {
  const { makeDemoBundle } = require(path.join(REPO, 'dist', 'cli', 'demo.js'));
  makeDemoBundle(dir, ['exit', '0']);
  return dir;
}

function time(label, argv) {
  const samples = [];
  for (let i = 0; i < ROUNDS; i++) {
    const args = argv(i);
    const t0 = process.hrtime.bigint();
    const res = spawnSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    const t1 = process.hrtime.bigint();
    if (res.status !== 0) throw new Error(`${label}: ${args.join(' ')} failed: ${res.stderr}`);
    samples.push(Number(t1 - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  return { label, median: samples[Math.floor(samples.length / 2)], min: samples[0] };
}

function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-bench-'));
  try {
    const b = bundle(path.join(dir, 'bundle'));
    const runtimes = [['husk', HUSK], ['runc', which('runc')], ['crun', which('crun')]].filter(([, p]) => p);
    const rows = [];
    for (const [name, bin] of runtimes) {
      const root = path.join(dir, `root-${name}`);
      // husk's bin is a node script: start it the same way every time.
      const cmd = (...args) => [...(name === 'husk' ? [process.execPath] : []), bin, '--root', root, ...args];
      const once = (...args) => { const [c, ...rest] = cmd(...args); spawnSync(c, rest, { stdio: 'ignore' }); };
      let run;
      try {
        run = time(`${name} run`, (i) => cmd('run', '--bundle', b, `b${i}`));
      } catch (err) {
        process.stderr.write(`bench: ${name} skipped: ${err.message.split('\n')[0]}\n`);
        continue;
      }
      once('create', '--bundle', b, 'st');
      const state = time(`${name} state`, () => cmd('state', 'st'));
      once('delete', '--force', 'st');
      rows.push({ name, run, state });
    }
    const nodeStart = time('node -e ""', () => [process.execPath, '-e', '']);
    const base = rows.find((r) => r.name === 'runc');
    console.log(`rounds: ${ROUNDS}; medians in ms (node's own start-up: ${nodeStart.median.toFixed(1)} ms)`);
    console.log('runtime   run (create+start+wait+delete)   state        ratio to runc (run, state)');
    for (const r of rows) {
      const ratio = base ? `${(r.run.median / base.run.median).toFixed(2)}x, ${(r.state.median / base.state.median).toFixed(2)}x` : '-';
      console.log(`${r.name.padEnd(9)} ${r.run.median.toFixed(1).padStart(8)}                        ${r.state.median.toFixed(1).padStart(8)}     ${ratio}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main();
