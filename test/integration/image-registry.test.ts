// `husk image pull` from a registry: Debian's docker-registry on 127.0.0.1, loaded with images
// the tests build and push with skopeo. Anonymous, htpasswd (basic) and bearer-token auth,
// `husk image login`, OCI and Docker schema 2 manifests, indexes and platforms, digest checks.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, expectStatus, isRunc, parseReport, rt, tempDir } from './harness';
import {
  buildImage,
  probeLayer,
  pushLayout,
  skopeo,
  startRegistry,
  startTokenServer,
  writeLayout,
  type BuiltImage,
  type Registry,
  type TokenServer,
} from './image-fixtures';

afterEach(cleanup);

let image: BuiltImage;
let arm64: BuiltImage;
let layoutDir: string;
let registry: Registry;

beforeAll(async () => {
  image = await buildImage({
    layers: [probeLayer(), { entries: [{ path: 'etc/motd', content: 'from the registry\n' }], compression: 'zstd' }],
    config: { Cmd: ['/probe', 'cat', '/etc/motd'] },
  });
  arm64 = await buildImage({ layers: [{ entries: [{ path: 'arch', content: 'arm64\n' }] }], architecture: 'arm64', variant: 'v8', config: { Cmd: ['/probe'] } });
  // Docker schema 2 has no zstd: the same content, gzip only.
  const gzipped = await buildImage({
    layers: [probeLayer(), { entries: [{ path: 'etc/motd', content: 'from the registry\n' }] }],
    config: { Cmd: ['/probe', 'cat', '/etc/motd'] },
  });
  layoutDir = fs.mkdtempSync('/tmp/husk-registry-layout-');
  writeLayout(layoutDir, [{ tag: 'v1', image }, { tag: 'gz', image: gzipped }]);
  fs.mkdirSync(path.join(layoutDir, 'multi'));
  writeLayout(path.join(layoutDir, 'multi'), [{ image }, { image: arm64 }], { tag: 'multi' });
  registry = await startRegistry();
  pushLayout(layoutDir, 'v1', registry, 'tests/probe:v1');
  pushLayout(path.join(layoutDir, 'multi'), 'multi', registry, 'tests/multi:1', undefined, true);
  skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${layoutDir}:gz`, `docker://${registry.host}/tests/docker:v1`]);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  fs.rmSync(layoutDir, { recursive: true, force: true });
});

function pull(store: string, ref: string, extra: string[] = [], env: Record<string, string> = {}) {
  return rt(['image', 'pull', '--store', store, ...extra, ref], { env: { DOCKER_CONFIG: tempDir('docker-config-'), ...env } });
}

