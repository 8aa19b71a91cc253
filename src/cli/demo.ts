// husk demo: runs the embedded probe (test/probe/probe.c, built with the addon) as the only
// program of a generated bundle and shows what it sees from inside, next to the host's view.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { HuskError } from '../errors';
import { defaultSpec } from '../spec/defaults';
import type { Action, GlobalOptions } from './globals';
import { Command } from 'commander';

const REPO = path.join(__dirname, '..', '..');
export const PROBE = path.join(REPO, 'build', 'Release', 'probe');

/** A bundle whose rootfs holds only the probe, with runc's default config around it. */
export function makeDemoBundle(dir: string, args: string[]) {
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

export async function demo(g: GlobalOptions, json: boolean): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-demo-'));
  const root = path.join(dir, 'state');
  const id = `demo-${process.pid}`;
  try {
    makeDemoBundle(path.join(dir, 'bundle'), ['report']);
    const args = ['--root', root, ...(g.trace ? ['--trace'] : []), 'run', '--bundle', path.join(dir, 'bundle'), id];
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
    lines.push('', 'Run `husk --trace demo` to watch each kernel step husk takes to build this.');
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function command(g: GlobalOptions, action: Action): Command {
  return new Command('demo').description('run the embedded demo container: the probe reports the isolation it sees')
    .option('--json', 'print the probe\'s report as JSON', false)
    .action(action('demo', (opts: any) => demo(g, opts.json)));
}
