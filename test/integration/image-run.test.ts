// `husk image run` and `husk image bundle`: image -> bundle (overlay rootfs, config.json from the
// image config) -> the same run as `husk run`, and nothing left mounted afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, expectNothingLeft, expectStatus, isRunc, newId, parseReport, rt, stateRoot, stateEntries, tempDir, waitForStatus, REFERENCE, RUNTIME, spawnTool, which, jsonLine } from './harness';
import { buildImage, probeLayer, writeLayout, type BuiltImage } from './image-fixtures';

afterEach(cleanup);

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')));
}

let image: BuiltImage;
beforeAll(async () => {
  image = await buildImage({
    layers: [
      probeLayer(),
      { entries: [{ path: 'data/', type: 'directory' }, { path: 'data/hello', content: 'hello from layer 2\n' }, { path: 'data/gone', content: 'x' }] },
      { entries: [{ path: 'data/.wh.gone', content: '' }, { path: 'data/third', content: 'third\n' }], compression: 'zstd' },
    ],
    config: {
      Entrypoint: ['/probe'],
      Cmd: ['report'],
      Env: ['FROM_IMAGE=yes', 'PATH=/bin'],
      WorkingDir: '/data',
      Labels: { 'com.example.label': 'labelled' },
      StopSignal: 'SIGUSR1',
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
    },
  });
});

function layout(): string {
  const dir = tempDir('layout-');
  writeLayout(dir, [{ tag: 'v1', image }]);
  return dir;
}

