/*
 * The default seccomp profiles of Docker and Podman, as the tests use them, and the conversion
 * that Docker and Podman make from their profile format to config.json's `linux.seccomp`.
 *
 * - Podman's: /usr/share/containers/seccomp.json from Debian's golang-github-containers-common
 *   (in scripts/test's package list).
 * - Docker's: profiles/seccomp/default.json of the moby source that Debian ships in
 *   golang-github-docker-docker-dev. Installing that package would pull in a Go toolchain and
 *   systemd, so the .deb is fetched with `apt-get download` into a temporary directory and
 *   only that file is read from it (unless the package happens to be installed).
 *
 * Both files use the engines' format (archMap, includes/excludes by capability, architecture
 * and kernel version), not the OCI one: ociSeccomp() turns them into what the engine would
 * write into config.json, as moby's profiles/seccomp/seccomp_linux.go (setupSeccomp) does.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PODMAN_PROFILE_PATH = '/usr/share/containers/seccomp.json';
const DOCKER_PACKAGE = 'golang-github-docker-docker-dev';
const DOCKER_PROFILE_IN_PACKAGE = '/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json';

interface Filter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface EngineProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls: {
    name?: string;
    names?: string[];
    action: string;
    errnoRet?: number;
    args?: { index: number; value: number; valueTwo?: number; op: string }[];
    includes?: Filter;
    excludes?: Filter;
  }[];
}

/** Podman's default profile (golang-github-containers-common). */
export function podmanProfile(): EngineProfile {
  if (!fs.existsSync(PODMAN_PROFILE_PATH)) {
    throw new Error(`${PODMAN_PROFILE_PATH} is missing: apt-get install golang-github-containers-common`);
  }
  return JSON.parse(fs.readFileSync(PODMAN_PROFILE_PATH, 'utf8'));
}

let dockerText: string | undefined;
/** Docker's default profile (moby's default.json, from golang-github-docker-docker-dev). */
export function dockerProfile(): EngineProfile {
  dockerText ??= readDockerProfile();
  return JSON.parse(dockerText);
}

function readDockerProfile(): string {
  if (fs.existsSync(DOCKER_PROFILE_IN_PACKAGE)) return fs.readFileSync(DOCKER_PROFILE_IN_PACKAGE, 'utf8');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-docker-seccomp-'));
  try {
    const download = spawnSync('apt-get', ['download', '-q', DOCKER_PACKAGE], { cwd: dir, encoding: 'utf8' });
    const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'));
    if (download.status !== 0 || !deb) {
      throw new Error(`apt-get download ${DOCKER_PACKAGE} failed (run apt-get update first?):\n${download.stderr}`);
    }
    const tarball = spawnSync('dpkg-deb', ['--fsys-tarfile', path.join(dir, deb)], { maxBuffer: 1 << 30 });
    if (tarball.status !== 0) throw new Error(`dpkg-deb --fsys-tarfile ${deb} failed: ${tarball.stderr}`);
    const file = spawnSync('tar', ['-xO', `.${DOCKER_PROFILE_IN_PACKAGE}`], { input: tarball.stdout, maxBuffer: 1 << 26 });
    if (file.status !== 0) throw new Error(`${deb} has no ${DOCKER_PROFILE_IN_PACKAGE}: ${file.stderr}`);
    return file.stdout.toString('utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** SCMP_ARCH_* for a Go architecture name, as the engines' archMap uses it. */
const SCMP_OF_GOARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64',
  '386': 'SCMP_ARCH_X86',
  arm64: 'SCMP_ARCH_AARCH64',
  arm: 'SCMP_ARCH_ARM',
};

/** Go's name for a Node architecture. */
export function goArch(nodeArch: string = process.arch): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

function kernelAtLeast(release: string, min: string): boolean {
  const parse = (v: string) => v.split(/[.-]/).slice(0, 2).map((x) => parseInt(x, 10) || 0);
  const [a, b] = parse(release);
  const [c, d] = parse(min);
  return a > c || (a === c && b >= d);
}

export interface EngineOptions {
  /** The container's bounding set (Docker and Podman read process.capabilities.bounding). */
  capabilities: string[];
  /** Go architecture name (default: this host's). */
  arch?: string;
  /** Kernel release (default: this host's). */
  kernel?: string;
}

/** The `linux.seccomp` an engine writes for this profile, capabilities and host. */
export function ociSeccomp(profile: EngineProfile, opts: EngineOptions) {
  const arch = opts.arch ?? goArch();
  const kernel = opts.kernel ?? os.release();
  const caps = opts.capabilities;
  let architectures = profile.architectures ?? [];
  for (const entry of profile.archMap ?? []) {
    if (entry.architecture === SCMP_OF_GOARCH[arch]) architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }
  const syscalls: { names: string[]; action: string; errnoRet?: number; args?: unknown[] }[] = [];
  for (const call of profile.syscalls) {
    const ex = call.excludes ?? {};
    const inc = call.includes ?? {};
    if (ex.arches?.includes(arch)) continue;
    if (ex.caps?.some((c) => caps.includes(c))) continue;
    if (ex.minKernel && kernelAtLeast(kernel, ex.minKernel)) continue;
    if (inc.arches?.length && !inc.arches.includes(arch)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) continue;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    const names = call.names ?? (call.name ? [call.name] : []);
    syscalls.push({
      names,
      action: call.action,
      ...(call.errnoRet !== undefined ? { errnoRet: call.errnoRet } : {}),
      ...(call.args && call.args.length > 0 ? { args: call.args } : {}),
    });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}