describe.skipIf(isRunc)('pull from a registry', () => {
  it('pulls an OCI image over plain HTTP on loopback, lists, inspects and runs it', () => {
    const store = tempDir('store-');
    const res = pull(store, `${registry.host}/tests/probe:v1`);
    expectStatus(res, 0);
    expect(res.stdout).toBe(`${registry.host}/tests/probe:v1\n`);
    expect(res.stderr).toContain(`Digest: ${image.manifestDigest}`);
    const list = rt(['image', 'list', '--store', store, '--format', 'json']);
    expectStatus(list, 0);
    const rows = JSON.parse(list.stdout);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ repository: `${registry.host}/tests/probe`, tag: 'v1', digest: image.manifestDigest, id: image.configDigest, platform: 'linux/amd64' });
    const table = rt(['image', 'list', '--store', store]);
    expect(table.stdout.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+PLATFORM\s+SIZE$/);
    const inspect = JSON.parse(rt(['image', 'inspect', '--store', store, `${registry.host}/tests/probe:v1`]).stdout);
    expect(inspect.digest).toBe(image.manifestDigest);
    expect(inspect.layers.map((l: { diffID: string }) => l.diffID)).toEqual(image.diffIDs);
    expect(inspect.config.config.Cmd).toEqual(['/probe', 'cat', '/etc/motd']);
    const run = rt(['image', 'run', '--store', store, '--rm', `${registry.host}/tests/probe:v1`]);
    expectStatus(run, 0);
    expect(run.stdout).toBe('from the registry\n');
  });

  it('stores each blob once, and a second pull fetches nothing', () => {
    const store = tempDir('store-');
    expectStatus(pull(store, `${registry.host}/tests/probe:v1`), 0);
    const again = pull(store, `${registry.host}/tests/probe:v1`);
    expectStatus(again, 0);
    expect(again.stderr).toMatch(/already in the store/);
    expect(again.stderr).not.toMatch(/downloaded/);
    const blobs = fs.readdirSync(path.join(store, 'blobs', 'sha256')).sort();
    expect(blobs).toEqual([...image.blobs.keys()].map((d) => d.slice(7)).sort());
    expect(fs.readdirSync(path.join(store, 'layers', 'sha256')).sort()).toEqual(image.diffIDs.map((d) => d.slice(7)).sort());
    expect(fs.readdirSync(path.join(store, 'tmp'))).toEqual([]);
  });

  it('pulls by digest and checks the manifest against it', () => {
    const store = tempDir('store-');
    expectStatus(pull(store, `${registry.host}/tests/probe@${image.manifestDigest}`), 0);
    const wrong = pull(store, `${registry.host}/tests/probe@sha256:${'0'.repeat(64)}`);
    expectStatus(wrong, 1);
    expect(wrong.stderr).toMatch(/manifest unknown|not found/);
  });

  it('pulls Docker schema 2 manifests', () => {
    const store = tempDir('store-');
    expectStatus(pull(store, `${registry.host}/tests/docker:v1`), 0);
    const inspect = JSON.parse(rt(['image', 'inspect', '--store', store, `${registry.host}/tests/docker:v1`]).stdout);
    expect(inspect.layers[0].mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    const run = rt(['image', 'run', '--store', store, '--rm', '-q', `${registry.host}/tests/docker:v1`]);
    expect(run.stdout).toBe('from the registry\n');
  });

  it('picks the platform from an index, and lists the available ones when none matches', () => {
    const store = tempDir('store-');
    expectStatus(pull(store, `${registry.host}/tests/multi:1`), 0);
    expect(JSON.parse(rt(['image', 'inspect', '--store', store, `${registry.host}/tests/multi:1`]).stdout).digest).toBe(image.manifestDigest);
    const store2 = tempDir('store-');
    expectStatus(pull(store2, `${registry.host}/tests/multi:1`, ['--platform', 'linux/arm64']), 0);
    const inspect = JSON.parse(rt(['image', 'inspect', '--store', store2, `${registry.host}/tests/multi:1`]).stdout);
    expect(inspect.digest).toBe(arm64.manifestDigest);
    expect(inspect.platform).toBe('linux/arm64');
    const none = pull(tempDir('store-'), `${registry.host}/tests/multi:1`, ['--platform', 'linux/s390x']);
    expectStatus(none, 1);
    expect(none.stderr).toContain('no image for platform linux/s390x; available: linux/amd64, linux/arm64');
  });

  it('says clearly when the repository or tag does not exist', () => {
    const res = pull(tempDir('store-'), `${registry.host}/tests/nothing:here`);
    expectStatus(res, 1);
    expect(res.stderr).toMatch(/^husk: image pull .*tests\/nothing:here: not found/);
  });

  it('speaks plain HTTP only to loopback names or registries marked insecure', () => {
    // The same registry under a name husk does not take for loopback: TLS fails, and the
    // error says how to allow plain HTTP.
    const mapped = `[::ffff:127.0.0.1]:${registry.port}`;
    const refused = pull(tempDir('store-'), `${mapped}/tests/probe:v1`);
    expectStatus(refused, 1);
    expect(refused.stderr).toContain(`--insecure-registry ${mapped}`);
    expectStatus(pull(tempDir('store-'), `${mapped}/tests/probe:v1`, ['--insecure-registry', mapped]), 0);
    expectStatus(pull(tempDir('store-'), `${mapped}/tests/probe:v1`, [], { HUSK_INSECURE_REGISTRIES: mapped }), 0);
  });

  it('says which registry could not be reached', () => {
    const res = pull(tempDir('store-'), 'registry.invalid:5000/x:1');
    expectStatus(res, 1);
    expect(res.stderr).toContain('registry registry.invalid:5000: getaddrinfo ENOTFOUND registry.invalid');
  });

  it('fails on a blob whose bytes do not match its digest, leaving no partial blob', () => {
    // Corrupt the layer blob in the registry's storage: the registry serves it as it is.
    const layerDigest = [...image.blobs.keys()].find((d) => d !== image.manifestDigest && d !== image.configDigest)!;
    const hex = layerDigest.slice(7);
    const data = path.join(registry.dir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const original = fs.readFileSync(data);
    const corrupted = Buffer.from(original);
    corrupted[corrupted.length >> 1] ^= 0xff;
    fs.writeFileSync(data, corrupted);
    try {
      const store = tempDir('store-');
      const res = pull(store, `${registry.host}/tests/probe:v1`);
      expectStatus(res, 1);
      expect(res.stderr).toContain(`digest mismatch`);
      expect(fs.existsSync(path.join(store, 'blobs', 'sha256', hex))).toBe(false);
      expect(fs.readdirSync(path.join(store, 'tmp')).filter((n) => n.includes(hex))).toEqual([]);
      expect(JSON.parse(rt(['image', 'list', '--store', store, '--format', 'json']).stdout)).toEqual([]);
    } finally {
      fs.writeFileSync(data, original);
    }
  });
});

