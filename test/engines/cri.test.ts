/*
 * Kubernetes pods on husk, driven through the CRI as the kubelet drives it: containerd 1.6 with
 * its CRI plugin and two runtime handlers, `husk` and `runc` (both io.containerd.runc.v2, the
 * shim's BinaryName a logging wrapper of the workspace, Root a directory of it), and a small
 * gRPC client (test/engines/cri/client.ts) making the kubelet's calls. Every scenario runs once
 * with each handler on the same containerd, and what the probe saw with husk is compared with
 * what it saw with runc.
 *
 * What the test sets up, all of it its own and removed afterwards:
 * - a network namespace (TestNetns) that containerd runs in: the CNI bridge (a private range,
 *   no gateway, no masquerade) lives there, and the pods' network namespaces hang off it, so no
 *   packet leaves namespaces the test made. containerd's streaming server listens on that
 *   namespace's 127.0.0.1; Exec reaches it through a relay started inside it.
 * - containerd's root, state, sockets, CNI configuration and host-local leases in the workspace;
 *   the images (the probe's, and a sandbox "pause" image whose command is `/probe signals 0`)
 *   built from the probe and imported with ctr into the k8s.io namespace: nothing is pulled.
 * - pods whose cgroup parent is kubepods-style (/kubepods/burstable/pod<uid>, cgroupfs driver):
 *   the test removes a pod's cgroup as the kubelet would, after checking the runtime removed
 *   everything below it.
 *
 * No kubelet: Debian 12 packages none. The test makes the kubelet's CRI calls itself, with the
 * fields a kubelet fills for a pod (metadata, hostname, log directory, cgroup parent, namespace
 * options, resources from requests and limits, annotations).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { TestNetns } from '../lib/netns';
import {
  CriClient, openStream, type ContainerConfig, type LinuxContainerResources, type PodSandboxConfig,
} from './cri/client';
import {
  IMAGE, RUNTIMES, Workspace, buildImage, comparableReport, explain, jsonLine, mountsUnder, need, printTimings,
  reportDifferences,
  requireRoot, run, scenarios, sleep, ENGINE_WAIT_MS, type Daemon, type RuntimeName, type Wrapper,
} from './setup';

requireRoot();

const ENGINE = 'cri';
const PAUSE_IMAGE = 'localhost/husk-pause:latest';
/** The pods' addresses: a private range that exists only inside the test's namespace. */
const SUBNET_PREFIX = '10.231.77.';
const STREAM_PORT = 10010;
const NETNS_DIR = '/var/run/netns';
/** Where libcni (in containerd) caches each attachment's result, whatever the configuration:
 *  removed afterwards when the test made them and they are empty (the entries go with DEL). */
const CNI_CACHE_DIRS = ['/var/lib/cni/results', '/var/lib/cni'];
const cniCacheExisted = new Map<string, boolean>();

let ws: Workspace;
let netns: TestNetns;
let containerd: Daemon;
let cri: CriClient;
let address: string;
let ctrBinary: string;
let pinsBefore: Set<string>;

/** waitFor for checks that make CRI calls: polls an async check until it gives a truthy value. */
type Maybe<T> = T | undefined | null | false;

async function waitAsync<T>(what: string, check: () => Promise<Maybe<T>> | Maybe<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(delay);
    delay = Math.min(delay * 2, 250);
  }
}

function ctr(args: string[]) {
  return run([ctrBinary, '--address', address, '--namespace', 'k8s.io', ...args]);
}

function containerdConfig(): string {
  const q = (v: string) => JSON.stringify(v);
  const runtime = (rt: RuntimeName) => [
    `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${rt}]`,
    '  runtime_type = "io.containerd.runc.v2"',
    // Annotations of the pod and of the container that reach the runtime's config.json.
    '  pod_annotations = ["husk.test/*"]',
    '  container_annotations = ["husk.test/*"]',
    `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${rt}.options]`,
    `  BinaryName = ${q(ws.wrappers.get(rt)!.path)}`,
    `  Root = ${q(ws.mkdir(`state-${rt}`))}`,
    '  SystemdCgroup = false',
  ];
  return [
    'version = 2',
    `root = ${q(ws.mkdir('root'))}`,
    `state = ${q(ws.mkdir('state'))}`,
    '[grpc]',
    `  address = ${q(address)}`,
    '[ttrpc]',
    `  address = ${q(`${address}.ttrpc`)}`,
    '[debug]',
    `  address = ${q(ws.path('containerd-debug.sock'))}`,
    '  level = "info"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(ws.mkdir('opt'))}`,
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = ${q(PAUSE_IMAGE)}`,
    // In the test's namespace: its loopback is its own.
    '  stream_server_address = "127.0.0.1"',
    `  stream_server_port = "${STREAM_PORT}"`,
    // Loading containerd's AppArmor profile would change the host's kernel policy.
    '  disable_apparmor = true',
    // The kubelet's -998 for a sandbox (and a pod's negative scores) need CAP_SYS_RESOURCE, which
    // this machine's root lacks: containerd raises them to its own score, as in rootless setups.
    '  restrict_oom_score_adj = true',
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    ...runtime('husk'),
    ...runtime('runc'),
    '[plugins."io.containerd.grpc.v1.cri".cni]',
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${q(ws.path('cni'))}`,
    '  max_conf_num = 1',
    '',
  ].join('\n');
}

