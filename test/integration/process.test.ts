// The `process` object and what the process inherits: env, cwd, user, umask, rlimits,
// noNewPrivileges, oomScoreAdj, linux.sysctl, fds (--preserve-fds, LISTEN_FDS).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectStatus, makeBundle, newId, parseReport, rt, runProbe, tempDir } from './harness';

afterEach(cleanup);

describe('env and cwd', () => {
  it('gives the process exactly the config env, plus HOME=/ when the config has no HOME', () => {
    const res = runProbe(['env'], { config: (c) => (c.process!.env = ['A=1', 'B=two words', 'EMPTY=']) });
    expectStatus(res, 0);
    expect(res.stdout).toBe('A=1\nB=two words\nEMPTY=\nHOME=/\n');
  });

  it('keeps a HOME the config sets', () => {
    const res = runProbe(['env'], { config: (c) => (c.process!.env = ['HOME=/home/probe', 'PATH=/bin']) });
    expect(res.stdout).toBe('HOME=/home/probe\nPATH=/bin\n');
  });

  it('does not pass the runtime caller\'s environment to the process', () => {
    const res = runProbe(['env'], {}, { env: { HUSK_IT_SECRET: 'leak' } });
    expectStatus(res, 0);
    expect(res.stdout).not.toContain('HUSK_IT_SECRET');
  });

  it('starts in the config cwd', () => {
    const res = runProbe(['cwd'], { config: (c) => (c.process!.cwd = '/etc') });
    expect(res.stdout).toBe('/etc\n');
  });

  it('creates a cwd that does not exist in the rootfs', () => {
    const res = runProbe(['cwd'], { config: (c) => (c.process!.cwd = '/work/dir') });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('/work/dir\n');
  });
});

describe('process.user', () => {
  it('runs as uid, gid and additionalGids', () => {
    const res = runProbe(['id'], { config: (c) => (c.process!.user = { uid: 1000, gid: 1001, additionalGids: [10, 20] }) });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('uid=1000 gid=1001 groups=10,20\n');
  });

  it('runs as root with no supplementary groups by default', () => {
    const res = runProbe(['id']);
    expect(res.stdout).toBe('uid=0 gid=0 groups=\n');
  });

  it('sets effective ids too, and drops the capabilities of a non-root user', () => {
    const res = runProbe(['report'], { config: (c) => (c.process!.user = { uid: 1000, gid: 1000 }) });
    const report = parseReport(res.stdout);
    expect([report.uid, report.euid, report.gid, report.egid]).toEqual([1000, 1000, 1000, 1000]);
    expect(report.caps.effective).toBe('0000000000000000');
  });

  it('applies umask (default 0022)', () => {
    const set = runProbe(['report'], { config: (c) => (c.process!.user!.umask = 0o077) });
    expect(parseReport(set.stdout).umask).toBe(0o077);
    const unset = runProbe(['report']);
    expect(parseReport(unset.stdout).umask).toBe(0o022);
  });
});