describe.skipIf(isRunc)('husk image run', () => {
  it('runs the image\'s Entrypoint + Cmd with its Env and WorkingDir, and --rm leaves nothing', async () => {
    const store = tempDir('store-');
    const src = `oci:${layout()}:v1`;
    const res = rt(['image', 'run', '--store', store, '--rm', '-q', src]);
    expectStatus(res, 0);
    const report = parseReport(res.stdout);
    expect(report.pid).toBe(1);
    expect(report.cwd).toBe('/data');
    expect(report.env).toContain('FROM_IMAGE=yes');
    expect(report.env).toContain('PATH=/bin');
    expect(report.interfaces.map((i) => i.name)).toEqual(['lo']);
    expect(report.uid).toBe(0);
    expect(mountsUnder(store)).toEqual([]);
    expect(fs.readdirSync(path.join(store, 'containers'))).toEqual([]);
    expect(stateEntries(stateRoot())).toEqual([]);
    await expectNothingLeft();
  });

  it('sees the layers stacked: upper files shadow lower ones, whiteouts hide them', () => {
    const store = tempDir('store-');
    const src = `oci:${layout()}:v1`;
    const cat = rt(['image', 'run', '--store', store, '--rm', '-q', src, 'cat', '/data/hello']);
    expectStatus(cat, 0);
    expect(cat.stdout).toBe('hello from layer 2\n');
    const ls = rt(['image', 'run', '--store', store, '--rm', '-q', src, 'ls', '/data']);
    expectStatus(ls, 0);
    expect(ls.stdout).toBe('hello\nthird\n');
  });

  it('passes the exit status through and applies -e, -w, -u and a command override', () => {
    const store = tempDir('store-');
    const src = `oci:${layout()}:v1`;
    expectStatus(rt(['image', 'run', '--store', store, '--rm', '-q', src, 'exit', '7']), 7);
    const res = rt(['image', 'run', '--store', store, '--rm', '-q', '-e', 'A=1', '-e', 'FROM_IMAGE=no', '-w', '/tmp', '-u', 'alice', src, 'report']);
    expectStatus(res, 0);
    const report = parseReport(res.stdout);
    expect(report.env).toContain('A=1');
    expect(report.env).toContain('FROM_IMAGE=no');
    expect(report.env).not.toContain('FROM_IMAGE=yes');
    expect(report.env).toContain('HOME=/home/alice');
    expect(report.cwd).toBe('/tmp');
    expect(report.uid).toBe(1000);
    expect(report.gid).toBe(1000);
    // Supplementary groups from the image's /etc/group: alice is in wheel (10) and staff (50).
    expect(report.groups).toEqual(expect.arrayContaining([10, 50]));
  });

  it('refuses an unknown user name with a clear error and leaves nothing', async () => {
    const store = tempDir('store-');
    const res = rt(['image', 'run', '--store', store, '--rm', '-q', '-u', 'mallory', `oci:${layout()}:v1`]);
    expectStatus(res, 1);
    expect(res.stderr).toContain('user "mallory" is not in the image\'s /etc/passwd');
    expect(mountsUnder(store)).toEqual([]);
    expect(fs.readdirSync(path.join(store, 'containers'))).toEqual([]);
    await expectNothingLeft();
  });

  it('gives the container a writable layer of its own', () => {
    const store = tempDir('store-');
    const src = `oci:${layout()}:v1`;
    expectStatus(rt(['image', 'run', '--store', store, '--rm', '-q', src, 'write', '/data/hello', 'changed']), 0);
    const again = rt(['image', 'run', '--store', store, '--rm', '-q', src, 'cat', '/data/hello']);
    expect(again.stdout).toBe('hello from layer 2\n');
  });

  it('puts --memory, --pids-limit and --cpus into linux.resources (refused while husk has no cgroups)', async () => {
    const store = tempDir('store-');
    const bundle = path.join(tempDir('bundle-'), 'b');
    const res = rt(['image', 'bundle', '--store', store, '-q', '--memory', '64m', '--pids-limit', '20', '--cpus', '0.5', `oci:${layout()}:v1`, bundle]);
    expectStatus(res, 0);
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    expect(config.linux.resources.memory).toEqual({ limit: 64 * 1024 * 1024 });
    expect(config.linux.resources.pids).toEqual({ limit: 20 });
    expect(config.linux.resources.cpu).toEqual({ quota: 50000, period: 100000 });
    expectStatus(rt(['image', 'unbundle', '--store', store, bundle]), 0);
    const run = rt(['image', 'run', '--store', store, '--rm', '-q', '--pids-limit', '20', `oci:${layout()}:v1`]);
    if (run.status !== 0) {
      expect(run.stderr).toMatch(/linux\.resources\.pids\.limit/);
      expect(mountsUnder(store)).toEqual([]);
      await expectNothingLeft();
    } else {
      // Once husk applies limits (the cgroup issue), the same command runs.
      expect(parseReport(run.stdout).pid).toBe(1);
    }
  });

  it('-d starts it in the background; delete removes the mount and the writable layer', async () => {
    const store = tempDir('store-');
    const id = newId('img');
    const src = `oci:${layout()}:v1`;
    const res = rt(['image', 'run', '--store', store, '-d', '-q', '--name', id, src, 'sleep', 'inf']);
    expectStatus(res, 0);
    expect(res.stdout.trim()).toBe(id);
    await waitForStatus(id, 'running');
    expect(mountsUnder(store)).toEqual([path.join(store, 'containers', id, 'rootfs')]);
    // The image is in use: remove refuses.
    const rm = rt(['image', 'remove', '--store', store, src]);
    expect(rm.status).toBe(1);
    expect(rm.stderr).toContain(`in use by container ${id}`);
    expectStatus(rt(['delete', '--force', id]), 0);
    expect(mountsUnder(store)).toEqual([]);
    expect(fs.existsSync(path.join(store, 'containers', id))).toBe(false);
  });

  it('-d --rm removes the container by itself once it exits', async () => {
    const store = tempDir('store-');
    const id = newId('img');
    expectStatus(rt(['image', 'run', '--store', store, '-d', '--rm', '-q', '--name', id, `oci:${layout()}:v1`, 'exit', '0']), 0);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (stateEntries(stateRoot()).length || mountsUnder(store).length)) await new Promise((r) => setTimeout(r, 100));
    expect(stateEntries(stateRoot())).toEqual([]);
    expect(mountsUnder(store)).toEqual([]);
    expect(fs.existsSync(path.join(store, 'containers', id))).toBe(false);
  });

  it('keeps a stopped container without --rm until delete', () => {
    const store = tempDir('store-');
    const id = newId('img');
    expectStatus(rt(['image', 'run', '--store', store, '-q', '--name', id, `oci:${layout()}:v1`, 'exit', '0']), 0);
    expect(JSON.parse(rt(['state', id]).stdout).status).toBe('stopped');
    expect(mountsUnder(store).length).toBe(1);
    expectStatus(rt(['delete', id]), 0);
    expect(mountsUnder(store)).toEqual([]);
  });

  const script = which('script');
  it.skipIf(!script)('-t gives the process a terminal, relayed when husk is on one', async () => {
    const store = tempDir('store-');
    const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;
    const command = [RUNTIME, '--root', stateRoot(), 'image', 'run', '--store', store, '--rm', '-q', '-t', `oci:${layout()}:v1`, 'tty'].map(quote).join(' ');
    // script's stdin stays open: at EOF script types its terminal's EOF character, which husk
    // would relay and the container's pty would echo ahead of the output.
    const run = spawnTool(script!, ['-qec', command, '/dev/null'], { detached: true, stdin: 'pipe' });
    const exit = await run.exited;
    expect(exit.status, run.stderr).toBe(0);
    expect(jsonLine(run.stdout)).toMatchObject({ stdin: true, stdout: true, controlling: true });
    expect(mountsUnder(store)).toEqual([]);
  });

  it('-t without a terminal is refused clearly and leaves nothing', async () => {
    const store = tempDir('store-');
    const res = rt(['image', 'run', '--store', store, '--rm', '-q', '-t', `oci:${layout()}:v1`]);
    expectStatus(res, 1);
    expect(res.stderr).toContain('husk has no terminal to relay it to');
    expect(mountsUnder(store)).toEqual([]);
    expect(fs.readdirSync(path.join(store, 'containers'))).toEqual([]);
    await expectNothingLeft();
  });

  it('--trace shows the overlay mount and unmount husk makes on the host', () => {
    const store = tempDir('store-');
    const res = rt(['--trace', 'image', 'run', '--store', store, '--rm', '-q', `oci:${layout()}:v1`, 'exit', '0']);
    expectStatus(res, 0);
    expect(res.stderr).toMatch(/\[husk\] fsopen\("overlay"\) \+ fsconfig\(lowerdir\+ x3 /);
    expect(res.stderr).toContain(`[husk] umount2("${path.join(store, 'containers')}/`);
    expect(mountsUnder(store)).toEqual([]);
  });

  it('--net host shares the host network namespace', () => {
    const store = tempDir('store-');
    const res = rt(['image', 'run', '--store', store, '--rm', '-q', '--net', 'host', `oci:${layout()}:v1`]);
    expectStatus(res, 0);
    expect(parseReport(res.stdout).namespaces.net).toBe(fs.readlinkSync('/proc/self/ns/net'));
  });
});

