// Differential: the same bundle under the runtime under test and under runc must look the same
// from inside and from the CLI. Runs only when the runtime under test is husk and runc exists
// (set HUSK_TEST_DIFFERENTIAL=1 to force it, e.g. runc against runc to check the test itself).
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanup,
  hostNamespace,
  isHusk,
  makeBundle,
  newId,
  parseReport,
  REFERENCE,
  rt,
  RUNTIME,
  state,
  type Bundle,
  type BundleOptions,
  type ProbeReport,
  type RtResult,
  expectStatus,
} from './harness';

afterEach(cleanup);

const enabled = REFERENCE !== undefined && (isHusk || process.env.HUSK_TEST_DIFFERENTIAL === '1');

/** Runs the same bundle in the foreground under both runtimes (one after the other). */
function runBoth(bundle: Bundle): { subject: RtResult; reference: RtResult } {
  const subject = rt(['run', '--bundle', bundle.dir, newId('s')], { runtime: RUNTIME });
  const reference = rt(['run', '--bundle', bundle.dir, newId('r')], { runtime: REFERENCE! });
  return { subject, reference };
}

/** A probe report with what legitimately differs between two runs taken out. */
function normalise(report: ProbeReport) {
  return {
    pid: report.pid,
    ppid: report.ppid,
    ids: [report.uid, report.gid, report.euid, report.egid, report.groups],
    hostname: report.hostname,
    domainname: report.domainname,
    umask: report.umask,
    cwd: report.cwd,
    caps: report.caps,
    noNewPrivs: report.noNewPrivs,
    seccomp: report.seccomp,
    // Which namespaces are new and which are the host's; inode numbers differ run to run.
    namespaces: Object.fromEntries(
      Object.entries(report.namespaces).map(([type, link]) => [type, link === null ? null : link === safeHostNamespace(type) ? 'host' : 'new']),
    ),
    mounts: report.mounts.map((m) => `${m.mountPoint} ${m.fsType} ${m.mountOptions} ${m.superOptions}`),
    interfaces: report.interfaces,
    rlimits: report.rlimits,
    oomScoreAdj: report.oomScoreAdj,
    env: [...report.env].sort(),
    // Pipe and socket inode numbers differ; the kind of each fd must not.
    fds: report.fds.map((f) => `${f.fd} ${(f.target ?? '?').replace(/\[\d+\]$/, '')}`),
    tty: report.tty,
  };
}

function safeHostNamespace(type: string): string | undefined {
  try {
    return hostNamespace(type);
  } catch {
    return undefined;
  }
}

const CONFIGS: [string, Omit<BundleOptions, 'args'>][] = [
  ['the default config', {}],
  [
    'a non-root user with groups, umask and rlimits',
    {
      config: (c) => {
        c.process!.user = { uid: 1000, gid: 1000, additionalGids: [5, 100], umask: 0o027 };
        c.process!.rlimits = [
          { type: 'RLIMIT_NOFILE', soft: 100, hard: 200 },
          { type: 'RLIMIT_NPROC', soft: 50, hard: 60 },
        ];
        c.process!.cwd = '/tmp';
      },
    },
  ],
  [
    'a writable rootfs with extra mounts, sysctls, devices and no network namespace',
    {
      config: (c) => {
        c.root!.readonly = false;
        c.mounts!.push(
          { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=2m', 'mode=0700'] },
          { destination: '/scratch/inner', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'size=1m'] },
        );
        c.linux!.namespaces = c.linux!.namespaces!.filter((ns) => ns.type !== 'network');
        c.linux!.sysctl = { 'kernel.shmmax': '65536' };
        c.linux!.devices = [{ path: '/dev/extra', type: 'c', major: 1, minor: 3, fileMode: 0o600, uid: 0, gid: 0 }];
        c.process!.noNewPrivileges = false;
        c.process!.oomScoreAdj = 100;
        c.process!.capabilities!.bounding!.push('CAP_SYS_ADMIN');
        c.process!.capabilities!.permitted!.push('CAP_SYS_ADMIN');
        c.process!.capabilities!.effective!.push('CAP_SYS_ADMIN');
      },
    },
  ],
];

describe.runIf(enabled)(`differential: ${RUNTIME} against ${REFERENCE}`, () => {
  it.each(CONFIGS)('probe report is the same for %s', (_, opts) => {
    const bundle = makeBundle({ ...opts, args: ['report'] });
    const { subject, reference } = runBoth(bundle);
    expect(reference.status, reference.stderr).toBe(0);
    expect(subject.status, subject.stderr).toBe(0);
    expect(normalise(parseReport(subject.stdout))).toEqual(normalise(parseReport(reference.stdout)));
  });

  const PROBE_RUNS: string[][] = [
    ['exit', '0'],
    ['exit', '3'],
    ['exit', '255'],
    ['kill-self', 'SEGV'],
    ['write', '/readonly-rootfs'],
    ['cat', '/does/not/exist'],
    ['no-such-probe-command'],
    ['echo', 'out', 'then', 'stderr', 'err', 'then', 'exit', '4'],
    ['stat', '/dev/null', 'then', 'ls', '/dev', 'then', 'ls', '/proc/acpi', 'then', 'cat', '/proc/sys/kernel/hostname'],
    ['write', '/proc/sys/kernel/hostname', 'x'],
    ['syscall', 'sethostname', 'then', 'syscall', 'mount', '/tmp'],
  ];
  it.each(PROBE_RUNS.map((args) => [args.join(' '), args]))('exit status and output are the same for `probe %s`', (_, args) => {
    const bundle = makeBundle({ args: args as string[] });
    const { subject, reference } = runBoth(bundle);
    expectStatus(subject, reference.status);
    expect(subject.stdout).toBe(reference.stdout);
    expect(subject.stderr).toBe(reference.stderr);
  });

  it.each([
    ['an executable that does not exist', ['/nope']],
    ['empty args', []],
  ])('exit status is the same for %s', (_, args) => {
    const bundle = makeBundle({ config: (c) => (c.process!.args = args as string[]) });
    const { subject, reference } = runBoth(bundle);
    expectStatus(reference, 1);
    expectStatus(subject, reference.status);
  });

  it('state and list show the same fields', () => {
    const bundle = makeBundle({ config: (c) => (c.annotations = { 'org.example': 'x' }) });
    const subjectId = newId('s');
    const referenceId = newId('r');
    expectStatus(rt(['create', '--bundle', bundle.dir, subjectId], { runtime: RUNTIME }), 0);
    expectStatus(rt(['create', '--bundle', bundle.dir, referenceId], { runtime: REFERENCE! }), 0);
    const subject = state(subjectId, { runtime: RUNTIME })!;
    const reference = state(referenceId, { runtime: REFERENCE! })!;
    expect(Object.keys(subject).sort()).toEqual(Object.keys(reference).sort());
    for (const key of Object.keys(reference) as (keyof typeof reference)[]) {
      expect(typeof subject[key], key).toBe(typeof reference[key]);
    }
    const strip = (s: Record<string, unknown>) => ({ ...s, id: undefined, pid: undefined, created: undefined, ociVersion: undefined });
    expect(strip({ ...subject })).toEqual(strip({ ...reference }));

    const subjectList = JSON.parse(rt(['list', '--format', 'json'], { runtime: RUNTIME }).stdout);
    const referenceList = JSON.parse(rt(['list', '--format', 'json'], { runtime: REFERENCE! }).stdout);
    expect(Object.keys(subjectList[0]).sort()).toEqual(Object.keys(referenceList[0]).sort());
    expect(strip(subjectList[0])).toEqual(strip(referenceList[0]));
  });
});

