#!/usr/bin/env node
// npm run bench (the CRI part): how long a Kubernetes pod takes to start through containerd's
// CRI plugin with husk and with runc as the runtime handler: RunPodSandbox (the pause container
// and the pod's CNI network) + CreateContainer + StartContainer, from the first call to the
// last answer, the calls a kubelet makes for a pod of one container. Medians and the ratio.
//
// Set up as test/engines/cri.test.ts sets it up: containerd of our own (root, state and socket
// in a temporary directory) with two handlers, husk (bin/husk) and runc, both
// io.containerd.runc.v2 with BinaryName the runtime itself; it runs in a network namespace made
// here, where the CNI bridge (a private range, no gateway) lives; the image (busybox-static,
// `sleep`) is imported with ctr, nothing is pulled; pods get a kubepods-style cgroup parent. The
// CRI calls go through @grpc/grpc-js with test/engines/cri/runtime-v1.proto. Each pod is
// stopped and removed (untimed) before the next. Needs root; Debian's containerd,
// containernetworking-plugins, busybox-static.
//
// Environment: BENCH_CRI_ROUNDS (default min(BENCH_ROUNDS, 10)) pods per handler, interleaved,
// after one untimed pod each.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const lib = require('./lib');
const { workspace, startContainerd, teardown } = require('./engineSetup');

const REPO = path.resolve(process.env.HUSK_BENCH_REPO || lib.REPO);
const HUSK = path.join(REPO, 'bin', 'husk');
const ROUNDS = Math.max(1, Number(process.env.BENCH_CRI_ROUNDS || Math.min(lib.ROUNDS, 10)));
const IMAGE = 'localhost/husk-bench-cri:latest';
const TARGET = 1.1;
const PROTO = path.join(REPO, 'test', 'engines', 'cri', 'runtime-v1.proto');

/** The CRI's RuntimeService over containerd's socket: call(method, request) -> Promise. */
function criClient(socket) {
  const grpc = require('@grpc/grpc-js');
  const protoLoader = require('@grpc/proto-loader');
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true });
  const api = grpc.loadPackageDefinition(def).runtime.v1;
  const runtime = new api.RuntimeService(`unix:${socket}`, grpc.credentials.createInsecure());
  const images = new api.ImageService(`unix:${socket}`, grpc.credentials.createInsecure());
  const call = (stub, method, request, timeoutMs = 60_000) => new Promise((resolve, reject) => {
    stub[method](request, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(new Error(`CRI ${method}: ${err.details || err.message}`));
      else resolve(res);
    });
  });
  return {
    call: (method, request, timeoutMs) => call(runtime, method, request, timeoutMs),
    image: (method, request) => call(images, method, request, 10_000),
    close: () => {
      runtime.close();
      images.close();
    },
  };
}

/** The kubelet's calls for a pod of one container; returns the ms they took, and the pod. */
async function startPod(cri, handler, i) {
  const uid = crypto.randomUUID();
  const namespaces = { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } };
  const config = {
    metadata: { name: `bench-${handler}-${i}`, uid, namespace: 'default', attempt: 0 },
    hostname: `bench-${handler}`,
    linux: {
      cgroup_parent: `/kubepods/besteffort/pod${uid}`,
      security_context: namespaces,
    },
  };
  const t0 = lib.nowMs();
  const { pod_sandbox_id: pod } = await cri.call('RunPodSandbox', { config, runtime_handler: handler });
  const { container_id: id } = await cri.call('CreateContainer', {
    pod_sandbox_id: pod,
    config: {
      metadata: { name: 'main', attempt: 0 }, image: { image: IMAGE }, linux: { security_context: namespaces },
    },
    sandbox_config: config,
  });
  await cri.call('StartContainer', { container_id: id });
  return { ms: lib.nowMs() - t0, pod, uid };
}

/** StopPodSandbox and RemovePodSandbox, then the pod's cgroup, as the kubelet removes it. */
async function removePod(cri, pod, uid) {
  await cri.call('StopPodSandbox', { pod_sandbox_id: pod });
  await cri.call('RemovePodSandbox', { pod_sandbox_id: pod });
  for (const controller of fs.readdirSync('/sys/fs/cgroup')) {
    try {
      fs.rmdirSync(path.join('/sys/fs/cgroup', controller, 'kubepods', 'besteffort', `pod${uid}`));
    } catch {
      // absent in this hierarchy (or not empty: teardown reports it)
    }
  }
}

