// Images that move without a registry: OCI layouts, `docker save` archives (legacy and OCI form)
// and OCI archives written by skopeo, read by husk; and a differential test: umoci unpacks the
// same image, and its rootfs must equal husk's (--copy and the overlay mount) path by path.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, expectStatus, isRunc, rt, tempDir, which } from './harness';
import { buildImage, makeTar, probeLayer, pushLayout, skopeo, startRegistry, writeLayout, type BuiltImage, type Registry } from './image-fixtures';

afterEach(cleanup);

let image: BuiltImage;
let other: BuiltImage;
let layoutDir: string;

beforeAll(async () => {
  image = await buildImage({ layers: [probeLayer(), { entries: [{ path: 'etc/motd', content: 'from an archive\n' }] }], config: { Cmd: ['/probe', 'cat', '/etc/motd'] } });
  other = await buildImage({ layers: [probeLayer(), { entries: [{ path: 'etc/motd', content: 'the other one\n' }] }], config: { Cmd: ['/probe', 'cat', '/etc/motd'] } });
  layoutDir = fs.mkdtempSync('/tmp/husk-sources-layout-');
  writeLayout(layoutDir, [{ tag: 'v1', image }, { tag: 'v2', image: other }]);
});

afterAll(() => fs.rmSync(layoutDir, { recursive: true, force: true }));

function pullAndRun(src: string, store = tempDir('store-')) {
  const pull = rt(['image', 'pull', '--store', store, src]);
  expectStatus(pull, 0);
  const run = rt(['image', 'run', '--store', store, '--rm', '-q', src]);
  expectStatus(run, 0);
  return { store, pull, run };
}