describe('limits and privileges', () => {
  it('applies rlimits', () => {
    const res = runProbe(['report'], {
      config: (c) =>
        (c.process!.rlimits = [
          { type: 'RLIMIT_NOFILE', soft: 256, hard: 512 },
          { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
          { type: 'RLIMIT_CORE', soft: 0, hard: 4096 },
          { type: 'RLIMIT_MSGQUEUE', soft: 8192, hard: 16384 },
        ]),
    });
    expectStatus(res, 0);
    const { rlimits } = parseReport(res.stdout);
    expect(rlimits.nofile).toEqual({ soft: 256, hard: 512 });
    expect(rlimits.nproc).toEqual({ soft: 100, hard: 200 });
    expect(rlimits.core).toEqual({ soft: 0, hard: 4096 });
    expect(rlimits.msgqueue).toEqual({ soft: 8192, hard: 16384 });
  });

  it('applies the default RLIMIT_NOFILE of the config', () => {
    expect(parseReport(runProbe(['report']).stdout).rlimits.nofile).toEqual({ soft: 1024, hard: 1024 });
  });

  it('sets no_new_privs when noNewPrivileges is true, not when false', () => {
    expect(parseReport(runProbe(['report']).stdout).noNewPrivs).toBe(1);
    const off = runProbe(['report'], { config: (c) => (c.process!.noNewPrivileges = false) });
    expect(parseReport(off.stdout).noNewPrivs).toBe(0);
  });

  it('sets oomScoreAdj', () => {
    const res = runProbe(['report'], { config: (c) => (c.process!.oomScoreAdj = 500) });
    expect(parseReport(res.stdout).oomScoreAdj).toBe(500);
  });

  it("leaves oom_score_adj as the runtime's own when the config has none", () => {
    const own = Number(fs.readFileSync('/proc/self/oom_score_adj', 'utf8'));
    expect(parseReport(runProbe(['report']).stdout).oomScoreAdj).toBe(own);
  });

  it('gives the capabilities of the config', () => {
    const { caps } = parseReport(runProbe(['report']).stdout);
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29)
    const expected = ((1n << 5n) | (1n << 10n) | (1n << 29n)).toString(16).padStart(16, '0');
    // The config's ambient set cannot be raised without the same capabilities in the inheritable
    // set (the kernel's rule), and runc's default config has no inheritable set.
    expect(caps).toEqual({ bounding: expected, effective: expected, permitted: expected, inheritable: '0000000000000000', ambient: '0000000000000000' });
  });

  it('raises the ambient capabilities that are also inheritable', () => {
    const res = runProbe(['report'], {
      config: (c) => (c.process!.capabilities!.inheritable = ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE']),
    });
    const { caps } = parseReport(res.stdout);
    const expected = ((1n << 5n) | (1n << 10n) | (1n << 29n)).toString(16).padStart(16, '0');
    expect(caps).toEqual({ bounding: expected, effective: expected, permitted: expected, inheritable: expected, ambient: expected });
  });

  it('keeps the effective capabilities of a non-root user through the ambient set', () => {
    const res = runProbe(['report'], {
      config: (c) => {
        c.process!.user = { uid: 1000, gid: 1000 };
        c.process!.capabilities!.inheritable = ['CAP_KILL'];
        c.process!.capabilities!.ambient = ['CAP_KILL'];
      },
    });
    const { caps, uid } = parseReport(res.stdout);
    expect(uid).toBe(1000);
    expect(caps.effective).toBe((1n << 5n).toString(16).padStart(16, '0'));
    expect(caps.ambient).toBe((1n << 5n).toString(16).padStart(16, '0'));
  });
});

describe('linux.sysctl', () => {
  it('sets net.ipv4.ip_forward in the new network namespace, not on the host', () => {
    const host = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const wanted = host.trim() === '1' ? '0' : '1';
    const res = runProbe(['cat', '/proc/sys/net/ipv4/ip_forward'], { config: (c) => (c.linux!.sysctl = { 'net.ipv4.ip_forward': wanted }) });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe(`${wanted}\n`);
    expect(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(host);
  });

  it('sets kernel.shmmax in the new ipc namespace, not on the host', () => {
    const host = fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    const res = runProbe(['cat', '/proc/sys/kernel/shmmax'], { config: (c) => (c.linux!.sysctl = { 'kernel.shmmax': '65536' }) });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('65536\n');
    expect(fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8')).toBe(host);
  });

  it('refuses a net.* sysctl without a network namespace of its own', () => {
    const bundle = makeBundle({
      args: ['exit', '0'],
      config: (c) => {
        c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'network');
        c.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
      },
    });
    const id = newId();
    expectStatus(rt(['create', '--bundle', bundle.dir, id]), 1);
    expectStatus(rt(['state', id]), 1);
  });
});

describe('file descriptors', () => {
  function hostFile(name: string, text: string): number {
    const file = path.join(tempDir('fd-'), name);
    fs.writeFileSync(file, text);
    return fs.openSync(file, 'r');
  }

  it('gives the process only stdin, stdout and stderr by default', () => {
    const fd = hostFile('extra', 'not for the container');
    try {
      const res = runProbe(['fds'], {}, { extraFds: [fd] });
      expectStatus(res, 0);
      expect(res.stdout.trimEnd().split('\n').map((line) => line.split(' ')[0])).toEqual(['0', '1', '2']);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('passes the fds of --preserve-fds N on as fds 3 .. 3+N-1', () => {
    const three = hostFile('three', 'fd three\n');
    const four = hostFile('four', 'fd four\n');
    const five = hostFile('five', 'fd five\n');
    try {
      const res = runProbe(['cat', '/proc/self/fd/3', 'then', 'cat', '/proc/self/fd/4', 'then', 'fds'], {}, {
        extraFds: [three, four, five],
        flags: ['--preserve-fds', '2'],
      });
      expectStatus(res, 0);
      expect(res.stderr).toBe('');
      const lines = res.stdout.trimEnd().split('\n');
      expect(lines.slice(0, 2)).toEqual(['fd three', 'fd four']);
      expect(lines.slice(2).map((line) => line.split(' ')[0])).toEqual(['0', '1', '2', '3', '4']);
    } finally {
      [three, four, five].forEach((fd) => fs.closeSync(fd));
    }
  });

  // runc (through go-systemd's activation.Files) honours socket activation: when LISTEN_PID is
  // its own pid, it passes LISTEN_FDS fds on as fds 3.. and sets LISTEN_FDS=N and LISTEN_PID=1 in
  // the container's environment (appended after the config's env); the fds of --preserve-fds
  // follow them. With another LISTEN_PID, LISTEN_FDS is ignored.
  it('passes LISTEN_FDS fds on and sets LISTEN_FDS and LISTEN_PID=1 when LISTEN_PID is its own pid', () => {
    const three = hostFile('three', 'listen one\n');
    const four = hostFile('four', 'listen two\n');
    const five = hostFile('five', 'preserved\n');
    try {
      const res = runProbe(
        ['env', 'then', 'cat', '/proc/self/fd/3', 'then', 'cat', '/proc/self/fd/4', 'then', 'cat', '/proc/self/fd/5', 'then', 'fds'],
        { config: (c) => (c.process!.env = ['A=1']) },
        { extraFds: [three, four, five], env: { LISTEN_FDS: '2' }, listenPid: true, flags: ['--preserve-fds', '1'] },
      );
      expectStatus(res, 0);
      expect(res.stderr).toBe('');
      const lines = res.stdout.trimEnd().split('\n');
      const envEnd = lines.indexOf('listen one');
      expect(lines.slice(0, envEnd).sort()).toEqual(['A=1', 'HOME=/', 'LISTEN_FDS=2', 'LISTEN_PID=1']);
      expect(lines.slice(envEnd, envEnd + 3)).toEqual(['listen one', 'listen two', 'preserved']);
      expect(lines.slice(envEnd + 3).map((line) => line.split(' ')[0])).toEqual(['0', '1', '2', '3', '4', '5']);
    } finally {
      [three, four, five].forEach((fd) => fs.closeSync(fd));
    }
  });

  it('ignores LISTEN_FDS when LISTEN_PID is not its pid', () => {
    const three = hostFile('three', 'listen one\n');
    try {
      const res = runProbe(['env', 'then', 'fds'], { config: (c) => (c.process!.env = ['A=1']) }, {
        extraFds: [three],
        env: { LISTEN_FDS: '1', LISTEN_PID: '1' },
      });
      expectStatus(res, 0);
      const lines = res.stdout.trimEnd().split('\n');
      expect(lines.filter((line) => line.includes('='))).toEqual(['A=1', 'HOME=/']);
      expect(lines.filter((line) => line.includes(' -> ')).map((line) => line.split(' ')[0])).toEqual(['0', '1', '2']);
    } finally {
      fs.closeSync(three);
    }
  });
});