describe.skipIf(isRunc)('husk image bundle', () => {
  it('writes config.json by the conversion rules and a bundle that runc runs too', () => {
    const store = tempDir('store-');
    const bundle = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', `oci:${layout()}:v1`, bundle]), 0);
    const config = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8'));
    expect(config.process.args).toEqual(['/probe', 'report']);
    expect(config.process.cwd).toBe('/data');
    expect(config.annotations['org.opencontainers.image.stopSignal']).toBe('SIGUSR1');
    expect(config.annotations['com.example.label']).toBe('labelled');
    expect(config.annotations['org.opencontainers.image.exposedPorts'].split(',').sort()).toEqual(['53/udp', '80/tcp']);
    expect(config.annotations['org.opencontainers.image.architecture']).toBe('amd64');
    expect(mountsUnder(bundle)).toEqual([path.join(bundle, 'rootfs')]);
    const runtimes = [undefined, REFERENCE].filter((r, i) => i === 0 || r);
    for (const runtime of runtimes) {
      const res = rt(['run', '--bundle', bundle, newId()], runtime ? { runtime } : {});
      expectStatus(res, 0);
      expect(parseReport(res.stdout).cwd).toBe('/data');
    }
    expectStatus(rt(['image', 'unbundle', '--store', store, bundle]), 0);
    expect(mountsUnder(bundle)).toEqual([]);
    expect(fs.existsSync(bundle)).toBe(false);
  });

  it('--copy makes a plain directory with the layers applied', () => {
    const store = tempDir('store-');
    const bundle = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', '--copy', `oci:${layout()}:v1`, bundle]), 0);
    expect(mountsUnder(bundle)).toEqual([]);
    expect(fs.readdirSync(path.join(bundle, 'rootfs', 'data')).sort()).toEqual(['hello', 'third']);
    const res = rt(['run', '--bundle', bundle, newId()]);
    expectStatus(res, 0);
    expectStatus(rt(['image', 'unbundle', '--store', store, bundle]), 0);
    expect(fs.existsSync(bundle)).toBe(false);
  });
});
