// linux.seccomp seen from inside the container: the probe calls chosen system calls and
// prints what they returned. Written against runc (HUSK_TEST_RUNTIME=$(command -v runc)
// passes them all): what runc gives is what a user of Docker or Podman observes.
//
// Every test here needs husk's seccomp wiring (src/linux/seccomp.ts compiled into the plan,
// native/seccomp.cc installing it); the control tests at the top run without a profile and
// show that the refusals below come from the filter, not from capabilities.
import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import {
  cleanup,
  expectStatus,
  makeBundle,
  newId,
  parseReport,
  rt,
  runProbe,
  seccompAgentPath,
  spawnTool,
  tempDir,
  type BundleOptions,
  type Spec,
} from './harness';
import { dockerProfile, ociSeccomp, podmanProfile } from '../seccomp-profiles';

afterEach(cleanup);

const CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
const SIGSYS = 31;

/** A bundle whose config has `seccomp` as linux.seccomp (none when undefined), then `config`. */
function withSeccomp(seccomp?: object, config?: (c: Spec) => void): Omit<BundleOptions, 'args'> {
  return {
    config: (c) => {
      if (seccomp) c.linux!.seccomp = seccomp;
      config?.(c);
    },
  };
}

/** `syscall NAME ...` for each entry, joined with `then`. */
function syscalls(...calls: string[][]): string[] {
  return calls.flatMap((call, i) => [...(i ? ['then'] : []), 'syscall', ...call]);
}

/** The probe's `NAME = RESULT` lines as { NAME: RESULT }; a repeated name keeps each in order. */
function results(stdout: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of stdout.trim().split('\n')) {
    const m = /^(\w+) = (.*)$/.exec(line);
    if (m) (out[m[1]] ??= []).push(m[2]);
  }
  return out;
}

const setCaps = (caps: string[]) => (c: Spec) => {
  c.process!.capabilities = { bounding: caps, effective: caps, permitted: caps, ambient: caps };
};

/** Docker's default profile as Docker writes it into config.json for these capabilities. */
const docker = (caps = CAPS) => ociSeccomp(dockerProfile(), { capabilities: caps });

describe('without a profile (controls)', () => {
  it('reports no filter, and the calls the profiles refuse succeed or fail for other reasons', () => {
    const res = runProbe(['report', 'then', ...syscalls(['keyctl'], ['unshare'], ['personality'], ['unshare', '0x100000000'])]);
    expectStatus(res, 0);
    expect(parseReport(res.stdout.split('\n')[0]).seccomp).toBe(0);
    const r = results(res.stdout);
    expect(r.keyctl[0]).toMatch(/^\d+$/);
    expect(r.unshare).toEqual(['0', '-1 EINVAL']);
    expect(r.personality).toEqual(['0']);
  });

  it('opens an audit netlink socket without CAP_AUDIT_WRITE', () => {
    const res = runProbe(syscalls(['socket', 'netlink', 'raw', '9']), withSeccomp(undefined, setCaps(['CAP_KILL', 'CAP_NET_BIND_SERVICE'])));
    expectStatus(res, 0);
    expect(res.stdout).toMatch(/^socket = \d+\n$/);
  });
});