function cniConfig(): string {
  return JSON.stringify({
    cniVersion: '0.4.0',
    name: 'husk-cri',
    plugins: [
      {
        type: 'bridge',
        bridge: 'huskcri0',
        // No gateway and no masquerade: the pods reach each other and nothing else.
        isGateway: false,
        ipMasq: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: `${SUBNET_PREFIX}0/24` }]], dataDir: ws.path('cni-leases') },
      },
    ],
  });
}

beforeAll(async () => {
  ws = new Workspace(ENGINE);
  ws.cgroupMarkers.push('kubepods');
  ctrBinary = need('ctr');
  need('containerd-shim-runc-v2');
  need('nsenter');
  for (const dir of ['bridge', 'host-local', 'loopback']) {
    if (!fs.existsSync(`/usr/lib/cni/${dir}`)) {
      throw new Error(`/usr/lib/cni/${dir} is missing: apt-get install containernetworking-plugins`);
    }
  }
  pinsBefore = new Set(netnsPins());
  for (const dir of CNI_CACHE_DIRS) cniCacheExisted.set(dir, fs.existsSync(dir));
  for (const rt of RUNTIMES) ws.wrapper(rt);
  netns = new TestNetns('husk-cri');
  ws.atTeardown(() => netns.remove());
  address = ws.path('containerd.sock');
  fs.writeFileSync(path.join(ws.mkdir('cni'), '10-husk-cri.conflist'), cniConfig());
  const config = ws.path('containerd.toml');
  fs.writeFileSync(config, containerdConfig());
  containerd = ws.startDaemon('containerd', netns.argv([need('containerd'), '--config', config]));
  cri = new CriClient(address);
  let version = '';
  await containerd.waitReady(() => {
    if (fs.existsSync(address)) void cri.version().then((v) => (version = v.runtime_api_version), () => undefined);
    return version !== '';
  });
  expect(version).toBe('v1');
  for (const [tag, cmd] of [[IMAGE, undefined], [PAUSE_IMAGE, ['/probe', 'signals', '0']]] as const) {
    const res = ctr(['images', 'import', buildImage(ws, { tag, cmd: cmd ? [...cmd] : undefined })]);
    expect(res.status, explain(res)).toBe(0);
  }
  // The CRI sees both images (what RunPodSandbox and CreateContainer look up), and containerd
  // has loaded the CNI configuration.
  for (const image of [IMAGE, PAUSE_IMAGE]) {
    await waitAsync(`the CRI to list ${image}`, async () => (await cri.imageStatus(image)) !== null, ENGINE_WAIT_MS);
  }
  await waitAsync('the CRI runtime to be network-ready', async () => {
    const c = await cri.conditions();
    return c.RuntimeReady && c.NetworkReady;
  }, ENGINE_WAIT_MS);
}, 600_000);

afterAll(async () => {
  if (!ws) return;
  try {
    printTimings(ENGINE);
  } finally {
    const problems = await ws.teardown(async () => {
      if (!cri) return;
      // Whatever a failed scenario left: stopped and removed through the CRI, as the kubelet would.
      const left = await cri.listPodSandbox().catch(() => []);
      for (const pod of left) {
        await cri.stopPodSandbox(pod.id).catch(() => undefined);
        await cri.removePodSandbox(pod.id).catch(() => undefined);
      }
      for (const image of [IMAGE, PAUSE_IMAGE]) ctr(['images', 'rm', image]);
      cri.close();
      if (left.length) throw new Error(`pods left by the scenarios: ${left.map((p) => p.id).join(', ')}`);
    });
    // The pods' network namespaces are pinned outside the workspace; none may be left.
    for (const pin of netnsPins().filter((p) => !pinsBefore.has(p) && p.startsWith('cni-'))) {
      problems.push(`network namespace pin left: ${NETNS_DIR}/${pin}`);
      run(['ip', 'netns', 'delete', pin]);
    }
    for (const uid of podUids) for (const dir of podCgroupDirs(uid)) problems.push(`pod cgroup left: ${dir}`);
    for (const dir of CNI_CACHE_DIRS) {
      if (cniCacheExisted.get(dir) !== false) continue;
      try {
        fs.rmdirSync(dir);
      } catch {
        if (fs.existsSync(dir)) problems.push(`${dir} left, with ${fs.readdirSync(dir).join(', ')}`);
      }
    }
    if (problems.length) {
      const log = containerd?.logTail();
      throw new Error(`CRI test left things behind:\n  ${problems.join('\n  ')}\ncontainerd's log:\n${log}`);
    }
  }
}, 600_000);

