// The CNI library with fake plugins: small shell scripts in a temporary directory that record
// each call (the CNI_* environment and the config on stdin) and answer as a plugin would. No
// root and no network: nothing here touches a network namespace or a link. One test asks the
// real loopback plugin (Debian's containernetworking-plugins) for its versions.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HuskError } from '../../src/errors';
import { setTracing } from '../../src/host/trace';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  findPlugin,
  listNetworks,
  loadNetwork,
  parseNetwork,
  pluginTimeout,
  pluginVersions,
  resultAddresses,
  type NetworkList,
  type RuntimeConf,
} from '../../src/network/cni';

let tmp: string;
let pluginDir: string;
let spareDir: string;
let callDir: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-cni-'));
  pluginDir = path.join(tmp, 'plugins');
  spareDir = path.join(tmp, 'more-plugins');
  callDir = path.join(tmp, 'calls');
  for (const d of [pluginDir, spareDir, callDir]) fs.mkdirSync(d);
});

afterEach(() => {
  pluginTimeout.ms = 60_000;
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface FakeOptions {
  /** What ADD prints (default: a result naming the plugin). */
  result?: object;
  /** What VERSION says it supports. */
  versions?: string[];
  /** Shell lines run instead of answering (after the call is recorded). */
  instead?: string;
  dir?: string;
}

/** A fake plugin: records its call as calls/N.{call,env,stdin} and answers. */
function fakePlugin(type: string, o: FakeOptions = {}) {
  const result = o.result ?? { cniVersion: '1.0.0', interfaces: [{ name: `by-${type}` }], ips: [{ address: `10.0.0.${type.length}/24` }] };
  const versions = o.versions ?? ['0.3.1', '0.4.0', '1.0.0'];
  const script = [
    '#!/bin/sh',
    `log=${sh(callDir)}`,
    'n=$(cat "$log/count" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$log/count"',
    `echo "${type} $CNI_COMMAND" > "$log/$n.call"`,
    'env > "$log/$n.env"',
    'cat > "$log/$n.stdin"',
    o.instead ??
      [
        'case "$CNI_COMMAND" in',
        `  VERSION) echo ${sh(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: versions }))} ;;`,
        `  ADD) echo ${sh(JSON.stringify(result))} ;;`,
        'esac',
      ].join('\n'),
    '',
  ].join('\n');
  const file = path.join(o.dir ?? pluginDir, type);
  fs.writeFileSync(file, script, { mode: 0o755 });
  return file;
}

interface Call {
  type: string;
  command: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

/** The calls the fake plugins recorded, in order. */
function calls(): Call[] {
  const count = fs.existsSync(path.join(callDir, 'count')) ? Number(fs.readFileSync(path.join(callDir, 'count'), 'utf8')) : 0;
  const out: Call[] = [];
  for (let n = 1; n <= count; n++) {
    const [type, command] = fs.readFileSync(path.join(callDir, `${n}.call`), 'utf8').trim().split(' ');
    const env: Record<string, string> = {};
    for (const line of fs.readFileSync(path.join(callDir, `${n}.env`), 'utf8').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
    }
    out.push({ type, command, env, stdin: JSON.parse(fs.readFileSync(path.join(callDir, `${n}.stdin`), 'utf8')) });
  }
  return out;
}

function network(plugins: object[], extra: object = {}): NetworkList {
  return parseNetwork(JSON.stringify({ cniVersion: '1.0.0', name: 'testnet', plugins, ...extra }), '/etc/cni/net.d/testnet.conflist');
}

/** The whole message, not a part of it: errors are one line. */
const exactly = (message: string) => new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

const rt: RuntimeConf = { containerId: 'a1b2c3', netns: '/run/netns/husk-a1b2c3', ifName: 'eth0' };

describe('configuration files', () => {
  it('reads a conflist', () => {
    const text = JSON.stringify({ cniVersion: '1.0.0', name: 'husk', disableCheck: 'True', plugins: [{ type: 'bridge', bridge: 'husk0' }, { type: 'portmap', capabilities: { portMappings: true } }] });
    const list = parseNetwork(text, '/d/husk.conflist');
    expect(list).toMatchObject({ name: 'husk', cniVersion: '1.0.0', file: '/d/husk.conflist', disableCheck: true });
    expect(list.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
    expect(list.raw).toEqual(JSON.parse(text));
  });

  it('wraps a single plugin .conf into a one-plugin list, as libcni does', () => {
    const conf = { cniVersion: '0.4.0', name: 'old', type: 'bridge', bridge: 'br0', ipam: { type: 'host-local' } };
    const list = parseNetwork(JSON.stringify(conf), '/d/10-old.conf');
    expect(list).toMatchObject({ name: 'old', cniVersion: '0.4.0', disableCheck: false, plugins: [conf] });
    expect(list.raw).toEqual({ cniVersion: '0.4.0', name: 'old', plugins: [conf] });
  });

  it('names the file and what is wrong with it', () => {
    const bad = (text: string) => () => parseNetwork(text, '/d/x.conflist');
    expect(bad('{"name": "x", ')).toThrow(/^\/d\/x\.conflist: not valid JSON: /);
    expect(bad('[]')).toThrow('/d/x.conflist: not a JSON object');
    expect(bad('{"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}')).toThrow('/d/x.conflist: no "name"');
    expect(bad('{"name": "a/b", "cniVersion": "1.0.0", "plugins": []}')).toThrow('/d/x.conflist: network name "a/b": only letters, digits, _ . - and a letter or digit first');
    expect(bad('{"name": "x", "plugins": [{"type": "bridge"}]}')).toThrow('/d/x.conflist: network "x": no "cniVersion"');
    expect(bad('{"name": "x", "cniVersion": "1.0", "plugins": [{"type": "bridge"}]}')).toThrow('/d/x.conflist: network "x": "cniVersion" "1.0" is not a version like "1.0.0"');
    expect(bad('{"name": "x", "cniVersion": "1.0.0", "plugins": []}')).toThrow('/d/x.conflist: network "x": "plugins" is empty');
    expect(bad('{"name": "x", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}, {"bridge": "br0"}]}')).toThrow('/d/x.conflist: network "x": plugins[1] has no "type"');
    expect(bad('{"name": "x", "cniVersion": "1.0.0"}')).toThrow('/d/x.conflist: network "x": neither "plugins" (a list) nor "type" (a single plugin)');
    expect(bad('{"name": "x", "cniVersion": "1.0.0", "disableCheck": "yes", "plugins": [{"type": "bridge"}]}')).toThrow('/d/x.conflist: network "x": "disableCheck" is neither true nor false');
  });

  it('lists the networks of a directory, and a problem for each file that does not parse', () => {
    const dir = path.join(tmp, 'net.d');
    expect(listNetworks(dir)).toEqual({ networks: [], problems: [] });
    fs.mkdirSync(dir);
    fs.mkdirSync(path.join(dir, 'sub.conflist')); // a directory: not a configuration
    fs.writeFileSync(path.join(dir, '10-husk.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'husk', plugins: [{ type: 'bridge' }] }));
    fs.writeFileSync(path.join(dir, '20-broken.conflist'), '{"name": "broken", "cniVersion": ');
    fs.writeFileSync(path.join(dir, '05-single.conf'), JSON.stringify({ cniVersion: '0.3.1', name: 'single', type: 'macvlan' }));
    fs.writeFileSync(path.join(dir, '30-noname.json'), JSON.stringify({ cniVersion: '1.0.0', type: 'bridge' }));
    fs.writeFileSync(path.join(dir, '40-again.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'husk', type: 'ptp' }));
    fs.writeFileSync(path.join(dir, 'README.md'), 'not a configuration');
    const { networks, problems } = listNetworks(dir);
    // .conflist files first, then .conf and .json, each by name (libcni's order).
    expect(networks.map((n) => [n.name, path.basename(n.file)])).toEqual([['husk', '10-husk.conflist'], ['single', '05-single.conf']]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(new RegExp(`^${dir}/20-broken\\.conflist: not valid JSON: `));
    expect(problems.slice(1)).toEqual([
      `${dir}/30-noname.json: no "name"`,
      `${dir}/40-again.conf: network "husk" is also in ${dir}/10-husk.conflist, which is the one used`,
    ]);
  });

  it('loads a network by name, or says which networks there are', () => {
    const dir = path.join(tmp, 'net.d');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'alpha', plugins: [{ type: 'bridge' }] }));
    fs.writeFileSync(path.join(dir, 'b.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'beta', type: 'ptp' }));
    expect(loadNetwork(dir, 'beta').plugins).toEqual([{ cniVersion: '1.0.0', name: 'beta', type: 'ptp' }]);
    expect(() => loadNetwork(dir, 'gamma')).toThrow(`no network "gamma" in ${dir} (networks there: alpha, beta)`);
    expect(() => loadNetwork(path.join(tmp, 'nowhere'), 'husk')).toThrow(`no network "husk" in ${tmp}/nowhere (no networks there)`);

    // The file that holds the name (or is called after it) but does not parse: its own error.
    fs.writeFileSync(path.join(dir, 'c.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'gamma', plugins: [] }));
    expect(() => loadNetwork(dir, 'gamma')).toThrow(`network "gamma": ${dir}/c.conflist: network "gamma": "plugins" is empty`);
    fs.writeFileSync(path.join(dir, 'delta.conflist'), '{ oops');
    expect(() => loadNetwork(dir, 'delta')).toThrow(new RegExp(`^network "delta": ${dir}/delta\\.conflist: not valid JSON: `));
    expect(() => loadNetwork(dir, 'omega')).toThrow(`no network "omega" in ${dir} (networks there: alpha, beta; not readable: c.conflist, delta.conflist)`);
  });
});

describe('plugins', () => {
  it('finds a plugin in the first directory that has it, or names the directories', () => {
    fakePlugin('bridge', { dir: spareDir });
    expect(findPlugin('bridge', [pluginDir, spareDir])).toBe(path.join(spareDir, 'bridge'));
    fakePlugin('bridge');
    expect(findPlugin('bridge', [pluginDir, spareDir])).toBe(path.join(pluginDir, 'bridge'));
    fs.writeFileSync(path.join(pluginDir, 'noexec'), '#!/bin/sh\n', { mode: 0o644 });
    expect(() => findPlugin('noexec', [pluginDir])).toThrow(`plugin "noexec" not found in ${pluginDir}`);
    expect(() => findPlugin('bridge', ['/usr/lib/cni-none', '/opt/cni-none'])).toThrow('plugin "bridge" not found in /usr/lib/cni-none, /opt/cni-none');
    expect(() => findPlugin('../bridge', [pluginDir])).toThrow('plugin type "../bridge" is not a file name');
  });

  it('ADD runs the plugins in order, each with the list name, version and the previous result', async () => {
    fakePlugin('first');
    fakePlugin('second', { result: { ips: [{ address: '10.0.0.9/24' }] } }); // no cniVersion: the list's
    fakePlugin('third');
    const list = network([{ type: 'first', own: 1 }, { type: 'second', name: 'ignored', cniVersion: '0.3.1' }, { type: 'third' }]);
    const args: Array<[string, string]> = [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']];
    const result = await addNetworkList(list, { ...rt, args }, [pluginDir, spareDir]);

    expect(result).toEqual({ cniVersion: '1.0.0', interfaces: [{ name: 'by-third' }], ips: [{ address: '10.0.0.5/24' }] });
    const seen = calls();
    expect(seen.map((c) => `${c.type} ${c.command}`)).toEqual(['first ADD', 'second ADD', 'third ADD']);
    expect(seen[0].stdin).toEqual({ type: 'first', own: 1, name: 'testnet', cniVersion: '1.0.0' });
    expect(seen[1].stdin).toEqual({
      type: 'second',
      name: 'testnet',
      cniVersion: '1.0.0',
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'by-first' }], ips: [{ address: '10.0.0.5/24' }] },
    });
    expect(seen[2].stdin.prevResult).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.9/24' }] });
    for (const c of seen) {
      expect(c.env).toMatchObject({
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: 'a1b2c3',
        CNI_NETNS: '/run/netns/husk-a1b2c3',
        CNI_IFNAME: 'eth0',
        CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web',
        CNI_PATH: `${pluginDir}:${spareDir}`,
      });
      expect(c.env.PATH.split(':')).toContain('/usr/sbin');
      // Nothing else of husk's environment reaches a plugin.
      expect(Object.keys(c.env).filter((k) => !['PATH', 'PWD', 'SHLVL', '_'].includes(k) && !k.startsWith('CNI_'))).toEqual([]);
    }
  });

  it('gives runtimeConfig only the capability arguments a plugin declares', async () => {
    for (const t of ['bridge', 'portmap', 'tuning', 'bandwidth']) fakePlugin(t);
    const list = network([
      { type: 'bridge' },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'tuning', capabilities: { portMappings: false, mac: true }, runtimeConfig: { fromFile: true } },
      { type: 'bandwidth', capabilities: { bandwidth: true }, runtimeConfig: { fromFile: true } },
    ]);
    const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
    await addNetworkList(list, { ...rt, capabilityArgs: { portMappings, bandwidth: { ingressRate: 1000 } } }, [pluginDir]);
    const byType = Object.fromEntries(calls().map((c) => [c.type, c.stdin]));
    expect(byType.bridge.runtimeConfig).toBeUndefined();
    expect(byType.portmap.runtimeConfig).toEqual({ portMappings });
    // Nothing declared and given: the file's own runtimeConfig stays; given: the runtime's replaces it.
    expect(byType.tuning.runtimeConfig).toEqual({ fromFile: true });
    expect(byType.bandwidth.runtimeConfig).toEqual({ bandwidth: { ingressRate: 1000 } });
  });

  it('DEL runs the plugins in reverse order with the ADD result as prevResult', async () => {
    for (const t of ['bridge', 'portmap', 'firewall']) fakePlugin(t);
    const list = network([{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }, { type: 'firewall' }]);
    const added = { cniVersion: '1.0.0', ips: [{ address: '10.73.0.2/16' }] };
    const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'udp' as const, hostIP: '127.0.0.1' }];
    await delNetworkList(list, { ...rt, capabilityArgs: { portMappings } }, added, [pluginDir]);
    const seen = calls();
    expect(seen.map((c) => `${c.type} ${c.command}`)).toEqual(['firewall DEL', 'portmap DEL', 'bridge DEL']);
    for (const c of seen) expect(c.stdin.prevResult).toEqual(added);
    expect(seen[1].stdin.runtimeConfig).toEqual({ portMappings });
    expect(seen[0].env.CNI_COMMAND).toBe('DEL');
  });

  it('DEL without a cached result, and before spec 0.4.0, gives no prevResult', async () => {
    fakePlugin('bridge');
    await delNetworkList(network([{ type: 'bridge' }]), { ...rt, netns: '' }, undefined, [pluginDir]);
    await delNetworkList(network([{ type: 'bridge' }], { cniVersion: '0.3.1' }), rt, { cniVersion: '0.3.1', ips: [] }, [pluginDir]);
    const seen = calls();
    expect(seen.map((c) => [c.stdin.prevResult, c.stdin.cniVersion, c.env.CNI_NETNS])).toEqual([
      [undefined, '1.0.0', ''],
      [undefined, '0.3.1', '/run/netns/husk-a1b2c3'],
    ]);
  });

  it('DEL still runs the plugins before a failing one, and reports every failure', async () => {
    fakePlugin('bridge');
    fakePlugin('portmap', { instead: 'echo \'{"code": 999, "msg": "could not teardown ipv4 dnat"}\'; exit 1' });
    const list = network([{ type: 'bridge' }, { type: 'portmap' }, { type: 'gone' }]);
    await expect(delNetworkList(list, rt, undefined, [pluginDir])).rejects.toThrow(
      `network "testnet": plugin "gone" not found in ${pluginDir}; plugin "portmap" (DEL): could not teardown ipv4 dnat`,
    );
    expect(calls().map((c) => `${c.type} ${c.command}`)).toEqual(['portmap DEL', 'bridge DEL']);
  });

  it('CHECK runs the plugins in order with the ADD result, unless the list disables it', async () => {
    fakePlugin('bridge');
    fakePlugin('firewall');
    const added = { cniVersion: '1.0.0', ips: [{ address: '10.73.0.2/16' }] };
    await checkNetworkList(network([{ type: 'bridge' }, { type: 'firewall' }]), rt, added, [pluginDir]);
    expect(calls().map((c) => [c.type, c.env.CNI_COMMAND, c.stdin.prevResult])).toEqual([
      ['bridge', 'CHECK', added],
      ['firewall', 'CHECK', added],
    ]);
    await checkNetworkList(network([{ type: 'bridge' }], { disableCheck: true }), rt, added, [pluginDir]);
    expect(calls()).toHaveLength(2);
    await expect(checkNetworkList(network([{ type: 'bridge' }], { cniVersion: '0.3.1' }), rt, added, [pluginDir])).rejects.toThrow(
      'network "testnet": cniVersion 0.3.1 has no CHECK (it came with 0.4.0)',
    );
  });

  it('refuses a container id, interface name or CNI_ARGS that plugins would refuse', async () => {
    fakePlugin('bridge');
    const list = network([{ type: 'bridge' }]);
    await expect(addNetworkList(list, { ...rt, containerId: '-x' }, [pluginDir])).rejects.toThrow('network "testnet" (ADD): container id "-x": only letters');
    await expect(addNetworkList(list, { ...rt, ifName: 'a-very-long-name0' }, [pluginDir])).rejects.toThrow('interface name "a-very-long-name0": 1 to 15 characters');
    await expect(addNetworkList(list, { ...rt, netns: '' }, [pluginDir])).rejects.toThrow('network "testnet" (ADD): no network namespace (CNI_NETNS)');
    await expect(addNetworkList(list, { ...rt, args: [['A', 'b;c']] }, [pluginDir])).rejects.toThrow('CNI_ARGS "A=b;c": keys and values without = or ;');
    await expect(addNetworkList(list, { ...rt, args: [['A', 'b=c']] }, [pluginDir])).rejects.toThrow('CNI_ARGS "A=b=c"');
    expect(calls()).toEqual([]);
  });
});

describe('plugin failures', () => {
  it("carries the plugin's own CNI error, one line, naming the network and the plugin", async () => {
    fakePlugin('host-local');
    fakePlugin('bridge', { instead: 'printf \'{\\n  "code": 999,\\n  "msg": "failed to set bridge addr",\\n  "details": "could not add IP address to \\\\"husk0\\\\": permission denied"\\n}\\n\'; exit 1' });
    fakePlugin('portmap');
    const list = network([{ type: 'bridge' }, { type: 'portmap' }]);
    await expect(addNetworkList(list, rt, [pluginDir])).rejects.toThrow(
      exactly('network "testnet": plugin "bridge" (ADD): failed to set bridge addr: could not add IP address to "husk0": permission denied'),
    );
    expect(calls().map((c) => c.type)).toEqual(['bridge']); // the chain stops at the failure
  });

  it('takes the words from stderr when stdout has no CNI error, else the exit status', async () => {
    fakePlugin('loud', { instead: 'echo "panic: runtime error" >&2; echo "goroutine 1 [running]:" >&2; exit 2' });
    fakePlugin('mute', { instead: 'exit 3' });
    fakePlugin('garbled', { instead: 'echo "not json"; exit 0' });
    fakePlugin('silent', { instead: 'exit 0' });
    const dirs = [pluginDir];
    await expect(addNetworkList(network([{ type: 'loud' }]), rt, dirs)).rejects.toThrow(
      exactly('network "testnet": plugin "loud" (ADD): panic: runtime error / goroutine 1 [running]:'),
    );
    await expect(addNetworkList(network([{ type: 'mute' }]), rt, dirs)).rejects.toThrow(exactly('network "testnet": plugin "mute" (ADD): exit status 3, and no message'));
    await expect(addNetworkList(network([{ type: 'garbled' }]), rt, dirs)).rejects.toThrow(
      exactly('network "testnet": plugin "garbled" (ADD): printed something other than a JSON result: not json'),
    );
    await expect(addNetworkList(network([{ type: 'silent' }]), rt, dirs)).rejects.toThrow(exactly('network "testnet": plugin "silent" (ADD): printed no result'));
  });

  it('throws HuskError, which the CLI prints as one line', async () => {
    fakePlugin('mute', { instead: 'exit 3' });
    await expect(addNetworkList(network([{ type: 'mute' }]), rt, [pluginDir])).rejects.toBeInstanceOf(HuskError);
  });

  it('names a missing plugin and the directories searched', async () => {
    await expect(addNetworkList(network([{ type: 'bridge' }]), rt, [pluginDir, spareDir])).rejects.toThrow(
      exactly(`network "testnet": plugin "bridge" not found in ${pluginDir}, ${spareDir}`),
    );
  });

  it('kills a plugin that does not answer in time', async () => {
    pluginTimeout.ms = 300;
    fakePlugin('hang', { instead: 'sleep 30' });
    const started = Date.now();
    await expect(addNetworkList(network([{ type: 'hang' }]), rt, [pluginDir])).rejects.toThrow(exactly('network "testnet": plugin "hang" (ADD): no answer after 0.3 s: killed'));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('takes the answer of a plugin that exits while something it started still holds its stdout', async () => {
    fakePlugin('forks', { instead: `sleep 3 & echo '{"cniVersion": "1.0.0", "ips": []}'; exit 0` });
    const started = Date.now();
    await expect(addNetworkList(network([{ type: 'forks' }]), rt, [pluginDir])).resolves.toEqual({ cniVersion: '1.0.0', ips: [] });
    expect(Date.now() - started).toBeLessThan(2900);
  });
});

describe('version negotiation', () => {
  it("asks each plugin (and each IPAM plugin) for its versions, and names the one that lacks the list's", async () => {
    fakePlugin('bridge', { versions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    fakePlugin('host-local', { versions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
    const list = network([{ type: 'bridge', ipam: { type: 'host-local' } }], { cniVersion: '1.1.0' });
    await expect(pluginVersions(list, [pluginDir])).rejects.toThrow(
      exactly('network "testnet": plugin "host-local" supports CNI versions 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, not the network\'s cniVersion 1.1.0'),
    );
    const seen = calls();
    expect(seen.map((c) => `${c.type} ${c.command}`)).toEqual(['bridge VERSION', 'host-local VERSION']);
    expect(seen[0].stdin).toEqual({ cniVersion: '1.1.0' });
    expect(seen[0].env.CNI_PATH).toBe(pluginDir);

    await pluginVersions(network([{ type: 'bridge', ipam: { type: 'host-local' } }]), [pluginDir]);
    await expect(pluginVersions(network([{ type: 'bridge', ipam: { type: 'dhcp' } }]), [pluginDir])).rejects.toThrow(
      exactly(`network "testnet": plugin "dhcp" not found in ${pluginDir}`),
    );
  });

  it('takes a plugin older than the VERSION command for a 0.1.0 plugin', async () => {
    fakePlugin('ancient', { instead: 'echo \'{"code": 4, "msg": "unknown CNI_COMMAND: VERSION"}\'; exit 1' });
    await pluginVersions(network([{ type: 'ancient' }], { cniVersion: '0.1.0' }), [pluginDir]);
    await expect(pluginVersions(network([{ type: 'ancient' }]), [pluginDir])).rejects.toThrow('plugin "ancient" supports CNI versions 0.1.0, not');
  });

  const loopback = '/usr/lib/cni/loopback';
  it.skipIf(!fs.existsSync(loopback))("the real loopback plugin's VERSION (Debian's containernetworking-plugins)", async () => {
    const lo = (cniVersion: string) => parseNetwork(JSON.stringify({ cniVersion, name: 'lo', type: 'loopback' }), 'lo.conf');
    await pluginVersions(lo('1.0.0'), ['/usr/lib/cni']);
    await pluginVersions(lo('0.4.0'), ['/usr/lib/cni']);
    // 1.1.1 of the plugins speaks spec 1.0.0 at most.
    await expect(pluginVersions(lo('9.0.0'), ['/usr/lib/cni'])).rejects.toThrow(/^network "lo": plugin "loopback" supports CNI versions [0-9., ]*1\.0\.0, not the network's cniVersion 9\.0\.0$/);
  });
});

describe('--trace', () => {
  it('says in plain words which plugin runs for what, and what came of it', async () => {
    fakePlugin('bridge');
    fakePlugin('portmap', { instead: 'echo \'{"code": 7, "msg": "no iptables"}\'; exit 1' });
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk).trimEnd());
      return true;
    });
    setTracing(true);
    try {
      const list = network([{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }]);
      const capabilityArgs = { portMappings: [{ hostPort: 80, containerPort: 80, protocol: 'tcp' as const }] };
      await expect(addNetworkList(list, { ...rt, capabilityArgs }, [pluginDir])).rejects.toThrow('no iptables');
    } finally {
      setTracing(false);
      write.mockRestore();
    }
    const plain = lines.map((l) => l.replace(/\(\d+ ms\)/, '(N ms)'));
    expect(plain).toEqual([
      `[husk] cni: ADD bridge for network "testnet": run ${pluginDir}/bridge for eth0 in /run/netns/husk-a1b2c3 (container a1b2c3), the network config on stdin`,
      '[husk] cni: ADD bridge = result: interfaces by-bridge; addresses 10.0.0.6/24 (N ms)',
      `[husk] cni: ADD portmap for network "testnet": run ${pluginDir}/portmap for eth0 in /run/netns/husk-a1b2c3 (container a1b2c3), the network config on stdin with the previous plugin's result as prevResult and runtimeConfig portMappings`,
      '[husk] cni: ADD portmap = failed (N ms): no iptables',
    ]);
  });
});

describe('results', () => {
  it('finds the addresses of a result of any version, by interface', () => {
    const result = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'husk0' }, { name: 'veth1' }, { name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [{ address: '10.73.0.2/16', gateway: '10.73.0.1', interface: 2 }, { address: 'fd00::2/64', interface: 2 }, { address: '192.168.9.1/24', interface: 0 }, { address: '10.9.9.9/8' }],
    };
    expect(resultAddresses(result, 'eth0')).toEqual(['10.73.0.2/16', 'fd00::2/64', '10.9.9.9/8']);
    expect(resultAddresses(result)).toHaveLength(4);
    expect(resultAddresses({ cniVersion: '0.2.0', ip4: { ip: '10.1.0.5/16' } })).toEqual(['10.1.0.5/16']);
  });
});