describe('a small profile', () => {
  const profile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['mkdir', 'chroot'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }],
  };

  it('returns the rule\'s errno (ENOSYS) for the listed calls, lets the others through, and shows Seccomp: 2', () => {
    const res = runProbe(['report', 'then', ...syscalls(['chroot'], ['getpid']), 'then', 'mkdir', '/tmp/x'], withSeccomp(profile));
    expectStatus(res, 1);
    const [report, ...rest] = res.stdout.trim().split('\n');
    expect(parseReport(report).seccomp).toBe(2);
    expect(parseReport(report).noNewPrivs).toBe(1);
    expect(rest).toEqual(['chroot = -1 ENOSYS', 'getpid = 1']);
    expect(res.stderr).toBe('mkdir /tmp/x: ENOSYS Function not implemented\n');
  });

  it('is installed without noNewPrivileges too (before the capabilities are dropped)', () => {
    const res = runProbe(['report', 'then', ...syscalls(['chroot'])], withSeccomp(profile, (c) => (c.process!.noNewPrivileges = false)));
    expectStatus(res, 0);
    const [report, chroot] = res.stdout.trim().split('\n');
    expect(parseReport(report)).toMatchObject({ seccomp: 2, noNewPrivs: 0 });
    expect(chroot).toBe('chroot = -1 ENOSYS');
  });

  it('skips system call names the kernel does not have', () => {
    const res = runProbe(syscalls(['chroot']), withSeccomp({ ...profile, syscalls: [{ names: ['no_such_syscall', 'chroot'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }] }));
    expectStatus(res, 0);
    expect(res.stdout).toBe('chroot = -1 ENOSYS\n');
  });

  it('always filters the native architecture, whatever `architectures` lists', () => {
    const compat = process.arch === 'arm64' ? 'SCMP_ARCH_ARM' : 'SCMP_ARCH_X86';
    const res = runProbe(syscalls(['chroot']), withSeccomp({ ...profile, architectures: [compat] }));
    expectStatus(res, 0);
    expect(res.stdout).toBe('chroot = -1 ENOSYS\n');
  });

  it('kills the process for SCMP_ACT_KILL_PROCESS and SCMP_ACT_KILL (SIGSYS), and logs for SCMP_ACT_LOG', () => {
    for (const action of ['SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL']) {
      const res = runProbe(['echo', 'before', 'then', ...syscalls(['chroot'])], withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chroot'], action }] }));
      expectStatus(res, 128 + SIGSYS);
      expect(res.stdout).toBe('before\n');
    }
    const log = runProbe(syscalls(['getpid']), withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_LOG' }] }));
    expectStatus(log, 0);
    expect(log.stdout).toBe('getpid = 1\n');
  });

  it('refuses an unknown action before starting anything', () => {
    const res = runProbe(['echo', 'started'], withSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chroot'], action: 'SCMP_ACT_FOO' }] }));
    expectStatus(res, 1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('SCMP_ACT_FOO');
  });
});

describe("Docker's default profile", () => {
  it('runs the container normally, with the filter in place', () => {
    const res = runProbe(['report', 'then', 'echo', 'ok'], withSeccomp(docker()));
    expectStatus(res, 0);
    const [report, ok] = res.stdout.trim().split('\n');
    expect(parseReport(report)).toMatchObject({ pid: 1, seccomp: 2, noNewPrivs: 1 });
    expect(ok).toBe('ok');
  });

  it('refuses unshare, mount, keyctl, reboot, swapon, bpf... with EPERM', () => {
    const refused = ['unshare', 'mount', 'keyctl', 'reboot', 'swapon', 'chroot', 'pivot_root', 'bpf', 'perf_event_open', 'clock_settime', 'sethostname'];
    const res = runProbe(syscalls(...refused.map((name) => [name])), withSeccomp(docker()));
    expectStatus(res, 0);
    expect(res.stdout).toBe(refused.map((name) => `${name} = -1 EPERM\n`).join(''));
  });

  it('allows what it allows: ptrace (kernel 4.8 and later), personality queries, getpid', () => {
    const res = runProbe(syscalls(['ptrace'], ['personality'], ['getpid'], ['setuid', '0']), withSeccomp(docker()));
    expectStatus(res, 0);
    expect(res.stdout).toBe('ptrace = 0\npersonality = 0\ngetpid = 1\nsetuid = 0\n');
  });

  it('follows the capabilities the engine saw: with CAP_SYS_ADMIN unshare is allowed, keyctl still refused', () => {
    const caps = [...CAPS, 'CAP_SYS_ADMIN'];
    const res = runProbe(syscalls(['unshare', '0'], ['keyctl']), withSeccomp(docker(caps), setCaps(caps)));
    expectStatus(res, 0);
    expect(res.stdout).toBe('unshare = 0\nkeyctl = -1 EPERM\n');
  });

  it('uses defaultErrnoRet for the calls it does not list', () => {
    const res = runProbe(syscalls(['keyctl'], ['unshare'], ['getpid']), withSeccomp({ ...docker(), defaultErrnoRet: 13 }));
    expectStatus(res, 0);
    expect(res.stdout).toBe('keyctl = -1 EACCES\nunshare = -1 EACCES\ngetpid = 1\n');
  });
});

describe('argument conditions', () => {
  const personality = (op: string) => ({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 4294967295, op }] }],
  });

  it('compare the argument: personality(0xffffffff) is refused by ==, allowed by !=', () => {
    const eq = runProbe(syscalls(['personality']), withSeccomp(personality('SCMP_CMP_EQ')));
    expect(eq.stdout).toBe('personality = -1 EACCES\n');
    const ne = runProbe(syscalls(['personality']), withSeccomp(personality('SCMP_CMP_NE')));
    expect(ne.stdout).toBe('personality = 0\n');
  });

  it('SCMP_CMP_MASKED_EQ: unshare with CLONE_NEWUSER among the flags is refused, other flags are not', () => {
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, args: [{ index: 0, value: 0x10000000, valueTwo: 0x10000000, op: 'SCMP_CMP_MASKED_EQ' }] }],
    };
    const res = runProbe(syscalls(['unshare', '0x10000000'], ['unshare', '0x10020000'], ['unshare', '0'], ['unshare', '0x20000']), withSeccomp(profile));
    expectStatus(res, 0);
    // CLONE_NEWNS alone reaches the kernel, which wants CAP_SYS_ADMIN.
    expect(results(res.stdout).unshare).toEqual(['-1 EACCES', '-1 EACCES', '0', '-1 EPERM']);
  });

  it('compares all 64 bits of an argument', () => {
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 7, args: [{ index: 0, value: 0xffffffff, op: 'SCMP_CMP_GT' }] }],
    };
    const res = runProbe(syscalls(['unshare', '0x100000000'], ['unshare', '0xffffffff'], ['unshare', '0x8000000000000000']), withSeccomp(profile));
    expectStatus(res, 0);
    // The kernel itself says EINVAL to the flags it does not know.
    expect(results(res.stdout).unshare).toEqual(['-1 E2BIG', '-1 EINVAL', '-1 E2BIG']);
  });

  it("ANDs the conditions of a rule: Podman's profile refuses only audit netlink sockets, with EINVAL", () => {
    const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const res = runProbe(
      syscalls(['socket', 'netlink', 'raw', '9'], ['socket', 'netlink', 'raw', '0'], ['socket', 'unix', 'stream', '0'], ['keyctl']),
      withSeccomp(ociSeccomp(podmanProfile(), { capabilities: caps }), setCaps(caps)),
    );
    expectStatus(res, 0);
    const r = results(res.stdout);
    expect(r.socket[0]).toBe('-1 EINVAL');
    expect(r.socket[1]).toMatch(/^\d+$/);
    expect(r.socket[2]).toMatch(/^\d+$/);
    expect(r.keyctl).toEqual([expect.stringMatching(/^\d+$/)]); // Podman's profile leaves keyctl to the kernel
  });
});

