// CVE-2019-16884 and its family: the image controls what its /proc and /sys are. Were /proc a
// symlink to /evil, a runtime that follows it mounts procfs at /evil and leaves the image's own
// directory at /proc, full of fake files: the AppArmor or SELinux label, the sysctls the runtime
// writes through /proc then land in those files and nothing is enforced. runc refuses
// (`filesystem "proc" must be mounted on ordinary directory`); so must husk, in one line naming
// the path, leaving nothing behind. Side by side with runc: HUSK_TEST_RUNTIME=$(command -v runc).
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  expectNothingLeft,
  expectStatus,
  isHusk,
  makeBundle,
  mountAt,
  newId,
  parseReport,
  rt,
  type Bundle,
  type RtResult,
} from './harness';

afterEach(cleanup);

function run(bundle: Bundle) {
  return rt(['run', '--bundle', bundle.dir, newId()]);
}

/** A refusal: exit 1 and, from husk, one `husk: ` line naming `path`. */
function expectRefused(res: RtResult, path: string): void {
  expect(res.status, res.stderr).toBe(1);
  if (isHusk) {
    const lines = res.stderr.split('\n').filter(Boolean);
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^husk: run \S+: /);
    expect(lines[0]).toContain(JSON.stringify(path));
  }
}

describe.each([
  ['proc', '/proc'],
  ['sysfs', '/sys'],
])('a %s mount on %s', (type, target) => {
  const replace = (bundle: Bundle, make: (p: string) => void) => {
    fs.rmdirSync(bundle.path(target));
    make(bundle.path(target));
  };

  it('is refused when the image made it a symlink to a directory', async () => {
    const bundle = makeBundle({ args: ['report'] });
    fs.mkdirSync(bundle.path('/evil'));
    replace(bundle, (p) => fs.symlinkSync('/evil', p));
    expectRefused(run(bundle), target);
    await expectNothingLeft();
    expect(fs.readdirSync(bundle.path('/evil'))).toEqual([]);
  });

  it('is refused when the image made it a symlink to nothing (nothing is created at its target)', async () => {
    const bundle = makeBundle({ args: ['report'] });
    replace(bundle, (p) => fs.symlinkSync('/evil', p));
    expectRefused(run(bundle), target);
    await expectNothingLeft();
    expect(fs.existsSync(bundle.path('/evil'))).toBe(false);
  });

  it('is refused when the image made it a file', async () => {
    const bundle = makeBundle({ args: ['report'] });
    replace(bundle, (p) => fs.writeFileSync(p, 'not a directory\n'));
    expectRefused(run(bundle), target);
    await expectNothingLeft();
  });

  it('is made on an ordinary directory, and on one the runtime creates', () => {
    const bundle = makeBundle({ args: ['report'] });
    fs.rmdirSync(bundle.path(target));
    const report = parseReport(expectStatus(run(bundle), 0).stdout);
    expect(mountAt(report, target)?.fsType).toBe(type);
  });
});

// The same attack without a symlink: a config with no proc mount, on an image whose /proc is
// an ordinary directory of fake files. What the runtime writes under /proc must reach a procfs.
describe('a sysctl on an image whose /proc is not a procfs', () => {
  it('is refused, not written into the image', async () => {
    const bundle = makeBundle({
      args: ['report'],
      config: (c) => {
        c.mounts = (c.mounts ?? []).filter((m) => m.type !== 'proc');
        c.linux!.sysctl = { 'kernel.domainname': 'planted' };
      },
    });
    fs.mkdirSync(bundle.path('/proc/sys/kernel'), { recursive: true });
    fs.writeFileSync(bundle.path('/proc/sys/kernel/domainname'), '');
    const res = run(bundle);
    expectRefused(res, '/proc/sys/kernel/domainname');
    if (isHusk) expect(res.stderr).toContain('is not on a procfs');
    await expectNothingLeft();
    expect(fs.readFileSync(bundle.path('/proc/sys/kernel/domainname'), 'utf8')).toBe('');
  });
});
