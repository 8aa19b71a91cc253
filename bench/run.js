#!/usr/bin/env node
// npm run bench (first part): husk side by side with runc and crun on the same bundle (the
// demo bundle: the static probe, `exit 0`), in one run, as ratios to runc. Needs root, a
// built husk (npm run build) and Debian's runc; crun and util-linux's flock, unshare and
// nsenter when present.
//
// husk is measured on four paths:
//   warm        bin/husk (the front door) with its server already running for the --root: one
//               untimed call starts it (HUSK_SERVER_IDLE=3600 keeps it for the whole run), and
//               each figure checks that the same server served every timed call
//   cold        bin/husk with no server: before each timed call (or timed unit) the server of
//               that root is stopped and gone, lock free; the server the cold call starts in the
//               background is stopped again right after it, so it never runs beside another
//               runtime's timed call
//   in-process  bin/husk with HUSK_SERVER=0: the door runs each call as a one-shot node child
//   node        `node dist/cli/main.js`: husk as it was before the front door (issue 11)
// Each figure runs its rounds interleaved (round i of every runtime, then round i+1), and
// reports medians. See lib.js for how a call is timed.
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const lib = require('./lib');

const REPO = path.resolve(process.env.HUSK_BENCH_REPO || lib.REPO);
const HUSK = path.join(REPO, 'bin', 'husk');
const NODE_MAIN = path.join(REPO, 'dist', 'cli', 'main.js');
const ROUNDS = lib.ROUNDS;
const PARALLEL = Number(process.env.BENCH_PARALLEL || 50);
const PARALLEL_ROUNDS = Math.max(1, Number(process.env.BENCH_PARALLEL_ROUNDS || 3));
// The ociVersion of the bench's bundle: crun 1.8 (Debian 12) refuses 1.2.0 ("unknown version
// specified"); runc 1.1 and husk take 1.0.2, runc 1.1's own spec version.
const BUNDLE_OCI_VERSION = '1.0.2';

/** The demo bundle (dist/cli/demo.js), its ociVersion set for crun. */
function makeBundle(dir) {
  const { makeDemoBundle } = require(path.join(REPO, 'dist', 'cli', 'demo.js'));
  makeDemoBundle(dir, ['exit', '0']);
  const file = path.join(dir, 'config.json');
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  spec.ociVersion = BUNDLE_OCI_VERSION;
  fs.writeFileSync(file, JSON.stringify(spec, null, 2));
  return dir;
}

/** Whether bin/husk is the native front door (an ELF), not the node script it was. */
function huskIsDoor() {
  try {
    const fd = fs.openSync(fs.realpathSync(HUSK), 'r');
    const head = Buffer.alloc(4);
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    return head.toString('latin1') === '\x7fELF';
  } catch {
    return false;
  }
}

/** The runtimes and husk paths this host can measure, each with its own --root under dir. */
function runners(dir, crun) {
  const env = { ...process.env };
  delete env.HUSK_SERVER;
  delete env.HUSK_FRONT_DOOR_FD;
  const list = [];
  const root = (name) => {
    const r = path.join(dir, `root-${name}`);
    fs.mkdirSync(r, { recursive: true });
    return r;
  };
  const door = huskIsDoor();
  if (door) {
    const warmRoot = root('husk-warm');
    list.push({ name: 'husk warm', path: 'warm', husk: true, root: warmRoot, argv: (...a) => [HUSK, '--root', warmRoot, ...a], env: { ...env, HUSK_SERVER_IDLE: '3600' } });
    const coldRoot = root('husk-cold');
    const cold = { name: 'husk cold', path: 'cold', husk: true, root: coldRoot, argv: (...a) => [HUSK, '--root', coldRoot, ...a], env };
    cold.before = () => lib.stopServer(coldRoot);
    cold.after = () => lib.stopServer(coldRoot);
    list.push(cold);
    const inRoot = root('husk-in-process');
    list.push({ name: 'husk in-process', path: 'in-process', husk: true, root: inRoot, argv: (...a) => [HUSK, '--root', inRoot, ...a], env: { ...env, HUSK_SERVER: '0' } });
  } else {
    console.log(`bench: ${HUSK} is not the native front door (not an ELF): only "husk (node, before the door)" is measured`);
  }
  const nodeRoot = root('husk-node');
  list.push({ name: 'husk (node, before the door)', path: 'node', husk: true, root: nodeRoot, argv: (...a) => [process.execPath, NODE_MAIN, '--root', nodeRoot, ...a], env });
  const runc = lib.which('runc');
  if (runc) {
    const r = root('runc');
    list.push({ name: 'runc', path: 'runc', root: r, argv: (...a) => [runc, '--root', r, ...a], env });
  } else console.log('bench: runc is not installed (apt-get install runc): no ratios');
  if (crun.bin) {
    const r = root('crun');
    list.push({ name: 'crun', path: 'crun', root: r, argv: (...a) => [...crun.prefix, crun.bin, '--root', r, ...a], env });
  }
  return list;
}

