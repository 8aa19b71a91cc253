// The config.json that `husk spec` writes: the same document as `runc spec` (runc 1.1.x,
// Debian 12), field for field and in runc's key order, so printing it with tab indentation
// gives runc's bytes apart from ociVersion. `--rootless` applies the same edits as runc's
// specconv.ToRootless: no network namespace, a user namespace mapping only the caller,
// /sys bind-mounted from the host instead of a new sysfs, no devpts gid, no cgroup resources.

import type { Mount, Spec } from './types';

/** The runtime-spec version husk implements (runc 1.1.5 says "1.0.2-dev"; husk follows 1.2). */
export const OCI_VERSION = '1.2.0';

export interface DefaultSpecOptions {
  rootless?: boolean;
  /** process.args; runc's default is ["sh"]. */
  args?: string[];
  /** process.terminal; runc's default is true. */
  terminal?: boolean;
  /** The host ids the rootless user namespace maps to root; default the caller's euid/egid. */
  hostUid?: number;
  hostGid?: number;
}

const DEFAULT_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

export function defaultSpec(opts: DefaultSpecOptions = {}): Spec {
  const caps = () => [...DEFAULT_CAPABILITIES];
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: opts.terminal ?? true,
      user: { uid: 0, gid: 0 },
      args: opts.args ? [...opts.args] : ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps(), effective: caps(), permitted: caps(), ambient: caps() },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: defaultMounts(),
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  return opts.rootless ? toRootless(spec, opts) : spec;
}

function defaultMounts(): Mount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
  ];
}

function toRootless(spec: Spec, opts: DefaultSpecOptions): Spec {
  const linux = spec.linux!;
  const hostUid = opts.hostUid ?? process.geteuid?.() ?? 0;
  const hostGid = opts.hostGid ?? process.getegid?.() ?? 0;

  // A new network namespace would have no way out without root; a user namespace is what
  // makes the rest possible. runc drops "network" and appends "user".
  const namespaces = linux.namespaces!.filter((n) => n.type !== 'network');
  namespaces.push({ type: 'user' });

  // An unprivileged user cannot mount a fresh sysfs, nor pick gid=5 for devpts (gid 5 is
  // not mapped): bind the host's /sys read-only and let devpts take the caller's gid.
  const mounts = spec.mounts!.map((m): Mount => {
    if (m.type === 'sysfs') {
      return { destination: m.destination, type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (m.type === 'devpts') return { ...m, options: m.options!.filter((o) => !o.startsWith('gid=')) };
    return m;
  });

  // Key order is runc's: the mappings come first in "linux" and "resources" is gone.
  spec.mounts = mounts;
  spec.linux = {
    uidMappings: [{ containerID: 0, hostID: hostUid, size: 1 }],
    gidMappings: [{ containerID: 0, hostID: hostGid, size: 1 }],
    namespaces,
    maskedPaths: linux.maskedPaths,
    readonlyPaths: linux.readonlyPaths,
  };
  return spec;
}