describe('SCMP_ACT_NOTIFY with listenerPath', () => {
  async function withAgent(answer: number, metadata?: string) {
    const socket = path.join(tempDir('seccomp-'), 'agent.sock');
    const agent = spawnTool(seccompAgentPath(), [socket, String(answer)]);
    await agent.waitForStdout('listening\n');
    const seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: socket,
      ...(metadata ? { listenerMetadata: metadata } : {}),
      syscalls: [{ names: ['chroot'], action: 'SCMP_ACT_NOTIFY' }],
    };
    const id = newId();
    const bundle = makeBundle({ args: syscalls(['chroot'], ['getpid']), config: (c) => (c.linux!.seccomp = seccomp as any) });
    const res = rt(['run', '--bundle', bundle.dir, id]);
    const exit = await agent.exited;
    return { res, agent, exit, id };
  }

  it('hands the notify fd and the container process state to the listener, which answers the calls', async () => {
    const { res, agent, exit, id } = await withAgent(0, 'from-the-test');
    expectStatus(res, 0);
    expect(exit.status, agent.stderr).toBe(0);
    // chroot needs CAP_SYS_CHROOT, which the container lacks: only the agent can make it 0.
    expect(results(res.stdout).chroot).toEqual(['0']);
    expect(results(res.stdout).getpid).toEqual(['1']);
    const lines = agent.stdout.split('\n');
    const message = JSON.parse(lines[1]);
    expect(message).toMatchObject({ fds: ['seccompFd'], metadata: 'from-the-test', state: { id, status: 'creating' } });
    expect(message.pid).toBe(message.state.pid);
    expect(lines.filter((l) => l.startsWith('notified '))).toHaveLength(1);
  });

  it("returns the listener's errno to the container", async () => {
    const { res } = await withAgent(107);
    expectStatus(res, 0);
    expect(results(res.stdout).chroot).toEqual(['-1 ENOTCONN']);
  });
});