/** Stops and checks the warm server around a figure: the same one must serve every warm call. */
function warmServer(r) {
  const found = lib.serverPids(r.root);
  return found.length === 1 ? found[0] : undefined;
}

function startWarm(r) {
  lib.mustRun(r.argv('list'), { env: r.env });
  const deadline = Date.now() + 10_000;
  while (!(warmServer(r) && fs.existsSync(path.join(r.root, '~server.sock')))) {
    if (Date.now() > deadline) throw new Error(`husk warm: no server is listening in ${r.root} 10 s after the first call (see ${path.join(r.root, '~server.log')})`);
    lib.sleepMs(10);
  }
  // One more call through the server, so that its workers have loaded what a call needs.
  lib.mustRun(r.argv('list'), { env: r.env });
  r.serverPid = warmServer(r);
}

/**
 * Times `unit(runner, round)` for every runner, ROUNDS rounds interleaved. A runner that fails
 * is dropped from the figure with one line saying why. Returns Map name -> samples (ms).
 */
function measure(title, list, unit, opts = {}) {
  const samples = new Map(list.map((r) => [r.name, []]));
  const failed = new Map();
  const rounds = opts.rounds || ROUNDS;
  for (const r of list) {
    if (opts.setup) {
      try {
        opts.setup(r);
      } catch (err) {
        failed.set(r.name, err.message);
      }
    }
  }
  for (let i = 0; i < rounds; i++) {
    for (const r of list) {
      if (failed.has(r.name)) continue;
      try {
        if (r.before) r.before();
        samples.get(r.name).push(unit(r, i));
        if (r.after) r.after();
      } catch (err) {
        failed.set(r.name, err.message);
      }
    }
  }
  for (const r of list) {
    if (opts.teardown) {
      try {
        opts.teardown(r);
      } catch {
        // reported by the leftover checks
      }
    }
    if (r.path === 'warm' && !failed.has(r.name) && warmServer(r) !== r.serverPid) {
      failed.set(r.name, `the warm server changed during the figure (was ${r.serverPid}, now ${warmServer(r) ?? 'none'}): not all calls were warm`);
    }
  }
  const out = new Map();
  console.log(`\n${title} (${rounds} rounds, median ms, min..max)`);
  const base = samples.get('runc');
  const baseMedian = base && base.length === rounds ? lib.median(base) : undefined;
  for (const r of list) {
    if (failed.has(r.name)) {
      console.log(`  ${r.name.padEnd(30)} failed: ${failed.get(r.name)}`);
      continue;
    }
    const s = samples.get(r.name);
    const m = lib.median(s);
    out.set(r.name, m);
    const ratio = baseMedian ? `${(m / baseMedian).toFixed(2)}x runc` : '';
    console.log(`  ${r.name.padEnd(30)} ${m.toFixed(1).padStart(8)}   (${Math.min(...s).toFixed(1)}..${Math.max(...s).toFixed(1)})   ${ratio}`);
  }
  return out;
}

