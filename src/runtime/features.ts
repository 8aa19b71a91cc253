// `husk features`: what this husk supports, in the runtime spec's features format (the JSON
// engines read to decide what they may put in config.json). It must be true: everything
// listed is implemented and tested, nothing implemented is left out.
import { HOOK_NAMES, NAMESPACE_TYPES, SECCOMP_ACTIONS, SECCOMP_FLAGS, SECCOMP_OPERATORS } from '../spec/types';
import { OCI_VERSION } from '../spec/defaults';
import { knownMountOptions } from '../linux/mountOptions';
import { CAPABILITIES } from '../linux/capabilities';
import { SUPPORTED_ARCHES } from '../linux/seccomp';
import { version } from '../../package.json';

export interface FeaturesHost {
  /** cgroup drivers husk can use: v1 (and hybrid) hierarchies, the v2 unified one. */
  cgroupV1: boolean;
  cgroupV2: boolean;
  apparmor: boolean;
  selinux: boolean;
}

export function features(host: FeaturesHost) {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: [...HOOK_NAMES],
    mountOptions: knownMountOptions(),
    linux: {
      namespaces: [...NAMESPACE_TYPES].sort(),
      capabilities: [...CAPABILITIES],
      cgroup: { v1: host.cgroupV1, v2: host.cgroupV2, systemd: true, systemdUser: true, rdma: true },
      seccomp: {
        enabled: true,
        actions: [...SECCOMP_ACTIONS].sort(),
        operators: [...SECCOMP_OPERATORS].sort(),
        archs: SUPPORTED_ARCHES,
        knownFlags: [...SECCOMP_FLAGS].sort(),
        supportedFlags: [...SECCOMP_FLAGS].sort(),
      },
      apparmor: { enabled: host.apparmor },
      selinux: { enabled: host.selinux },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: true } },
    },
    annotations: {
      'io.github.husk.version': version,
      'io.github.husk.seccomp.compiler': 'husk (no libseccomp)',
    },
  };
}
