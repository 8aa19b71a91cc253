// husk demo: runs the embedded probe (test/probe/probe.c, built with the addon) as the only
// program of a generated bundle and shows what it sees from inside, next to the host's view
// (`husk demo probe`), or runs one lesson of demoLessons.ts: the probe in two containers, one
// kind of isolation on and off, side by side (`husk demo pid`). Without a lesson, lists them.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HuskError } from '../errors';
import { defaultSpec } from '../spec/defaults';
import type { Action, GlobalOptions } from './globals';
import { Command } from 'commander';
import type { Spec } from '../spec/types';
import { LESSONS, specDiff, type HostView, type Lesson, type Observation, type SideRun } from './demoLessons';

const REPO = path.join(__dirname, '..', '..');
export const PROBE = path.join(REPO, 'build', 'Release', 'probe');

/** A bundle whose rootfs holds only the probe, with runc's default config around it. */
export function makeDemoBundle(dir: string, args: string[]): Spec {
  if (!fs.existsSync(PROBE)) throw new HuskError(`the probe ${PROBE} is not built (run npm install)`);
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync(PROBE, path.join(rootfs, 'probe'));
  fs.chmodSync(path.join(rootfs, 'probe'), 0o755);
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/probe\n');
  const spec = defaultSpec({ args: ['/probe', ...args] });
  spec.process!.terminal = false;
  spec.hostname = 'husk-demo';
  spec.root = { path: 'rootfs', readonly: true };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return spec;
}

function hostNamespaces(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync('/proc/self/ns')) {
    try {
      out[name] = fs.readlinkSync(`/proc/self/ns/${name}`);
    } catch {
      // not readable
    }
  }
  return out;
}

function capNames(hex: string | null): string {
  if (!hex) return '?';
  const { CAPABILITIES } = require('../linux/capabilities');
  const v = BigInt('0x' + hex);
  const names = (CAPABILITIES as string[]).filter((_, i) => v & (1n << BigInt(i))).map((n) => n.replace(/^CAP_/, '').toLowerCase());
  return names.length ? names.join(', ') : '(none)';
}