/** The summary rows of a timed figure: one per husk door path, against runc and crun. */
function recordTimed(figure, medians, rounds) {
  const runc = medians.get('runc');
  const crun = medians.get('crun');
  const node = medians.get('husk (node, before the door)');
  for (const [name, ms] of medians) {
    if (!name.startsWith('husk')) continue;
    const row = { figure, path: name.slice(5), husk: ms, runc, crun, unit: 'ms', rounds };
    if (name === 'husk warm') Object.assign(row, { target: '<= 1.0x runc', met: runc === undefined ? undefined : ms <= runc });
    if (name === 'husk cold') Object.assign(row, { target: '<= husk (node)', met: node === undefined ? undefined : ms <= node, note: node ? `node ${node.toFixed(1)} ms` : undefined });
    lib.record(row);
  }
}

/** The created container's init: its pid (from `state`), comm and VmRSS, median of 3. */
function initRss(list) {
  console.log('\ninit of a created container (waiting for start): VmRSS, median of 3');
  const rows = new Map();
  for (const r of list) {
    const kib = [];
    let comm = '';
    try {
      for (let i = 0; i < 3; i++) {
        if (r.before) r.before();
        const id = `${r.key}-rss-${i}`;
        lib.mustRun(r.argv('create', '--bundle', r.bundle, id), { env: r.env });
        try {
          const pid = JSON.parse(lib.mustRun(r.argv('state', id), { env: r.env }).stdout).pid;
          kib.push(lib.rssKiB(pid));
          comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } finally {
          lib.mustRun(r.argv('delete', '--force', id), { env: r.env });
          if (r.after) r.after();
        }
      }
    } catch (err) {
      console.log(`  ${r.name.padEnd(30)} failed: ${err.message}`);
      continue;
    }
    const m = lib.median(kib);
    rows.set(r.name, m);
    console.log(`  ${r.name.padEnd(30)} ${(m / 1024).toFixed(2).padStart(8)} MiB   (process "${comm}")`);
  }
  for (const [name, kib] of rows) {
    if (!name.startsWith('husk')) continue;
    const mib = kib / 1024;
    // The 2 MiB target is the front door's (its clone waits); before the door, node's clone did.
    const door = !name.includes('node');
    lib.record({ figure: 'created init RSS', path: name.slice(5), husk: mib, runc: rows.has('runc') ? rows.get('runc') / 1024 : undefined, crun: rows.has('crun') ? rows.get('crun') / 1024 : undefined, unit: 'MiB', rounds: 3, target: door ? '<= 2 MiB' : '-', met: door ? mib <= 2 : undefined });
  }
}

/** What a runtime left of the bench's containers: state directories, processes of the bundle. */
function leftovers(r) {
  const left = [];
  for (const entry of fs.readdirSync(r.root)) if (!entry.startsWith('~')) left.push(`container directory ${path.join(r.root, entry)}`);
  const bundle = path.resolve(r.bundle);
  const inside = (p) => p === bundle || p.startsWith(`${bundle}/`);
  for (const pid of lib.pids()) {
    if (pid === process.pid) continue;
    for (const link of ['root', 'cwd', 'exe']) {
      let target;
      try {
        target = fs.readlinkSync(`/proc/${pid}/${link}`);
      } catch {
        continue;
      }
      if (inside(target)) {
        left.push(`process ${pid} (${lib.cmdline(pid).join(' ') || 'zombie'}) with its ${link} in the bundle`);
        break;
      }
    }
  }
  return left;
}

function spawnAll(argvs, env) {
  return Promise.all(argvs.map((argv) => new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('error', (e) => resolve({ code: -1, err: e.message }));
    // 'exit', not 'close': the batch is over when the calls are, whoever still holds a pipe
    // (leftovers() finds such a process).
    child.on('exit', (code, signal) => resolve({ code: code ?? signal, err }));
  })));
}