const scenario = scenarios(ENGINE, () => ws);

// ------------------------------------------------------------------------------ pods

interface Pod {
  id: string;
  uid: string;
  rt: RuntimeName;
  config: PodSandboxConfig;
  logDir: string;
  cgroupParent: string;
}

const podsOf = new Map<RuntimeName, Pod[]>();
const podUids: string[] = [];

function netnsPins(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** The v1 controllers' and the unified hierarchy's directories of a pod's cgroup that exist. */
function podCgroupDirs(uid: string): string[] {
  const dirs: string[] = [];
  for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
    const dir = path.join('/sys/fs/cgroup', controller, 'kubepods', 'burstable', `pod${uid}`);
    if (fs.existsSync(dir)) dirs.push(dir);
  }
  return dirs;
}

/** The cgroups under a pod's parent (the sandbox's and the containers'), from every hierarchy. */
function cgroupsUnderPod(uid: string): string[] {
  return podCgroupDirs(uid).flatMap((dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name)));
}

/** RunPodSandbox with `rt` as the runtime handler: the fields a kubelet fills for a pod. */
async function runPod(rt: RuntimeName, name: string, handler: string = rt): Promise<Pod> {
  const uid = crypto.randomUUID();
  podUids.push(uid);
  const logDir = ws.mkdir('logs', `default_${name}_${uid}`);
  const cgroupParent = `/kubepods/burstable/pod${uid}`;
  const config: PodSandboxConfig = {
    metadata: { name: `${name}-${rt}`, uid, namespace: 'default', attempt: 0 },
    hostname: `${name}-${rt}`,
    log_directory: logDir,
    labels: { 'io.kubernetes.pod.name': `${name}-${rt}`, 'husk.test/scenario': name },
    annotations: { 'husk.test/pod': `${name}-${rt}`, 'kubernetes.io/config.source': 'api' },
    linux: {
      cgroup_parent: cgroupParent,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  };
  const id = await cri.runPodSandbox(config, handler);
  const pod: Pod = { id, uid, rt, config, logDir, cgroupParent };
  podsOf.set(rt, [...(podsOf.get(rt) ?? []), pod]);
  return pod;
}

/** CreateContainer and StartContainer of the probe image in the pod. */
async function startContainer(
  pod: Pod, name: string, command: string[], opts: { resources?: LinuxContainerResources } = {},
): Promise<string> {
  const config: ContainerConfig = {
    metadata: { name, attempt: 0 },
    image: { image: IMAGE },
    command,
    log_path: `${name}/0.log`,
    labels: { 'io.kubernetes.container.name': name },
    annotations: { 'husk.test/container': name },
    linux: {
      resources: opts.resources,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
    },
  };
  const id = await cri.createContainer(pod.id, config, pod.config);
  await cri.startContainer(id);
  return id;
}

async function containerPid(id: string): Promise<number> {
  const { info } = await cri.containerStatus(id, true);
  const pid = Number(info.info?.pid);
  expect(pid, `ContainerStatus info of ${id}: ${JSON.stringify(info).slice(0, 2000)}`).toBeGreaterThan(0);
  return pid;
}

async function sandboxInfo(pod: Pod): Promise<{ pid: number; netns: string }> {
  const { info } = await cri.podSandboxStatus(pod.id, true);
  const spec = info.info?.runtimeSpec;
  const netnsPath = (spec?.linux?.namespaces ?? []).find((n: { type: string }) => n.type === 'network')?.path ?? '';
  return { pid: Number(info.info?.pid), netns: netnsPath };
}

/** The container's log as the CRI writes it (`<time> stdout F <line>`): the lines' text. */
function logLines(pod: Pod, name: string): string[] {
  try {
    const text = fs.readFileSync(path.join(pod.logDir, name, '0.log'), 'utf8');
    return text.split('\n').filter(Boolean).map((l) => l.split(' ').slice(3).join(' '));
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

/** Processes whose cgroup (any hierarchy) lies in the pod's parent. */
function processesInPod(uid: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(`/pod${uid}`)) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/** The --root the shim gives the handler's runtime: its Root option, then containerd's namespace. */
function handlerRoot(rt: RuntimeName): string {
  return ws.path(`state-${rt}`, 'k8s.io');
}

/** The runtime's state of a container (`<runtime> --root <handler's root> state <id>`), or null. */
function runtimeState(w: Wrapper, id: string): Record<string, any> | null {
  const res = run([w.binary, '--root', handlerRoot(w.name), 'state', id]);
  return res.status === 0 ? JSON.parse(res.stdout) : null;
}

/**
 * What must be gone once a pod is removed: the CRI knows neither it nor its containers, the
 * runtime has no state for any of them under its Root, no cgroup is left under the pod's
 * parent, nothing is mounted for them, the pod's network namespace pin is gone and no process
 * is left in the pod's cgroups.
 */
async function expectPodGone(pod: Pod, ids: string[], pids: number[], netnsPin: string): Promise<void> {
  const w = ws.wrappers.get(pod.rt)!;
  expect((await cri.listPodSandbox()).map((p) => p.id)).not.toContain(pod.id);
  const containers = (await cri.listContainers()).map((c) => c.id);
  for (const id of ids) expect(containers).not.toContain(id);
  for (const id of [pod.id, ...ids]) {
    expect(fs.existsSync(path.join(handlerRoot(pod.rt), id)), `${pod.rt}'s state of ${id}`).toBe(false);
    expect(runtimeState(w, id), `${pod.rt} state ${id}`).toBeNull();
  }
  expect(cgroupsUnderPod(pod.uid)).toEqual([]);
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .filter((l) => [pod.id, ...ids].some((id) => l.includes(id)));
  expect(mounts).toEqual([]);
  if (netnsPin) expect(fs.existsSync(netnsPin), netnsPin).toBe(false);
  await waitAsync('the pod\'s processes to be gone', () => pids.every((p) => !alive(p)), ENGINE_WAIT_MS);
  expect(processesInPod(pod.uid)).toEqual([]);
}

/** As the kubelet does once a pod is gone: its cgroup (empty by now) is removed. */
function removePodCgroup(uid: string): void {
  for (const dir of podCgroupDirs(uid)) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // not empty: reported by teardown
    }
  }
}

/** The scenario's clean-up: every pod it made with `rt` stopped and removed through the CRI. */
async function removePods(rt: RuntimeName): Promise<void> {
  for (const pod of podsOf.get(rt) ?? []) {
    await cri.stopPodSandbox(pod.id).catch(() => undefined);
    await cri.removePodSandbox(pod.id).catch(() => undefined);
    removePodCgroup(pod.uid);
  }
  podsOf.set(rt, []);
}

/** What the probe saw with husk, kept until the runc run of the same scenario compares. */
const seenWithHusk = new Map<string, unknown>();

function sameAsHusk(rt: RuntimeName, key: string, value: unknown): void {
  if (rt === 'husk') {
    seenWithHusk.set(key, value);
    return;
  }
  if (!seenWithHusk.has(key)) return; // husk's run failed; its own test says why
  expect(value, `${key}: runc saw something else than husk`).toEqual(seenWithHusk.get(key));
}

async function execOk(id: string, cmd: string[]): Promise<string> {
  const res = await cri.execSync(id, cmd);
  expect(res.exit_code, `ExecSync ${cmd.join(' ')}: ${JSON.stringify(res)}`).toBe(0);
  return res.stdout;
}

// ------------------------------------------------------------------------------ scenarios

scenario(
  'RunPodSandbox with the handler: its runtime runs the pause container in the kubepods parent, with the CRI '
    + 'annotations; stop and remove leave nothing',
  async (rt, w) => {
    const pod = await runPod(rt, 'bare');
    const { status } = await cri.podSandboxStatus(pod.id);
    expect(status.state).toBe('SANDBOX_READY');
    expect(status.runtime_handler).toBe(rt);
    expect(status.annotations['husk.test/pod']).toBe(`bare-${rt}`);
    expect(status.network?.ip.startsWith(SUBNET_PREFIX), `pod ip ${status.network?.ip}`).toBe(true);
    // The handler's runtime made the sandbox container, and knows it by the sandbox's id.
    const create = w.calls().find((c) => c.verb === 'create' && c.id === pod.id);
    expect(create, w.report()).toBeDefined();
    expect(fs.existsSync(path.join(handlerRoot(rt), pod.id)), `${rt}'s state directory`).toBe(true);
    const state = runtimeState(w, pod.id);
    expect(state?.status).toBe('running');
    expect(state?.annotations).toMatchObject({
      'io.kubernetes.cri.container-type': 'sandbox',
      'io.kubernetes.cri.sandbox-id': pod.id,
      'io.kubernetes.cri.sandbox-name': `bare-${rt}`,
      'io.kubernetes.cri.sandbox-namespace': 'default',
      'husk.test/pod': `bare-${rt}`,
    });
    const { pid, netns: pin } = await sandboxInfo(pod);
    expect(state?.pid).toBe(pid);
    // The pause process: in the pod's cgroup parent, in the pod's network namespace, pid 1 of its own.
    const cgroupLines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    expect(cgroupLines).toMatch(new RegExp(`^\\d+:memory:${pod.cgroupParent}/${pod.id}$`, 'm'));
    expect(cgroupLines).toMatch(new RegExp(`^\\d+:cpu:${pod.cgroupParent}/${pod.id}$`, 'm'));
    expect(pin.startsWith(`${NETNS_DIR}/cni-`), pin).toBe(true);
    expect(fs.readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
    sameAsHusk(rt, 'sandbox', { state: status.state, cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') });

    await cri.stopPodSandbox(pod.id);
    expect((await cri.podSandboxStatus(pod.id)).status.state).toBe('SANDBOX_NOTREADY');
    await waitAsync('the pause process to end', () => !alive(pid), ENGINE_WAIT_MS);
    // StopPodSandbox tears the pod's network down and unpins its namespace.
    expect(fs.existsSync(pin), pin).toBe(false);
    await cri.removePodSandbox(pod.id);
    await expectPodGone(pod, [], [pid], pin);
    const verbs = w.calls().filter((c) => c.id === pod.id).map((c) => c.verb);
    expect(verbs).toEqual(expect.arrayContaining(['create', 'start', 'delete']));
  },
  removePods,
);

scenario(
  "two containers share the pod's network, IPC and UTS namespaces and reach each other's loopback server",
  async (rt) => {
    const pod = await runPod(rt, 'shared');
    const web = await startContainer(pod, 'web', ['/bin/busybox', 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/etc']);
    const probe = await startContainer(pod, 'probe', ['/probe', 'signals', '0']);
    const { pid: pausePid } = await sandboxInfo(pod);
    const ns = async (id: string) => {
      const out = await execOk(id, [
        '/probe', 'readlink', '/proc/self/ns/net', 'then', 'readlink', '/proc/self/ns/ipc', 'then',
        'readlink', '/proc/self/ns/uts', 'then', 'readlink', '/proc/self/ns/pid', 'then', 'hostname',
      ]);
      const [net, ipc, uts, pid, hostname] = out.trim().split('\n');
      return { net, ipc, uts, pid, hostname };
    };
    const a = await ns(web);
    const b = await ns(probe);
    const pause = Object.fromEntries(
      ['net', 'ipc', 'uts', 'pid'].map((n) => [n, fs.readlinkSync(`/proc/${pausePid}/ns/${n}`)]),
    );
    expect(a.net).toBe(pause.net);
    expect(b.net).toBe(pause.net);
    expect(a.ipc).toBe(pause.ipc);
    expect(b.ipc).toBe(pause.ipc);
    expect(a.uts).toBe(pause.uts);
    expect(b.uts).toBe(pause.uts);
    // pid: CONTAINER, as the kubelet asks for a v1 pod by default.
    expect(new Set([a.pid, b.pid, pause.pid]).size).toBe(3);
    expect(a.hostname).toBe(`shared-${rt}`);
    expect(b.hostname).toBe(`shared-${rt}`);
    // IPC: the pod's /dev/shm is the same in both.
    await execOk(web, ['/probe', 'write', '/dev/shm/from-web', 'shared memory\n']);
    expect(await execOk(probe, ['/probe', 'cat', '/dev/shm/from-web'])).toBe('shared memory\n');
    // Network: the web container's server on 127.0.0.1 answers the other container.
    const fetched = await waitAsync('the web container to answer on 127.0.0.1:8080', async () => {
      const res = await cri.execSync(probe, ['/bin/busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/passwd']);
      return res.exit_code === 0 ? res.stdout : undefined;
    }, ENGINE_WAIT_MS);
    expect(fetched).toContain('root:x:0:0:root:/root:/bin/sh');
    const report = jsonLine(await execOk(probe, ['/probe', 'report']));
    const interfaces = (report.interfaces ?? []).map((i: { name: string }) => i.name);
    expect(interfaces).toEqual(expect.arrayContaining(['lo', 'eth0']));
    // The pod's hostname names the handler.
    const comparable = { ...comparableReport(report), hostname: String(report.hostname).replace(rt, '<handler>') };
    if (rt === 'husk') seenWithHusk.set('report', comparable);
    else if (seenWithHusk.has('report')) {
      expect(reportDifferences(seenWithHusk.get('report') as Record<string, unknown>, comparable)).toEqual([]);
    }
  },
  removePods,
);

scenario(
  'ExecSync (output, stderr, exit code); Exec streamed with a terminal: the program sees a terminal, its output '
    + 'comes back, stdin works',
  async (rt) => {
    const pod = await runPod(rt, 'exec');
    const id = await startContainer(pod, 'main', ['/probe', 'signals', '0']);
    const sync = await cri.execSync(id, [
      '/probe', 'echo', 'to stdout', 'then', 'stderr', 'to stderr', 'then', 'exit', '3',
    ]);
    expect(sync).toEqual({ stdout: 'to stdout\n', stderr: 'to stderr\n', exit_code: 3 });
    const missing = await cri.execSync(id, ['/no/such/command'])
      .then((r) => `exit ${r.exit_code}`, (e: Error) => e.message);
    expect(missing).toMatch(/no such file|not found|exit 1[23]\d/i);

    const url = await cri.exec(id, ['/bin/sh'], { tty: true, stdin: true });
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${STREAM_PORT}/exec/`));
    const session = await openStream(url, { netns: netns.path });
    session.resize(101, 37);
    // The size reaches the terminal asynchronously: the shell waits a little before the probe looks.
    session.write('sleep 1; /probe tty; echo "sum=$((6*7))"; exit 3\n');
    const result = await session.done(30_000);
    expect(result.stdout).toContain('sum=42');
    const tty = jsonLine(result.stdout.replace(/\r/g, ''));
    expect(tty).toMatchObject({ stdin: true, stdout: true, stderr: true, controlling: true, rows: 37, cols: 101 });
    expect(result.exitCode, JSON.stringify(result.status)).toBe(3);
    // Session, process group and foreground group are pids of the container's own pid namespace.
    const { sid, pgrp, foreground, ...terminal } = tty;
    expect(foreground).toBe(pgrp);
    expect(sid).toBeGreaterThan(0);
    sameAsHusk(rt, 'exec', { sync, terminal, exitCode: result.exitCode });
  },
  removePods,
);

scenario(
  'ContainerStatus of containers that exit: state, exit code, reason, and their output in the CRI log',
  async (rt) => {
    const pod = await runPod(rt, 'status');
    const failing = await startContainer(pod, 'failing', ['/probe', 'echo', 'bye', 'then', 'exit', '7']);
    const done = await startContainer(pod, 'done', ['/probe', 'echo', 'all done', 'then', 'exit', '0']);
    const seen: Record<string, unknown> = {};
    for (const [name, id] of [['failing', failing], ['done', done]] as const) {
      const status = await waitAsync(`${name} to exit`, async () => {
        const s = (await cri.containerStatus(id)).status;
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      }, ENGINE_WAIT_MS);
      // (containerd records started_at when the start call returns, which can be after a quick
      // process has already exited: the two are not compared.)
      expect(status.started_at).toBeGreaterThan(0);
      expect(status.finished_at).toBeGreaterThan(0);
      expect(status.annotations['husk.test/container']).toBe(name);
      await waitAsync(`${name}'s output in its log`, () => logLines(pod, name).length > 0, ENGINE_WAIT_MS);
      seen[name] = { exit: status.exit_code, reason: status.reason, log: logLines(pod, name) };
    }
    expect(seen).toEqual({
      failing: { exit: 7, reason: 'Error', log: ['bye'] },
      done: { exit: 0, reason: 'Completed', log: ['all done'] },
    });
    sameAsHusk(rt, 'status', seen);
  },
  removePods,
);

scenario(
  "resources from LinuxContainerResources in the kubepods parent, then UpdateContainerResources",
  async (rt, w) => {
    const pod = await runPod(rt, 'resources');
    const MiB = 1024 * 1024;
    const id = await startContainer(pod, 'limited', ['/probe', 'signals', '0'], {
      resources: { cpu_period: 100_000, cpu_quota: 50_000, cpu_shares: 512, memory_limit_in_bytes: 64 * MiB },
    });
    const pid = await containerPid(id);
    const cgroups = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    expect(cgroups).toMatch(new RegExp(`^\\d+:memory:${pod.cgroupParent}/${id}$`, 'm'));
    const v1 = (controller: string, file: string) =>
      fs.readFileSync(path.join('/sys/fs/cgroup', controller, pod.cgroupParent, id, file), 'utf8').trim();
    const limits = () => ({
      quota: v1('cpu', 'cpu.cfs_quota_us'), period: v1('cpu', 'cpu.cfs_period_us'), shares: v1('cpu', 'cpu.shares'),
      memory: v1('memory', 'memory.limit_in_bytes'),
    });
    const before = limits();
    expect(before).toEqual({ quota: '50000', period: '100000', shares: '512', memory: String(64 * MiB) });

    await cri.updateContainerResources(id, {
      cpu_period: 100_000, cpu_quota: 20_000, cpu_shares: 256, memory_limit_in_bytes: 96 * MiB,
    });
    const after = limits();
    expect(after).toEqual({ quota: '20000', period: '100000', shares: '256', memory: String(96 * MiB) });
    const update = w.calls().find((c) => c.verb === 'update' && c.id === id);
    expect(update, w.report()).toBeDefined();
    expect(update!.status).toBe(0);
    // The container still runs, and the CRI reports the new limits.
    expect((await cri.containerStatus(id)).status.state).toBe('CONTAINER_RUNNING');
    sameAsHusk(rt, 'resources', { before, after });
  },
  removePods,
);

scenario(
  'a readiness-style ExecSync loop fails until the container is ready, then succeeds',
  async (rt) => {
    const pod = await runPod(rt, 'ready');
    const id = await startContainer(pod, 'slow', [
      '/bin/sh', '-c', 'sleep 2 && exec /probe touch /tmp/ready then signals 0',
    ]);
    const results: number[] = [];
    const started = Date.now();
    let failure = '';
    while (Date.now() - started < ENGINE_WAIT_MS) {
      const res = await cri.execSync(id, ['/probe', 'stat', '/tmp/ready'], 5);
      results.push(res.exit_code);
      if (res.exit_code !== 0) failure = res.stderr;
      if (res.exit_code === 0) break;
      await sleep(250);
    }
    // Ready stays ready.
    for (let i = 0; i < 3; i++) results.push((await cri.execSync(id, ['/probe', 'stat', '/tmp/ready'], 5)).exit_code);
    expect(results[0], `probe results ${results}`).toBe(1);
    expect(failure).toMatch(/ENOENT/);
    const firstOk = results.indexOf(0);
    expect(firstOk, `probe results ${results}`).toBeGreaterThan(0);
    expect(results.slice(firstOk)).toEqual([0, 0, 0, 0]);
    sameAsHusk(rt, 'readiness', { first: results[0], failure: failure.trim(), end: results.slice(firstOk) });
  },
  removePods,
);

scenario(
  'StopContainer with a grace period: SIGTERM first; a container that ignores it is killed when the period ends',
  async (rt) => {
    const pod = await runPod(rt, 'stop');
    const stubborn = await startContainer(pod, 'stubborn', [
      '/bin/sh', '-c', 'trap "echo TERM ignored" TERM; echo ready; while true; do sleep 0.2; done',
    ]);
    const polite = await startContainer(pod, 'polite', ['/probe', 'signals', '0']);
    const printed = (name: string, line: string) => logLines(pod, name).includes(line);
    const bothReady = () => printed('stubborn', 'ready') && printed('polite', 'ready');
    await waitAsync('both containers to print ready', bothReady, ENGINE_WAIT_MS);

    let t0 = Date.now();
    await cri.stopContainer(polite, 10);
    const politeMs = Date.now() - t0;
    t0 = Date.now();
    await cri.stopContainer(stubborn, 2);
    const stubbornMs = Date.now() - t0;
    const p = (await cri.containerStatus(polite)).status;
    const s = (await cri.containerStatus(stubborn)).status;
    expect(politeMs, 'a container that ends on SIGTERM is not waited for').toBeLessThan(8_000);
    expect(stubbornMs, 'the grace period is waited for').toBeGreaterThanOrEqual(2_000);
    expect(stubbornMs).toBeLessThan(15_000);
    const lastLines = () => printed('polite', 'signal TERM') && printed('stubborn', 'TERM ignored');
    await waitAsync('the last output in the logs', lastLines, ENGINE_WAIT_MS);
    const seen = {
      polite: { state: p.state, exit: p.exit_code, reason: p.reason, log: logLines(pod, 'polite') },
      stubborn: { state: s.state, exit: s.exit_code, reason: s.reason, log: logLines(pod, 'stubborn') },
    };
    expect(seen).toEqual({
      polite: { state: 'CONTAINER_EXITED', exit: 0, reason: 'Completed', log: ['ready', 'signal TERM'] },
      stubborn: { state: 'CONTAINER_EXITED', exit: 137, reason: 'Error', log: ['ready', 'TERM ignored'] },
    });
    sameAsHusk(rt, 'stop', seen);
  },
  removePods,
);

scenario(
  'failures: an unknown handler is refused; a command that does not exist fails StartContainer with the '
    + "runtime's message; nothing is left",
  async (rt, w) => {
    const unknown = await runPod(rt, 'unknown', 'no-such-handler').then(() => 'started', (e: Error) => e.message);
    expect(unknown).toMatch(/no runtime for "no-such-handler"|runtime handler|not found/i);
    const pod = await runPod(rt, 'failing');
    const config: ContainerConfig = {
      metadata: { name: 'missing', attempt: 0 }, image: { image: IMAGE }, command: ['/no/such/command'],
      log_path: 'missing/0.log',
      linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    };
    const id = await cri.createContainer(pod.id, config, pod.config);
    const started = await cri.startContainer(id).then(() => 'started', (e: Error) => e.message);
    // containerd shows the last error of the runtime's JSON log.
    expect(started).toMatch(/exec: "\/no\/such\/command": .*no such file or directory/i);
    const failed = await cri.containerStatus(id);
    expect(failed.status.state).not.toBe('CONTAINER_RUNNING');
    // The failed start left no container process and no cgroup of it; the pod still runs.
    expect(runtimeState(w, id)).toBeNull();
    expect(cgroupsUnderPod(pod.uid).some((d) => d.endsWith(id))).toBe(false);
    expect((await cri.podSandboxStatus(pod.id)).status.state).toBe('SANDBOX_READY');
    const { pid, netns: pin } = await sandboxInfo(pod);
    await cri.removeContainer(id);
    await cri.stopPodSandbox(pod.id);
    await cri.removePodSandbox(pod.id);
    await expectPodGone(pod, [id], [pid], pin);
    const { state, exit_code: exit, reason } = failed.status;
    sameAsHusk(rt, 'failures', { state, exit, reason });
  },
  removePods,
);

scenario(
  'RemoveContainer, StopPodSandbox with a container still running, RemovePodSandbox: nothing left',
  async (rt, w) => {
    const pod = await runPod(rt, 'remove');
    const first = await startContainer(pod, 'first', ['/probe', 'signals', '0']);
    const second = await startContainer(pod, 'second', ['/probe', 'signals', '0']);
    const firstPid = await containerPid(first);
    const secondPid = await containerPid(second);
    const { pid: pausePid, netns: pin } = await sandboxInfo(pod);
    expect(fs.existsSync(pin), pin).toBe(true);

    await cri.stopContainer(first, 5);
    await cri.removeContainer(first);
    expect((await cri.listContainers(pod.id)).map((c) => c.id)).toEqual([second]);
    expect(runtimeState(w, first)).toBeNull();
    expect(cgroupsUnderPod(pod.uid).some((d) => d.endsWith(first))).toBe(false);
    expect(alive(firstPid)).toBe(false);

    // StopPodSandbox stops what still runs in the pod and tears its network down.
    await cri.stopPodSandbox(pod.id);
    expect((await cri.containerStatus(second)).status.state).toBe('CONTAINER_EXITED');
    await waitAsync('the pod\'s processes to end', () => !alive(secondPid) && !alive(pausePid), ENGINE_WAIT_MS);
    expect(fs.existsSync(pin), pin).toBe(false);
    await cri.removePodSandbox(pod.id);
    await expectPodGone(pod, [first, second], [firstPid, secondPid, pausePid], pin);
    // Every container the runtime created was deleted through it.
    const created = w.calls().filter((c) => c.verb === 'create').map((c) => c.id).sort();
    const deletes = w.calls().filter((c) => c.verb === 'delete' && c.status === 0);
    const deleted = [...new Set(deletes.map((c) => c.id))].sort();
    expect(created).toEqual([pod.id, first, second].sort());
    expect(deleted).toEqual(created);
    expect(mountsUnder(ws.path('state'))).toEqual([]);
    sameAsHusk(rt, 'remove', { verbs: [...new Set(w.calls().map((c) => c.verb))].sort() });
  },
  removePods,
);
