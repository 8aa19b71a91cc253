// A seccomp profile written before Linux 5.9 knows nothing of close_range(2): an allow list
// refuses it (ENOSYS or EPERM), and so may a profile that names it to refuse it. The runtime
// must still start the container with every inherited fd closed at execve (CVE-2024-21626),
// and only the --preserve-fds ones passed on, whether or not noNewPrivileges is set (without
// it the filter goes in before the capabilities are dropped, so earlier in the setup).
// runc passes these too (HUSK_TEST_RUNTIME=$(command -v runc)).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO, RUNTIME, cleanup, expectStatus, makeBundle, newId, parseReport, rt, tempDir } from './harness';
import { ociSeccomp, podmanProfile } from '../seccomp-profiles';

afterEach(cleanup);

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const EPERM = 1;
const ENOSYS = 38;

/** Podman's default profile (an allow list) without close_range, as written before 5.9. */
function allowListWithoutCloseRange(defaultErrnoRet: number) {
  const profile = ociSeccomp(podmanProfile(), { capabilities: CAPS }) as {
    defaultErrnoRet?: number;
    syscalls: { names: string[] }[];
  };
  profile.defaultErrnoRet = defaultErrnoRet;
  for (const rule of profile.syscalls) rule.names = rule.names.filter((n) => n !== 'close_range');
  profile.syscalls = profile.syscalls.filter((rule) => rule.names.length > 0);
  return profile;
}

/** Everything allowed but close_range, which fails with errnoRet. */
function refuseCloseRange(errnoRet: number) {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['close_range'], action: 'SCMP_ACT_ERRNO', errnoRet }],
  };
}

const PROFILES: [string, () => object][] = [
  ['an allow list without close_range (ENOSYS)', () => allowListWithoutCloseRange(ENOSYS)],
  ['an allow list without close_range (EPERM)', () => allowListWithoutCloseRange(EPERM)],
  ['close_range refused with EPERM', () => refuseCloseRange(EPERM)],
  ['close_range refused with ENOSYS', () => refuseCloseRange(ENOSYS)],
];

/** A bundle whose probe reports what it sees, under this profile and noNewPrivileges. */
function reportingBundle(seccomp: object, noNewPrivileges: boolean) {
  return makeBundle({
    args: ['report'],
    config: (c) => {
      c.linux!.seccomp = seccomp;
      c.process!.noNewPrivileges = noNewPrivileges;
    },
  });
}

describe.each(PROFILES)('a profile with %s', (_name, profile) => {
  it.each([false, true])('starts the container with only fds 0-2 (noNewPrivileges %s)', (noNewPrivileges) => {
    const dir = tempDir('hostdir-');
    const fd = fs.openSync(dir, 'r');
    try {
      const bundle = reportingBundle(profile(), noNewPrivileges);
      const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()], { extraFds: [fd, fd, fd] }), 0);
      const report = parseReport(res.stdout);
      expect(report.seccomp).toBe(2);
      expect(report.fds.map((f) => f.fd)).toEqual([0, 1, 2]);
      for (const f of report.fds) expect(f.target ?? '').not.toContain(dir);
    } finally {
      fs.closeSync(fd);
    }
  });

  it.each([false, true])('passes on exactly the --preserve-fds ones (noNewPrivileges %s)', (noNewPrivileges) => {
    const dir = tempDir('hostdir-');
    const kept = path.join(dir, 'kept');
    fs.writeFileSync(kept, 'kept\n');
    const keptFd = fs.openSync(kept, 'r');
    const hostFd = fs.openSync(dir, 'r');
    try {
      const bundle = reportingBundle(profile(), noNewPrivileges);
      const res = expectStatus(
        rt(['run', '--preserve-fds', '1', '--bundle', bundle.dir, newId()], { extraFds: [keptFd, hostFd, hostFd] }),
        0,
      );
      const report = parseReport(res.stdout);
      expect(report.fds.map((f) => f.fd)).toEqual([0, 1, 2, 3]);
      expect(report.fds[3].target).toBe(kept);
    } finally {
      fs.closeSync(keptFd);
      fs.closeSync(hostFd);
    }
  });
});

// The runtime itself where close_range fails: a kernel before 5.9 (ENOSYS), or a sandbox the
// runtime runs in that refuses it (EPERM). test/tools/no-close-range.c stands in for both.
describe.each([ENOSYS, EPERM])('a runtime whose close_range fails with errno %i', (errnoRet) => {
  // Built outside the test's own temporary directories, which go with each test.
  const toolDir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-no-close-range-'));
  const wrapper = path.join(toolDir, 'no-close-range');
  afterAll(() => fs.rmSync(toolDir, { recursive: true, force: true }));
  beforeAll(() => {
    const built = spawnSync('gcc', ['-O2', '-Wall', '-o', wrapper, path.join(REPO, 'test', 'tools', 'no-close-range.c')], {
      encoding: 'utf8',
    });
    if (built.status !== 0) throw new Error(`building no-close-range failed:\n${built.stderr}`);
  });

  it.each([false, true])('still closes every inherited fd and passes on the preserved one (noNewPrivileges %s)', (nnp) => {
    const dir = tempDir('hostdir-');
    const kept = path.join(dir, 'kept');
    fs.writeFileSync(kept, 'kept\n');
    const keptFd = fs.openSync(kept, 'r');
    const hostFd = fs.openSync(dir, 'r');
    try {
      const bundle = makeBundle({ args: ['report'], config: (c) => (c.process!.noNewPrivileges = nnp) });
      const res = expectStatus(
        rt(['run', '--preserve-fds', '1', '--bundle', bundle.dir, newId()], {
          runtime: wrapper,
          env: { NO_CLOSE_RANGE_ERRNO: String(errnoRet), NO_CLOSE_RANGE_EXEC: RUNTIME },
          extraFds: [keptFd, hostFd, hostFd],
        }),
        0,
      );
      const report = parseReport(res.stdout);
      expect(report.fds.map((f) => f.fd)).toEqual([0, 1, 2, 3]);
      expect(report.fds[3].target).toBe(kept);
    } finally {
      fs.closeSync(keptFd);
      fs.closeSync(hostFd);
    }
  });
});