/** PARALLEL `run`s at once (distinct ids, one root), PARALLEL_ROUNDS times: total wall time. */
async function parallel(list) {
  console.log(`\n${PARALLEL} parallel \`run\` of the bundle, one --root (${PARALLEL_ROUNDS} rounds, median s of the whole batch; every call must exit 0 and leave nothing)`);
  const results = new Map();
  for (const r of list) {
    const times = [];
    const problems = [];
    for (let round = 0; round < PARALLEL_ROUNDS && problems.length === 0; round++) {
      const argvs = Array.from({ length: PARALLEL }, (_, i) => r.argv('run', '--bundle', r.bundle, `${r.key}-par-${round}-${i}`));
      const t0 = lib.nowMs();
      const res = await spawnAll(argvs, r.env);
      times.push(lib.nowMs() - t0);
      const bad = res.filter((x) => x.code !== 0);
      if (bad.length) problems.push(`${bad.length} of ${PARALLEL} failed, e.g. exit ${bad[0].code}: ${bad[0].err.trim().split('\n').pop()}`);
      // What a finished run leaves must be gone at once; give the kernel a moment to reap.
      lib.sleepMs(200);
      problems.push(...leftovers(r).slice(0, 5));
    }
    const m = lib.median(times);
    results.set(r.name, { ms: m, ok: problems.length === 0 });
    const extra = r.path === 'warm' ? `   (server now ${warmServer(r) === r.serverPid ? 'the same' : 'CHANGED'}, ${threadsOf(r.serverPid)} threads)` : '';
    console.log(`  ${r.name.padEnd(30)} ${(m / 1000).toFixed(2).padStart(8)} s   (${times.map((t) => (t / 1000).toFixed(2)).join(', ')})   ${problems.length ? `PROBLEMS: ${problems.join('; ')}` : 'all exited 0, nothing left'}${extra}`);
  }
  const runc = results.get('runc');
  const crun = results.get('crun');
  for (const [name, x] of results) {
    if (!name.startsWith('husk')) continue;
    lib.record({ figure: `${PARALLEL} parallel run`, path: name.slice(5), husk: x.ms / 1000, runc: runc && runc.ms / 1000, crun: crun && crun.ms / 1000, unit: 's', rounds: PARALLEL_ROUNDS, target: name.includes('node') ? '-' : 'all exit 0, nothing left', met: name.includes('node') ? undefined : x.ok });
  }
}

function threadsOf(pid) {
  try {
    return /^Threads:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1];
  } catch {
    return '?';
  }
}