describe.skipIf(isRunc)('registry authentication', () => {
  let basic: Registry;
  let tokenRegistry: Registry;
  let tokens: TokenServer;

  beforeAll(async () => {
    basic = await startRegistry({ htpasswd: { user: 'tester', password: 'secret-pw' } });
    pushLayout(layoutDir, 'v1', basic, 'private/probe:v1', 'tester:secret-pw');
    tokens = await startTokenServer('tester', 'token-pw');
    tokenRegistry = await startRegistry({ token: tokens });
    pushLayout(layoutDir, 'v1', tokenRegistry, 'public/probe:v1', 'tester:token-pw');
    pushLayout(layoutDir, 'v1', tokenRegistry, 'private/probe:v1', 'tester:token-pw');
  }, 120_000);

  afterAll(async () => {
    await basic?.stop();
    await tokenRegistry?.stop();
    await tokens?.stop();
  });

  function dockerConfig(entries: Record<string, { auth: string }>): string {
    const dir = tempDir('docker-config-');
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: entries }));
    return dir;
  }

  it('basic auth (htpasswd): refused without credentials, pulls with those in config.json', () => {
    const anonymous = pull(tempDir('store-'), `${basic.host}/private/probe:v1`);
    expectStatus(anonymous, 1);
    expect(anonymous.stderr).toContain('husk image login');
    const config = dockerConfig({ [basic.host]: { auth: Buffer.from('tester:secret-pw').toString('base64') } });
    expectStatus(pull(tempDir('store-'), `${basic.host}/private/probe:v1`, [], { DOCKER_CONFIG: config }), 0);
    const wrong = dockerConfig({ [`http://${basic.host}`]: { auth: Buffer.from('tester:nope').toString('base64') } });
    const refused = pull(tempDir('store-'), `${basic.host}/private/probe:v1`, [], { DOCKER_CONFIG: wrong });
    expectStatus(refused, 1);
    expect(refused.stderr).toContain('unauthorized');
  });

  it('husk image login checks the password and saves it where docker keeps it', () => {
    const config = tempDir('docker-config-');
    const bad = rt(['image', 'login', '-u', 'tester', '--password-stdin', basic.host], { input: 'wrong\n', env: { DOCKER_CONFIG: config } });
    expectStatus(bad, 1);
    expect(fs.existsSync(path.join(config, 'config.json'))).toBe(false);
    const good = rt(['image', 'login', '-u', 'tester', '--password-stdin', basic.host], { input: 'secret-pw\n', env: { DOCKER_CONFIG: config } });
    expectStatus(good, 0);
    const saved = JSON.parse(fs.readFileSync(path.join(config, 'config.json'), 'utf8'));
    expect(Buffer.from(saved.auths[basic.host].auth, 'base64').toString()).toBe('tester:secret-pw');
    expectStatus(pull(tempDir('store-'), `${basic.host}/private/probe:v1`, [], { DOCKER_CONFIG: config }), 0);
    expectStatus(rt(['image', 'logout', basic.host], { env: { DOCKER_CONFIG: config } }), 0);
    expect(JSON.parse(fs.readFileSync(path.join(config, 'config.json'), 'utf8')).auths).toEqual({});
  });

  it('bearer tokens: anonymous token for a public repository, credentials for a private one', () => {
    const before = tokens.requests.length;
    expectStatus(pull(tempDir('store-'), `${tokenRegistry.host}/public/probe:v1`), 0);
    const asked = tokens.requests.slice(before);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((r) => r.user === 'anonymous')).toBe(true);
    expect(asked[0].scope).toBe('repository:public/probe:pull');

    const anonymous = pull(tempDir('store-'), `${tokenRegistry.host}/private/probe:v1`);
    expectStatus(anonymous, 1);
    expect(anonymous.stderr).toContain('unauthorized');

    const config = dockerConfig({ [tokenRegistry.host]: { auth: Buffer.from('tester:token-pw').toString('base64') } });
    const mark = tokens.requests.length;
    expectStatus(pull(tempDir('store-'), `${tokenRegistry.host}/private/probe:v1`, [], { DOCKER_CONFIG: config }), 0);
    expect(tokens.requests.slice(mark).some((r) => r.user === 'tester' && r.granted.includes('pull'))).toBe(true);

    const wrong = dockerConfig({ [tokenRegistry.host]: { auth: Buffer.from('tester:bad').toString('base64') } });
    const refused = pull(tempDir('store-'), `${tokenRegistry.host}/private/probe:v1`, [], { DOCKER_CONFIG: wrong });
    expectStatus(refused, 1);
    expect(refused.stderr).toContain('token endpoint');
    expect(refused.stderr).toContain('401');
  });

  it('husk image login works through the token endpoint too', () => {
    const config = tempDir('docker-config-');
    const bad = rt(['image', 'login', '-u', 'tester', '--password-stdin', tokenRegistry.host], { input: 'nope\n', env: { DOCKER_CONFIG: config } });
    expectStatus(bad, 1);
    expect(bad.stderr).toContain('401 (wrong user name or password?)');
    expectStatus(rt(['image', 'login', '-u', 'tester', '--password-stdin', tokenRegistry.host], { input: 'token-pw\n', env: { DOCKER_CONFIG: config } }), 0);
    expectStatus(pull(tempDir('store-'), `${tokenRegistry.host}/private/probe:v1`, [], { DOCKER_CONFIG: config }), 0);
  });

  it('runs an image pulled with a token', () => {
    const store = tempDir('store-');
    const res = rt(['image', 'run', '--store', store, '--rm', '-q', `${tokenRegistry.host}/public/probe:v1`, '/probe', 'report'], { env: { DOCKER_CONFIG: tempDir('docker-config-') } });
    expectStatus(res, 0);
    expect(parseReport(res.stdout).pid).toBe(1);
  });
});
