// --explain (src/linux/explain.ts): every op of native/plan.h and every kind of step husk reports
// itself has an explanation, and steps read in words.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EXPLANATIONS, HOST_EXPLANATIONS, PHASES, STEP_EXPLANATIONS, capabilityWords, describeStep, explainer, gidWords,
  mountWords, uidWords, wantsColour,
} from '../../src/linux/explain';
import { MS } from '../../src/linux/constants';
import { mountStep } from '../../src/linux/planStep';

const ROOT = path.resolve(__dirname, '../..');

/** The ops of plan.h's `enum class Op`, named as TypeScript names them (CloneInit -> cloneInit). */
function planOps(): string[] {
  const header = fs.readFileSync(path.join(ROOT, 'native/plan.h'), 'utf8');
  const body = header.match(/enum class Op[^{]*\{([\s\S]*?)\n\};/)?.[1] ?? '';
  const ops = body.split('\n').map((l) => l.replace(/\/\/.*$/, '').trim()).filter(Boolean)
    .flatMap((l) => l.split(',')).map((s) => s.trim()).filter((s) => /^[A-Z]\w*$/.test(s));
  return ops.map((op) => op[0].toLowerCase() + op.slice(1));
}

/** The kinds husk's own trace() (and explainAhead()) calls give their steps: `{ kind: 'cgroupWrite', ... }`. */
function reportedKinds(): Map<string, string> {
  const kinds = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('explain.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/\b(?:trace|explainAhead)\([^;]*?\{ kind: '(\w+)'/g)) kinds.set(m[1], path.relative(ROOT, p));
      }
    }
  };
  walk(path.join(ROOT, 'src'));
  return kinds;
}

describe('the explanation table', () => {
  it('reads the ops from plan.h', () => {
    const ops = planOps();
    expect(ops.length).toBeGreaterThan(40);
    expect(ops).toContain('pivotRoot');
    expect(ops).toContain('exec');
  });

  it('explains every op of native/plan.h', () => {
    const missing = planOps().filter((op) => !(op in STEP_EXPLANATIONS));
    expect(missing, `ops of native/plan.h with no explanation in src/linux/explain.ts: ${missing.join(', ')}`).toEqual([]);
  });

  it('explains every kind of step husk reports itself', () => {
    const kinds = reportedKinds();
    kinds.delete('step'); // a step of the plan: explained by its op
    expect(kinds.size).toBeGreaterThan(10);
    const missing = [...kinds].filter(([kind]) => !(kind in HOST_EXPLANATIONS)).map(([kind, file]) => `${kind} (${file})`);
    expect(missing, `kinds with no explanation in src/linux/explain.ts: ${missing.join(', ')}`).toEqual([]);
  });

  it('gives each kind one sentence, a phase and a man page', () => {
    for (const [kind, e] of Object.entries(EXPLANATIONS)) {
      expect(e.why, kind).toMatch(/^\S.*\.$/);
      expect(e.why, `${kind}: one sentence`).not.toMatch(/[a-z)]\. [A-Z]/);
      expect(e.man, kind).toMatch(/\w\(\d\)|spec|overlayfs|Docker/);
      if (typeof e.phase === 'string') expect(Object.keys(PHASES), kind).toContain(e.phase);
    }
  });
});

