/*
 * The probe's output (test/probe/probe.c), for every kind of test: it prints one JSON object per
 * line for `report`, `stat`, ... and plain text for the rest.
 */

/** Parses the first line of `text` that is a JSON object (the probe prints one per line). */
export function jsonLine<T = any>(text: string): T {
  const line = text.split(/\r?\n/).find((l) => l.trimStart().startsWith('{'));
  if (!line) throw new Error(`no JSON line in output: ${JSON.stringify(text)}`);
  return JSON.parse(line) as T;
}

export interface ProbeMount {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
  mountOptions: string;
  superOptions: string;
}

export interface ProbeReport {
  pid: number;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  groups: number[];
  hostname: string;
  domainname: string;
  umask: number;
  cwd: string;
  caps: { bounding: string; effective: string; permitted: string; inheritable: string; ambient: string };
  noNewPrivs: number;
  seccomp: number;
  namespaces: Record<string, string | null>;
  mounts: ProbeMount[];
  interfaces: { name: string; up: boolean; loopback: boolean; addresses: string[] }[];
  cgroup: string[];
  rlimits: Record<string, { soft: number | 'unlimited'; hard: number | 'unlimited' } | null>;
  oomScoreAdj: number;
  env: string[];
  fds: { fd: number; target: string | null }[];
  tty: { stdin: boolean; stdout: boolean; stderr: boolean };
  memoryMax: string | null;
  pidsMax: string | null;
}

export function parseReport(text: string): ProbeReport {
  return jsonLine<ProbeReport>(text);
}

/** The mount (last one wins, as the kernel shows it) at `mountPoint` in a probe report. */
export function mountAt(report: ProbeReport, mountPoint: string): ProbeMount | undefined {
  return [...report.mounts].reverse().find((m) => m.mountPoint === mountPoint);
}
