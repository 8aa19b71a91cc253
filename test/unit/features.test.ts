// husk features: the OCI features document must list exactly what husk implements.
import { describe, expect, it } from 'vitest';
import { features } from '../../src/runtime/features';
import { parseMountOptions } from '../../src/linux/mountOptions';
import { compileSeccomp } from '../../src/linux/seccomp';

const f = features({ cgroupV1: true, cgroupV2: true, apparmor: false, selinux: false });

describe('features', () => {
  it('has the spec shape, with husk\'s spec version as the maximum', () => {
    expect(f.ociVersionMin).toBe('1.0.0');
    expect(f.ociVersionMax).toBe('1.2.0');
    expect(f.hooks).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    expect(f.linux.namespaces).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']);
    expect(f.linux.capabilities).toContain('CAP_CHECKPOINT_RESTORE');
    expect(f.linux.mountExtensions.idmap.enabled).toBe(true);
    expect(f.linux.apparmor.enabled).toBe(false);
  });

  it('lists only mount options the parser turns into flags, propagation or recursive attributes (none end up as data)', () => {
    for (const option of f.mountOptions) {
      expect(parseMountOptions([option]).data, option).toBe('');
    }
    expect(f.mountOptions).toEqual(expect.arrayContaining(['rro', 'rbind', 'rprivate', 'nosymfollow', 'idmap', 'ridmap']));
  });

  it('every listed seccomp action, operator and architecture compiles', () => {
    for (const action of f.linux.seccomp.actions) {
      if (action === 'SCMP_ACT_NOTIFY') continue;
      expect(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action } as any] }), action).not.toThrow();
    }
    for (const op of f.linux.seccomp.operators) {
      expect(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, valueTwo: 1, op }] } as any] }), op).not.toThrow();
    }
    for (const arch of f.linux.seccomp.archs) {
      expect(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [arch] } as any), arch).not.toThrow();
    }
  });
});