describe('steps in words', () => {
  it('says mount flags in words', () => {
    expect(mountWords('/a', '/b', null, MS.MS_BIND | MS.MS_REC)).toBe('a recursive bind mount of "/a" on "/b"');
    expect(mountWords('/a', '/b', null, MS.MS_BIND)).toBe('a bind mount of "/a" on "/b"');
    expect(mountWords(null, '/', null, MS.MS_REC | MS.MS_SLAVE)).toMatch(/^make every mount under "\/" a slave/);
    expect(mountWords(null, '/', null, MS.MS_PRIVATE)).toMatch(/^make the mount at "\/" private/);
    expect(mountWords('shm', '/dev/shm', 'tmpfs', MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC, 'mode=1777'))
      .toBe('a new tmpfs filesystem named "shm" on "/dev/shm" (set-user-ID bits ignored; device files unusable; '
        + 'no programs run from it; options mode=1777)');
    expect(mountWords(null, '/proc/sys', null, MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY | MS.MS_REC))
      .toBe('make "/proc/sys" and every mount under it read-only');
    expect(mountWords(null, '/x', null, MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY | MS.MS_NOSUID))
      .toBe('make "/x" read-only (set-user-ID bits ignored)');
  });

  it('names the capabilities of a mask and counts them', () => {
    expect(capabilityWords(0x20000420n)).toBe('3 capabilities (CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE)');
    expect(capabilityWords(1n << 21n)).toBe('1 capability (CAP_SYS_ADMIN)');
    expect(capabilityWords(0)).toBe('no capabilities');
    expect(capabilityWords((1n << 41n) - 1n)).toBe('all 41 capabilities');
  });

  it('says who an id is', () => {
    expect(uidWords(0)).toBe('root (uid 0)');
    expect(uidWords(1000)).toBe('uid 1000');
    expect(gidWords(0)).toBe('root (gid 0)');
    expect(describeStep({ kind: 'step', step: { op: 'setresuid', uid: 0, trace: '', what: '' } })?.words)
      .toBe('become the user root (uid 0)');
  });

  it('describes plan steps without their system call', () => {
    const words = (step: object, extra = {}) => describeStep({ kind: 'step', step: { trace: '', what: '', ...step }, ...extra });
    expect(words(mountStep('proc', '/proc', 'proc', 0, null))).toEqual({ kind: 'mount', phase: 'rootfs', words: 'a new proc filesystem on "/proc"' });
    expect(words({ op: 'cloneInit', flags: 0x20000000 | 0x00020000, intoCgroup: 1 }, { value: 42 })?.words)
      .toBe('start the container\'s init in new pid and mount namespaces, straight into its cgroup (pid 42 on the host)');
    expect(words({ op: 'mknod', path: '/dev/null', mode: 0o020666, major: 1, minor: 3, uid: 0, gid: 0 })?.words)
      .toBe('create the character device "/dev/null" (number 1, 3: the null device), readable and writable by everyone');
    expect(words({ op: 'dropBounding', keep: 0x20000420 })).toMatchObject({ phase: 'security' });
    expect(words({ op: 'prctl', option: 38, arg2: 1 })).toMatchObject({ phase: 'security', words: 'set no_new_privs: nothing it executes can gain privileges' });
    expect(words({ op: 'pivotRoot', path: '/b/rootfs' }, { errno: 'EINVAL', message: 'Invalid argument' })?.words)
      .toBe('make "/b/rootfs" the root "/" and detach the host\'s old root: failed, Invalid argument (EINVAL)');
    expect(describeStep({ kind: 'cgroupWrite', file: '/sys/fs/cgroup/t1/devices.allow', value: 'c 1:3 rwm' }))
      .toMatchObject({ phase: 'devices' });
    expect(describeStep({ kind: 'idMapWrite', file: '/proc/9/uid_map', map: '0 100000 65536' })?.words)
      .toBe('map ids in "/proc/9/uid_map": 65536 from 0 inside to 100000 outside');
    const request = (url: string) => describeStep({ kind: 'registryRequest', method: 'GET', url });
    expect(request('https://r.example/v2/library/busybox/manifests/latest'))
      .toEqual({ kind: 'registryRequest', phase: 'image', words: 'ask r.example for the manifest of library/busybox:latest' });
    expect(request('https://r.example/v2/library/busybox/blobs/sha256:ab')?.words).toBe('download the blob sha256:ab of library/busybox from r.example');
    expect(describeStep({ kind: 'registryToken', url: 'https://auth.example/token', scope: 'repository:library/busybox:pull' })?.words)
      .toBe('get a token from https://auth.example/token to pull library/busybox (anonymous)');
  });
});

describe('the explainer', () => {
  const step = (op: string, fields: object = {}) => ({ kind: 'step', step: { op, trace: '', what: '', ...fields } });

  it('groups steps in the phases of docker run, heads each phase once and explains each kind once', () => {
    let out = '';
    const e = explainer((text) => { out += text; }, false);
    e.step('init', '', step('sethostname', { name: 'a' }));
    e.step('husk', '', { kind: 'cgroupMkdir', dir: '/sys/fs/cgroup/t1' });
    e.step('init', '', step('pivotRoot', { path: '/r' }));
    e.step('init', '', step('sethostname', { name: 'b' }));
    e.step('init', '', step('setresuid', { uid: 1000 }));
    e.flush();
    const lines = out.split('\n');
    const headings = lines.filter((l) => l.startsWith('== '));
    expect(headings).toEqual([`== ${PHASES.cgroup} ==`, `== ${PHASES.namespaces} ==`, `== ${PHASES.rootfs} ==`, `== ${PHASES.user} ==`]);
    expect(lines.filter((l) => l.includes('[man sethostname(2)')).length).toBe(1);
    const a = lines.findIndex((l) => l.endsWith('set the hostname to "a"'));
    expect(lines[a + 1]).toMatch(/set the hostname to "b"$/);
    expect(out).toContain('    init    become the user uid 1000');
    expect(out).not.toContain('\x1b[');
  });

  it('colours headings and man pages only when asked', () => {
    let out = '';
    const e = explainer((text) => { out += text; }, true);
    e.step('init', '', step('chdir', { path: '/' }));
    e.flush();
    expect(out).toContain(`\x1b[1m== ${PHASES.exec} ==\x1b[0m`);
    expect(out).toContain('\x1b[2m[man chdir(2)]\x1b[0m');
  });

  it('wants colour on a terminal without NO_COLOR only', () => {
    const fd = fs.openSync('/dev/null', 'r');
    try {
      expect(wantsColour(fd, {})).toBe(false);
    } finally {
      fs.closeSync(fd);
    }
    expect(wantsColour(-1, { NO_COLOR: '' })).toBe(false);
  });
});