export async function probeDemo(g: GlobalOptions, json: boolean): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-demo-'));
  const root = path.join(dir, 'state');
  const id = `demo-${process.pid}`;
  try {
    makeDemoBundle(path.join(dir, 'bundle'), ['report']);
    const args = ['--root', root, ...(g.trace ? ['--trace'] : []), ...(g.explain ? ['--explain'] : []), 'run', '--bundle', path.join(dir, 'bundle'), id];
    const res = spawnSync(path.join(REPO, 'bin', 'husk'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (res.status !== 0) throw new HuskError(`the demo container failed (exit status ${res.status})`);
    const report = JSON.parse(res.stdout);
    if (json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return 0;
    }
    const host = hostNamespaces();
    const lines = [
      'husk demo: the probe ran as the only program of a container; this is what it saw.',
      '',
      `  pid ${report.pid} (parent ${report.ppid})   -- it is PID 1 of a new pid namespace`,
      `  hostname ${JSON.stringify(report.hostname)}       -- its own UTS namespace`,
      `  user uid=${report.uid} gid=${report.gid} groups=[${(report.groups ?? []).join(',')}]  umask ${report.umask?.toString(8)}`,
      `  network interfaces: ${(report.interfaces ?? []).map((i: any) => `${i.name}${i.up ? '' : ' (down)'}`).join(', ') || '(none)'}  -- a new network namespace has only lo`,
      `  capabilities (effective): ${capNames(report.caps?.effective)}`,
      `  no_new_privs ${report.noNewPrivs}   open fds: ${(report.fds ?? []).map((f: any) => f.fd).join(',')}`,
      '',
      '  namespaces            inside                       host',
    ];
    for (const [name, inside] of Object.entries(report.namespaces ?? {})) {
      const outside = host[name] ?? '-';
      const mark = inside === outside ? 'shared with the host' : 'new';
      lines.push(`    ${name.padEnd(18)}  ${String(inside).padEnd(27)}  ${outside.padEnd(27)} ${mark}`);
    }
    lines.push('', '  mounts (the whole filesystem tree it can see):');
    for (const m of report.mounts ?? []) lines.push(`    ${m.mountPoint.padEnd(24)} ${m.fsType.padEnd(8)} ${m.mountOptions ?? m.options}`);
    lines.push('', '  cgroup:', ...(report.cgroup ?? []).map((l: string) => `    ${l}`));
    lines.push('', 'Run `husk --explain demo probe` to have each kernel step husk takes to build this explained (`--trace` for the system calls).',
      `Run \`husk demo LESSON\` to see one kind of isolation on and off: ${LESSONS.map((l) => l.name).join(', ')}.`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function listLessons(json: boolean): number {
  if (json) {
    process.stdout.write(JSON.stringify(LESSONS.map((l) => ({ name: l.name, summary: l.summary })), null, 2) + '\n');
    return 0;
  }
  const lines = ['husk demo LESSON: the probe runs twice, one kind of isolation on and off, side by side.', ''];
  lines.push(`  ${'probe'.padEnd(9)} what a container sees from inside, next to the host's view`);
  for (const l of LESSONS) lines.push(`  ${l.name.padEnd(9)} ${l.summary}`);
  lines.push('', 'Add --json for a machine-readable summary, and try `husk --trace demo LESSON` to see the system calls.');
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

function hostView(): HostView {
  return { namespaces: hostNamespaces(), hostname: os.hostname() };
}

/** Runs one side of a lesson: its own bundle under `dir`, `husk run` in a state root of its own. */
function runSide(g: GlobalOptions, lesson: Lesson, isolated: boolean, dir: string): { spec: Spec; run: SideRun } {
  const bundle = path.join(dir, isolated ? 'isolated' : 'shared');
  const spec = makeDemoBundle(bundle, lesson.probe);
  lesson.prepare?.(bundle);
  lesson.configure(spec, isolated, bundle);
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  const id = `demo-${lesson.name}-${isolated ? 'isolated' : 'shared'}-${process.pid}`;
  const args = ['--root', path.join(dir, 'state'), ...(g.trace ? ['--trace'] : []), ...(g.explain ? ['--explain'] : []), 'run', '--bundle', bundle, id];
  const res = spawnSync(path.join(REPO, 'bin', 'husk'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  if (g.trace || g.explain) process.stderr.write(res.stderr);
  const run: SideRun = { status: res.status, stdout: res.stdout, stderr: res.stderr, dir: bundle };
  const expected = res.status === 0 || (lesson.expectsFailure?.(isolated) && res.status !== null && res.status > 128);
  if (!expected) {
    const why = res.stderr.split('\n').find((l) => l.startsWith('husk:')) ?? res.stderr.trim().split('\n').pop() ?? `exit status ${res.status}`;
    throw new HuskError(`the container ${lesson.labels[isolated ? 0 : 1]} failed: ${why.replace(/^husk: /, '')}`);
  }
  return { spec, run };
}

function columns(left: string[], right: string[], width: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    out.push(`  ${(left[i] ?? '').padEnd(width)}  ${right[i] ?? ''}`.trimEnd());
  }
  return out;
}

/** Breaks a paragraph into lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

export async function lessonDemo(g: GlobalOptions, lesson: Lesson, json: boolean): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `husk-demo-${lesson.name}-`));
  // Readable by all: a container whose root is mapped to another uid (the user lesson) must
  // still reach its rootfs below this directory.
  fs.chmodSync(dir, 0o755);
  try {
    const host = hostView();
    const on = runSide(g, lesson, true, dir);
    const off = runSide(g, lesson, false, dir);
    const seen: [Observation, Observation] = [lesson.observe(on.run, true, host), lesson.observe(off.run, false, host)];
    const changes = specDiff(on.spec, off.spec);
    const problem = lesson.check(seen[0].facts, seen[1].facts, host);
    if (json) {
      process.stdout.write(JSON.stringify({
        lesson: lesson.name, labels: lesson.labels, isolated: seen[0].facts, shared: seen[1].facts,
        config: changes, kernel: lesson.kernel, shown: problem === null, ...(problem ? { problem } : {}),
      }, null, 2) + '\n');
    } else {
      const width = Math.max(34, ...seen[0].lines.map((l) => l.length), lesson.labels[0].length);
      const lines = [`husk demo ${lesson.name}: ${lesson.summary}`, ''];
      lines.push(...columns([lesson.labels[0]], [lesson.labels[1]], width));
      lines.push(...columns(['-'.repeat(lesson.labels[0].length)], ['-'.repeat(lesson.labels[1].length)], width));
      lines.push(...columns(seen[0].lines, seen[1].lines, width));
      lines.push('', '  config.json: what differs (+ only with the isolation, - only without)');
      for (const c of changes) lines.push(`    ${c.side === 'isolated' ? '+' : '-'} ${c.path}: ${JSON.stringify(c.value).split(dir).join('$TMP')}`);
      lines.push('', ...wrap(lesson.kernel, 96).map((l) => `  ${l}`));
      process.stdout.write(lines.join('\n') + '\n');
    }
    if (problem) throw new HuskError(`the difference did not show: ${problem}`);
    return 0;
  } finally {
    for (const side of ['isolated', 'shared']) {
      if (fs.existsSync(path.join(dir, side))) lesson.release?.(path.join(dir, side));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('demo').description('run the embedded demo container, or one lesson: an isolation on and off side by side')
    .argument('[lesson]', `probe, or one of ${LESSONS.map((l) => l.name).join(', ')} (none: list them)`)
    .option('--json', 'print the probe\'s report, the lesson\'s summary or the list as JSON', false)
    .action(action('demo', (name: string | undefined, opts: any) => {
      if (name === undefined) return listLessons(opts.json);
      if (name === 'probe') return probeDemo(g, opts.json);
      const lesson = LESSONS.find((l) => l.name === name);
      if (!lesson) throw new HuskError(`unknown lesson (one of probe, ${LESSONS.map((l) => l.name).join(', ')})`);
      return lessonDemo(g, lesson, opts.json);
    }));
}