describe.skipIf(isRunc)('archives and layouts written by skopeo', () => {
  it('reads a docker-archive (the legacy manifest.json form), by its only image, by tag and by index', () => {
    const dir = tempDir('archive-');
    const file = path.join(dir, 'one.tar');
    skopeo(['copy', '--quiet', `oci:${layoutDir}:v1`, `docker-archive:${file}:tests/archived:v1`]);
    const { store, run } = pullAndRun(`docker-archive:${file}`);
    expect(run.stdout).toBe('from an archive\n');
    const inspect = JSON.parse(rt(['image', 'inspect', '--store', store, 'tests/archived:v1']).stdout);
    expect(inspect.id).toBe(image.configDigest);
    expect(inspect.names).toContain('docker.io/tests/archived:v1');

    // Two images in one archive: a name or @N picks one, none is an error that lists them.
    const two = path.join(dir, 'two.tar');
    skopeo(['copy', '--quiet', `oci:${layoutDir}:v1`, `docker-archive:${two}:tests/archived:v1`]);
    fs.rmSync(two);
    skopeo(['copy', '--quiet', '--additional-tag', 'tests/other:v2', `oci:${layoutDir}:v2`, `docker-archive:${two}:tests/archived:v2`]);
    const byTag = pullAndRun(`docker-archive:${two}:tests/other:v2`);
    expect(byTag.run.stdout).toBe('the other one\n');
    const byIndex = pullAndRun(`docker-archive:${two}:@0`);
    expect(byIndex.run.stdout).toBe('the other one\n');
    const wrong = rt(['image', 'pull', '--store', tempDir('store-'), `docker-archive:${two}:tests/nothing:1`]);
    expectStatus(wrong, 1);
    expect(wrong.stderr).toContain('no image tagged docker.io/tests/nothing:1 in the archive');
  });

  it('reads an oci-archive and an OCI layout by tag, and asks for a tag when there are several', () => {
    const file = path.join(tempDir('archive-'), 'img.tar');
    skopeo(['copy', '--quiet', `oci:${layoutDir}:v1`, `oci-archive:${file}:v1`]);
    const { store, run } = pullAndRun(`oci-archive:${file}:v1`);
    expect(run.stdout).toBe('from an archive\n');
    expect(JSON.parse(rt(['image', 'inspect', '--store', store, `oci-archive:${file}:v1`]).stdout).digest).toBe(image.manifestDigest);
    expect(pullAndRun(`oci:${layoutDir}:v2`).run.stdout).toBe('the other one\n');
    const ambiguous = rt(['image', 'pull', '--store', tempDir('store-'), `oci:${layoutDir}`]);
    expectStatus(ambiguous, 1);
    expect(ambiguous.stderr).toContain('the layout holds 2 images: name one (v1, v2)');
    const missing = rt(['image', 'pull', '--store', tempDir('store-'), `oci:${layoutDir}:v9`]);
    expectStatus(missing, 1);
    expect(missing.stderr).toContain('no image named "v9" in the layout (it has: v1, v2)');
  });

  it('reads what skopeo copies out of a registry into an OCI layout', async () => {
    let registry: Registry | undefined;
    try {
      registry = await startRegistry();
      pushLayout(layoutDir, 'v1', registry, 'tests/copied:v1');
      const out = tempDir('copied-');
      skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${registry.host}/tests/copied:v1`, `oci:${out}:copied`]);
      expect(pullAndRun(`oci:${out}:copied`).run.stdout).toBe('from an archive\n');
    } finally {
      await registry?.stop();
    }
  });

  it('reads a docker save archive in the OCI form newer Docker writes (index.json, blobs/ and manifest.json)', async () => {
    const entries = [
      { path: 'oci-layout', content: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
      {
        path: 'index.json',
        content: JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [{ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/tests/saved:v1', 'org.opencontainers.image.ref.name': 'v1' } }],
        }),
      },
      { path: 'blobs/', type: 'directory' as const },
      { path: 'blobs/sha256/', type: 'directory' as const },
      ...[...image.blobs].map(([d, b]) => ({ path: `blobs/sha256/${d.slice(7)}`, content: b })),
      {
        path: 'manifest.json',
        content: JSON.stringify([{ Config: `blobs/sha256/${image.configDigest.slice(7)}`, RepoTags: ['tests/saved:v1'], Layers: image.diffIDs.map((_, i) => `blobs/sha256/${JSON.parse(image.manifest.toString()).layers[i].digest.slice(7)}`) }]),
      },
    ];
    const file = path.join(tempDir('archive-'), 'saved.tar');
    fs.writeFileSync(file, await makeTar(entries));
    const { store, run } = pullAndRun(`docker-archive:${file}`);
    expect(run.stdout).toBe('from an archive\n');
    expect(JSON.parse(rt(['image', 'inspect', '--store', store, 'tests/saved:v1']).stdout).id).toBe(image.configDigest);
  });

  it('fails clearly on a layout blob whose bytes do not match its digest', () => {
    const dir = tempDir('layout-');
    writeLayout(dir, [{ tag: 'v1', image }]);
    const layer = JSON.parse(image.manifest.toString()).layers[1].digest as string;
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', layer.slice(7)), zlib.gzipSync(Buffer.from('something else')));
    const store = tempDir('store-');
    const res = rt(['image', 'pull', '--store', store, `oci:${dir}:v1`]);
    expectStatus(res, 1);
    expect(res.stderr).toMatch(/size \d+ bytes, but its descriptor gives|digest mismatch/);
    expect(fs.existsSync(path.join(store, 'blobs', 'sha256', layer.slice(7)))).toBe(false);
  });
});

// ------------------------------------------------------------------------------ umoci

/** One line per path: type, mode, owner, size, content hash / link target / device, mtime, user xattrs. */
function describeTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const xattrs = new Map<string, string[]>();
  const get = spawnSync('getfattr', ['-R', '-P', '-d', '-m', '^user\\.', '--absolute-names', root], { encoding: 'utf8' });
  let current = '';
  for (const line of get.stdout.split('\n')) {
    if (line.startsWith('# file: ')) current = path.relative(root, line.slice(8));
    else if (line && !line.startsWith('#')) xattrs.set(current, [...(xattrs.get(current) ?? []), line]);
  }
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(abs);
    let what: string;
    if (st.isDirectory()) what = 'dir';
    else if (st.isSymbolicLink()) what = `symlink -> ${fs.readlinkSync(abs)}`;
    else if (st.isFile()) {
      const first = inodes.get(st.ino);
      if (!first) inodes.set(st.ino, rel);
      what = `file ${st.size} ${createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16)}${first ? ` hardlink of ${first}` : ''}`;
    } else if (st.isCharacterDevice()) what = `char ${st.rdev >> 8}:${st.rdev & 0xff}`;
    else if (st.isBlockDevice()) what = `block ${st.rdev >> 8}:${st.rdev & 0xff}`;
    else if (st.isFIFO()) what = 'fifo';
    else what = 'other';
    if (rel) {
      const mtime = st.isDirectory() ? '' : ` mtime ${Math.floor(st.mtimeMs / 1000)}`;
      out.set(rel, `${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}${mtime}${xattrs.has(rel) ? ` ${xattrs.get(rel)!.sort().join(' ')}` : ''}`);
    }
    if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
  };
  walk('');
  return out;
}

function diffTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(key) !== b.get(key)) out.push(`${key}: ${a.get(key) ?? '(missing)'}  vs  ${b.get(key) ?? '(missing)'}`);
  }
  return out.sort();
}

describe.skipIf(isRunc || !which('umoci'))('husk unpacks like umoci', () => {
  it('gives the same rootfs tree as umoci unpack, with --copy and through the overlay mount', async () => {
    const when = (s: number) => new Date(Date.UTC(2023, 0, 1) + s * 1000);
    const longName = `long/${'d'.repeat(90)}/${'f'.repeat(120)}`;
    const rich = await buildImage({
      layers: [
        probeLayer([
          { path: 'modes/', type: 'directory', mode: 0o2775, uid: 1000, gid: 50 },
          { path: 'modes/private', content: 'p', mode: 0o600, uid: 1000, gid: 1000, mtime: when(1) },
          { path: 'modes/setuid', content: 's', mode: 0o4755, mtime: when(2) },
          { path: 'modes/setgid', content: 'g', mode: 0o2711, gid: 50, mtime: when(3) },
          { path: 'modes/readonly', content: 'r', mode: 0o444, mtime: when(4) },
          { path: 'modes/empty', content: '', mtime: when(5) },
          { path: 'modes/sticky/', type: 'directory', mode: 0o1777 },
          { path: 'links/', type: 'directory' },
          { path: 'links/relative', type: 'symlink', linkname: '../modes/private', mtime: when(6) },
          { path: 'links/absolute', type: 'symlink', linkname: '/etc/passwd', mtime: when(7) },
          { path: 'links/dangling', type: 'symlink', linkname: 'nowhere/at/all', mtime: when(8) },
          { path: 'links/hard1', content: 'linked', mtime: when(9) },
          { path: 'links/hard2', type: 'link', linkname: 'links/hard1' },
          { path: 'devices/', type: 'directory' },
          { path: 'devices/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666, mtime: when(10) },
          { path: 'devices/loop', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6, mtime: when(11) },
          { path: 'devices/fifo', type: 'fifo', mode: 0o644, mtime: when(12) },
          { path: 'xattrs', content: 'x', pax: { 'SCHILY.xattr.user.note': 'hello', 'SCHILY.xattr.user.other': 'v' }, mtime: when(13) },
          { path: `${longName}`, content: 'long', mtime: when(14) },
          { path: 'unicode/', type: 'directory' },
          { path: 'unicode/héllo wörld', content: 'ü', mtime: when(15) },
          { path: 'gone', content: 'removed later', mtime: when(16) },
          { path: 'gonedir/', type: 'directory' },
          { path: 'gonedir/inner', content: 'x', mtime: when(17) },
          { path: 'opq/', type: 'directory' },
          { path: 'opq/old1', content: 'old', mtime: when(18) },
          { path: 'opq/sub/', type: 'directory' },
          { path: 'opq/sub/old2', content: 'old', mtime: when(19) },
          { path: 'becomes-dir', content: 'file first', mtime: when(20) },
          { path: 'becomes-file/', type: 'directory' },
          { path: 'becomes-file/child', content: 'c', mtime: when(21) },
          { path: 'link-becomes-file', type: 'symlink', linkname: 'gone', mtime: when(22) },
          { path: 'rechown/', type: 'directory', mode: 0o755 },
        ]),
        {
          entries: [
            { path: '.wh.gone', content: '' },
            { path: '.wh.gonedir', content: '' },
            { path: 'opq/', type: 'directory' },
            { path: 'opq/.wh..wh..opq', content: '' },
            { path: 'opq/new', content: 'new', mtime: when(30) },
            { path: 'becomes-dir/', type: 'directory' },
            { path: 'becomes-dir/x', content: 'x', mtime: when(31) },
            { path: 'becomes-file', content: 'now a file', mtime: when(32) },
            { path: 'link-becomes-file', content: 'not a link', mtime: when(33) },
            { path: 'rechown/', type: 'directory', mode: 0o700, uid: 1001, gid: 1001 },
            { path: 'modes/private', content: 'changed', mode: 0o640, uid: 1001, gid: 50, mtime: when(34) },
            { path: 'implicit/parent/file', content: 'no dir entries', mtime: when(35) },
          ],
        },
        {
          compression: 'none',
          entries: [
            { path: 'gone', content: 'back again', mtime: when(40) },
            { path: 'opq/sub2/', type: 'directory' },
            { path: 'opq/sub2/y', content: 'y', mtime: when(41) },
            { path: 'links/hard3', type: 'link', linkname: 'gone' },
          ],
        },
      ],
    });
    const dir = tempDir('layout-');
    writeLayout(dir, [{ tag: 'rich', image: rich }]);

    const umociBundle = path.join(tempDir('umoci-'), 'bundle');
    const u = spawnSync('umoci', ['unpack', '--image', `${dir}:rich`, umociBundle], { encoding: 'utf8' });
    expect(u.status, u.stderr).toBe(0);
    const expected = describeTree(path.join(umociBundle, 'rootfs'));
    expect(expected.get('gone')).toMatch(/^file 10 /);
    expect(expected.has('opq/old1')).toBe(false);

    const store = tempDir('store-');
    const copy = path.join(tempDir('bundle-'), 'copy');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', '--copy', `oci:${dir}:rich`, copy]), 0);
    expect(diffTrees(expected, describeTree(path.join(copy, 'rootfs')))).toEqual([]);

    const overlay = path.join(tempDir('bundle-'), 'overlay');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', `oci:${dir}:rich`, overlay]), 0);
    try {
      expect(diffTrees(expected, describeTree(path.join(overlay, 'rootfs')))).toEqual([]);
    } finally {
      expectStatus(rt(['image', 'unbundle', '--store', store, overlay]), 0);
    }
  });
});