function serverRss(r, when) {
  const found = lib.serverPids(r.root);
  if (found.length === 0) {
    let log = '';
    try {
      log = fs.readFileSync(path.join(r.root, '~server.log'), 'utf8').trim().split('\n').filter((l) => !l.includes('closed but not opened')).slice(-3).join(' / ');
    } catch {
      log = '(no ~server.log)';
    }
    console.log(`  idle server of the warm root, ${when}: it is gone (its log ends: ${log})`);
    return;
  }
  const kib = found.reduce((sum, pid) => sum + (lib.rssKiB(pid) || 0), 0);
  const mib = kib / 1024;
  console.log(`  idle server of the warm root, ${when}: ${mib.toFixed(1)} MiB VmRSS (pid ${found.join(', ') || 'none'}, ${found.map(threadsOf).join(', ')} threads)`);
  lib.record({ figure: `idle server RSS, ${when}`, path: 'warm', husk: mib, unit: 'MiB', rounds: 1, target: '-', met: undefined });
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  if (!fs.existsSync(NODE_MAIN)) throw new Error(`bench: ${NODE_MAIN} is missing: npm run build first`);
  if (!lib.which('flock')) throw new Error('bench: flock is missing (apt-get install util-linux)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-bench-'));
  const crun = { bin: lib.which('crun'), prefix: [], stop: () => {} };
  let list = [];
  try {
    if (crun.bin) {
      try {
        Object.assign(crun, lib.crunLauncher());
        if (crun.note) console.log(`bench: ${crun.note}`);
      } catch (err) {
        console.log(`bench: crun skipped: ${err.message}`);
        crun.bin = undefined;
      }
    } else console.log('bench: crun is not installed (apt-get install crun): not compared');
    const bundle = makeBundle(path.join(dir, 'bundle'));
    list = runners(dir, crun);
    // Container ids start with the runner's key: cgroups are named after the id, and two
    // runtimes' containers must never share one.
    for (const r of list) {
      r.bundle = bundle;
      r.key = r.path;
    }
    // Drop a runtime that cannot run the bundle at all, with its reason.
    list = list.filter((r) => {
      try {
        if (r.before) r.before();
        lib.mustRun(r.argv('run', '--bundle', bundle, `${r.key}-check`), { env: r.env });
        if (r.after) r.after();
        return true;
      } catch (err) {
        console.log(`bench: ${r.name} skipped: it cannot run the bundle: ${err.message.split('\n')[0]}`);
        return false;
      }
    });
    const warm = list.find((r) => r.path === 'warm');
    if (warm) {
      startWarm(warm);
      console.log(`bench: warm server of ${warm.root}: pid ${warm.serverPid}`);
    }
    const overhead = lib.median(Array.from({ length: 20 }, () => lib.timedRun(['/bin/true'])));
    const nodeStart = lib.median(Array.from({ length: 10 }, () => lib.timedRun([process.execPath, '-e', ''])));
    let nsenterCost = '';
    if (crun.prefix.length) {
      const ns = lib.median(Array.from({ length: 20 }, () => lib.timedRun([...crun.prefix, '/bin/true'])));
      nsenterCost = `; crun's nsenter adds ${(ns - overhead).toFixed(1)} ms a call`;
    }
    console.log(`bench: timing by spawnSync + hrtime from node; spawnSync of /bin/true costs ${overhead.toFixed(1)} ms, \`node -e ""\` ${nodeStart.toFixed(1)} ms${nsenterCost}`);

    const run = measure('run of the bundle (create, start, wait, delete)', list, (r, i) => lib.timedRun(r.argv('run', '--bundle', r.bundle, `${r.key}-run-${i}`), r.env));
    recordTimed('run (exit 0)', run, ROUNDS);

    const life = measure('create + start + state + delete of one container, as one unit', list, (r, i) => {
      const id = `${r.key}-life-${i}`;
      const t0 = lib.nowMs();
      lib.timedRun(r.argv('create', '--bundle', r.bundle, id), r.env);
      lib.timedRun(r.argv('start', id), r.env);
      lib.timedRun(r.argv('state', id), r.env);
      lib.timedRun(r.argv('delete', '--force', id), r.env);
      return lib.nowMs() - t0;
    });
    recordTimed('create+start+state+delete', life, ROUNDS);

    const state = measure('state of a created container', list, (r) => lib.timedRun(r.argv('state', `${r.key}-st`), r.env), {
      setup: (r) => {
        if (r.before) r.before();
        lib.mustRun(r.argv('create', '--bundle', r.bundle, `${r.key}-st`), { env: r.env });
        if (r.after) r.after();
      },
      teardown: (r) => lib.mustRun(r.argv('delete', '--force', `${r.key}-st`), { env: r.env }),
    });
    recordTimed('state', state, ROUNDS);

    initRss(list);
    if (warm) serverRss(warm, `after ${ROUNDS * 6 + 11} calls`);

    await parallel(list.filter((r) => ['warm', 'in-process', 'node', 'runc', 'crun'].includes(r.path)));
    if (warm) serverRss(warm, `after ${PARALLEL * PARALLEL_ROUNDS} parallel runs`);
  } finally {
    for (const r of list) {
      if (r.husk) {
        try {
          lib.stopServer(r.root);
        } catch (err) {
          console.log(`bench: ${err.message}`);
        }
      }
      // Anything a failed figure left: containers of every runtime.
      if (fs.existsSync(r.root)) {
        for (const id of fs.readdirSync(r.root).filter((e) => !e.startsWith('~'))) spawnSync(r.argv('delete', '--force', id)[0], r.argv('delete', '--force', id).slice(1), { stdio: 'ignore', env: { ...r.env, HUSK_SERVER: '0' } });
      }
    }
    crun.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack || err.message}\n`);
  process.exit(1);
});