async function main() {
  if (process.getuid() !== 0) throw new Error('bench: run as root');
  const runc = lib.which('runc');
  if (!runc) throw new Error('runc is not installed (apt-get install runc)');
  for (const plugin of ['bridge', 'host-local', 'loopback']) {
    if (!fs.existsSync(`/usr/lib/cni/${plugin}`)) {
      throw new Error(`/usr/lib/cni/${plugin} is missing (apt-get install containernetworking-plugins)`);
    }
  }
  const w = workspace('/tmp/husk-bench-cri-');
  const ws = w.dir;
  const netns = `husk-bench-cri-${crypto.randomBytes(4).toString('hex')}`;
  const pinsBefore = new Set(fs.existsSync('/var/run/netns') ? fs.readdirSync('/var/run/netns') : []);
  // libcni's cache, whatever the configuration: removed afterwards if new and empty (restorePaths).
  for (const dir of ['/var/lib/cni/results', '/var/lib/cni']) w.existed.set(dir, fs.existsSync(dir));
  console.log('\ncri: pod start (RunPodSandbox + CreateContainer + StartContainer) through containerd\'s CRI with husk '
    + `(bin/husk) and runc as the handler (${ROUNDS} pods each, interleaved, median ms; one untimed pod first)`);
  let cri;
  try {
    lib.sh(['ip', 'netns', 'add', netns]);
    w.cleanups.push(() => lib.sh(['ip', 'netns', 'delete', netns], { mayFail: true }));
    lib.sh(['ip', '-n', netns, 'link', 'set', 'lo', 'up']);
    fs.mkdirSync(path.join(ws, 'image'));
    const tarball = lib.busyboxImage(path.join(ws, 'image'), IMAGE, 'bench/cri.js', ['/bin/busybox', 'sleep', '3600']);
    const cniConfDir = w.mk('cni');
    fs.writeFileSync(path.join(cniConfDir, '10-bench.conflist'), JSON.stringify({
      cniVersion: '0.4.0', name: 'husk-bench-cri',
      plugins: [{ type: 'bridge', bridge: 'huskbench0', isGateway: false, ipMasq: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.78.0/24' }]], dataDir: w.mk('cni-leases') } }],
    }));
    const { address, ctrArgs } = await startContainerd(w, 'k8s.io', {
      netns: `/run/netns/${netns}`,
      cri: {
        sandboxImage: IMAGE, cniConfDir,
        runtimes: {
          husk: { binary: HUSK, root: w.mk('cri-state-husk') },
          runc: { binary: runc, root: w.mk('cri-state-runc') },
        },
      },
    });
    lib.sh([...ctrArgs, 'images', 'import', tarball]);
    cri = criClient(address);
    // The CRI sees the image, and its network is ready, before the first pod.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const image = await cri.image('ImageStatus', { image: { image: IMAGE } }).catch(() => ({}));
      const status = await cri.call('Status', {}, 10_000).catch(() => ({ status: { conditions: [] } }));
      if (image.image && status.status.conditions.every((c) => c.status)) break;
      if (Date.now() > deadline) throw new Error('the CRI did not become ready within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const client = cri;
    w.cleanups.push(() => lib.sh([...ctrArgs, 'images', 'rm', IMAGE], { mayFail: true }));

    const samples = { husk: [], runc: [] };
    for (const round of ['warmup', ...Array.from({ length: ROUNDS }, (_, i) => i)]) {
      for (const rt of ['husk', 'runc']) {
        const { ms, pod, uid } = await startPod(client, rt, round);
        await removePod(client, pod, uid);
        if (round !== 'warmup') samples[rt].push(ms);
      }
    }
    const husk = lib.median(samples.husk);
    const runcMs = lib.median(samples.runc);
    const ratio = husk / runcMs;
    const ms = (v) => v.toFixed(0).padStart(5);
    const mins = `min husk ${Math.min(...samples.husk).toFixed(0)}, runc ${Math.min(...samples.runc).toFixed(0)}`;
    const figures = `husk ${ms(husk)} ms   runc ${ms(runcMs)} ms   ${ratio.toFixed(2)}x`;
    console.log(`  ${'CRI pod start'.padEnd(34)} ${figures}   (${mins})`);
    lib.record({
      figure: 'CRI pod start (run sandbox, create, start)', path: 'default (door, server)', husk, runc: runcMs,
      unit: 'ms', rounds: ROUNDS, target: `<= ${TARGET}x runc`, met: ratio <= TARGET,
    });
  } finally {
    if (cri) {
      // Pods a failure left: removed through the CRI before containerd stops.
      const left = await cri.call('ListPodSandbox', {}, 10_000).then((r) => r.items, () => []);
      for (const p of left) {
        await cri.call('StopPodSandbox', { pod_sandbox_id: p.id }).catch(() => undefined);
        await cri.call('RemovePodSandbox', { pod_sandbox_id: p.id }).catch(() => undefined);
      }
      cri.close();
    }
    const problems = await teardown(w, /\/kubepods(\/|$)/);
    const pinsNow = fs.existsSync('/var/run/netns') ? fs.readdirSync('/var/run/netns') : [];
    const pins = pinsNow.filter((p) => !pinsBefore.has(p) && p.startsWith('cni-'));
    for (const pin of pins) {
      problems.push(`network namespace pin left: ${pin}`);
      lib.sh(['ip', 'netns', 'delete', pin], { mayFail: true });
    }
    if (problems.length) console.log(`  cri left things behind (removed): ${problems.join('; ')}`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench: cri: ${err.stack || err.message}\n`);
  process.exit(1);
});
