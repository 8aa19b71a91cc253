// Hostile layers: crafted tarballs that try to write outside the layer directory. Every one is
// pulled (the overlay unpack) and, where the pull accepts it, bundled with --copy (layers applied
// on top of each other into one directory): nothing may appear outside the store or the bundle.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectStatus, isRunc, rt, tempDir } from './harness';
import { buildImage, lyingTar, probeLayer, writeLayout, type Entry, type LayerSpec } from './image-fixtures';

afterEach(cleanup);

/** A directory outside everything husk writes, the target of every escape attempt. */
function outside(): string {
  return tempDir('outside-');
}

async function layoutOf(layers: LayerSpec[]): Promise<string> {
  const image = await buildImage({ layers: [probeLayer(), ...layers] });
  const dir = tempDir('layout-');
  writeLayout(dir, [{ tag: 'v1', image }]);
  return `oci:${dir}:v1`;
}

function pull(src: string, store = tempDir('store-')) {
  return { store, res: rt(['image', 'pull', '--store', store, '-q', src]) };
}

function layerPaths(store: string, src: string): string[] {
  const inspect = JSON.parse(rt(['image', 'inspect', '--store', store, src]).stdout);
  return inspect.layers.map((l: { path: string }) => l.path);
}

/** Nothing was created in `dir` (the escape target), and the store holds no half layer. */
function expectUntouched(dir: string, store?: string) {
  expect(fs.readdirSync(dir)).toEqual([]);
  if (store && fs.existsSync(path.join(store, 'tmp'))) {
    expect(fs.readdirSync(path.join(store, 'tmp')).filter((n) => n.startsWith('layer-'))).toEqual([]);
  }
}

const dotdot = (target: string) => `${'../'.repeat(24)}${target.slice(1)}`;

describe.skipIf(isRunc)('hostile layers', () => {
  it('refuses an entry whose name climbs out with ".."', async () => {
    const out = outside();
    const src = await layoutOf([{ entries: [{ path: dotdot(`${out}/escaped`), content: 'pwned' }] }]);
    const { store, res } = pull(src);
    expectStatus(res, 1);
    expect(res.stderr).toContain('the path leaves the root with ".."');
    expectUntouched(out, store);
    expect(JSON.parse(rt(['image', 'list', '--store', store, '--format', 'json']).stdout)).toEqual([]);
  });

  it('keeps an absolute entry name inside the layer', async () => {
    const out = outside();
    const src = await layoutOf([{ entries: [{ path: `${out}/absolute`, content: 'inside' }] }]);
    const { store, res } = pull(src);
    expectStatus(res, 0);
    expectUntouched(out);
    const top = layerPaths(store, src)[1];
    expect(fs.readFileSync(path.join(top, out, 'absolute'), 'utf8')).toBe('inside');
  });

  it('resolves a symlink planted by an earlier entry inside the layer (absolute and "..")', async () => {
    const out = outside();
    const src = await layoutOf([
      {
        entries: [
          { path: 'evil', type: 'symlink', linkname: out },
          { path: 'evil/planted', content: 'via absolute link' },
          { path: 'up', type: 'symlink', linkname: dotdot(out) },
          { path: 'up/planted2', content: 'via relative link' },
          { path: 'chain1', type: 'symlink', linkname: 'chain2' },
          { path: 'chain2', type: 'symlink', linkname: '/../../..' + out },
          { path: 'chain1/planted3', content: 'via a chain' },
        ],
      },
    ]);
    const { store, res } = pull(src);
    expectStatus(res, 0);
    expectUntouched(out);
    const top = layerPaths(store, src)[1];
    expect(fs.readlinkSync(path.join(top, 'evil'))).toBe(out);
    expect(fs.readFileSync(path.join(top, out, 'planted'), 'utf8')).toBe('via absolute link');
    expect(fs.readFileSync(path.join(top, out, 'planted2'), 'utf8')).toBe('via relative link');
    expect(fs.readFileSync(path.join(top, out, 'planted3'), 'utf8')).toBe('via a chain');
  });

  it('resolves a symlink planted by an earlier layer inside the rootfs (--copy applies layers in one directory)', async () => {
    const out = outside();
    const src = await layoutOf([
      { entries: [{ path: 'evil', type: 'symlink', linkname: out }, { path: 'rel', type: 'symlink', linkname: dotdot(out) }] },
      { entries: [{ path: 'evil/planted', content: 'layer 2' }, { path: 'rel/planted2', content: 'layer 2' }] },
    ]);
    const { store, res } = pull(src);
    expectStatus(res, 0);
    expectUntouched(out);
    const bundle = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', '--copy', src, bundle]), 0);
    expectUntouched(out);
    expect(fs.readFileSync(path.join(bundle, 'rootfs', out, 'planted'), 'utf8')).toBe('layer 2');
    expect(fs.readFileSync(path.join(bundle, 'rootfs', out, 'planted2'), 'utf8')).toBe('layer 2');
    // With overlay, the second layer has a directory of its own where the first has the link.
    const overlay = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', src, overlay]), 0);
    expect(fs.lstatSync(path.join(overlay, 'rootfs', 'evil')).isDirectory()).toBe(true);
    expectUntouched(out);
    expectStatus(rt(['image', 'unbundle', '--store', store, overlay]), 0);
  });

  it('replaces a planted symlink by a file instead of writing through it', async () => {
    const out = outside();
    const victim = path.join(tempDir('victim-'), 'file');
    fs.writeFileSync(victim, 'original');
    const src = await layoutOf([
      { entries: [{ path: 'f', type: 'symlink', linkname: victim }] },
      { entries: [{ path: 'f', content: 'overwritten?' }, { path: 'g', type: 'symlink', linkname: victim }, { path: 'g', content: 'same layer' }] },
    ]);
    const { store, res } = pull(src);
    expectStatus(res, 0);
    const bundle = path.join(tempDir('bundle-'), 'b');
    expectStatus(rt(['image', 'bundle', '--store', store, '-q', '--copy', src, bundle]), 0);
    expect(fs.readFileSync(victim, 'utf8')).toBe('original');
    expect(fs.readFileSync(path.join(bundle, 'rootfs', 'f'), 'utf8')).toBe('overwritten?');
    expect(fs.readFileSync(path.join(bundle, 'rootfs', 'g'), 'utf8')).toBe('same layer');
    expectUntouched(out);
  });

  it('refuses hardlinks to anything outside the layer', async () => {
    const victim = path.join(tempDir('victim-'), 'secret');
    fs.writeFileSync(victim, 'secret');
    const cases: Entry[][] = [
      [{ path: 'hl', type: 'link', linkname: dotdot(victim) }],
      [{ path: 'hl', type: 'link', linkname: victim }],
      [{ path: 'sl', type: 'symlink', linkname: path.dirname(victim) }, { path: 'hl', type: 'link', linkname: `sl/${path.basename(victim)}` }],
    ];
    for (const entries of cases) {
      const { store, res } = pull(await layoutOf([{ entries }]));
      expectStatus(res, 1);
      expect(res.stderr).toMatch(/hardlink target .* (is not in this layer|leaves the root)/);
      expect(fs.statSync(victim).nlink).toBe(1);
      expect(fs.readdirSync(path.join(store, 'layers', 'sha256')).length).toBeLessThanOrEqual(1);
    }
  });

  it('allows hardlinks inside the layer, through a symlink that stays inside', async () => {
    const src = await layoutOf([
      { entries: [{ path: 'dir/', type: 'directory' }, { path: 'dir/a', content: 'shared' }, { path: 'link', type: 'symlink', linkname: '/dir' }, { path: 'b', type: 'link', linkname: 'link/a' }] },
    ]);
    const { store, res } = pull(src);
    expectStatus(res, 0);
    const top = layerPaths(store, src)[1];
    expect(fs.statSync(path.join(top, 'b')).ino).toBe(fs.statSync(path.join(top, 'dir', 'a')).ino);
  });

  it('refuses an entry that declares an absurd size, and leaves no partial layer', async () => {
    for (const declared of [2 ** 40, 8 ** 11 + 5, 50 * 1024 * 1024]) {
      const src = await layoutOf([{ tar: await lyingTar('big', declared, 'tiny'), compression: 'gzip' }]);
      const { store, res } = pull(src);
      expectStatus(res, 1);
      expect(res.stderr).toMatch(/more than the \d+ bytes free|Unexpected end of data|header gives/);
      expect(fs.existsSync(path.join(store, 'layers', 'sha256'))).toBe(true);
      expect(fs.readdirSync(path.join(store, 'layers', 'sha256')).length).toBeLessThanOrEqual(1);
      expect(fs.readdirSync(path.join(store, 'tmp')).filter((n) => n.startsWith('layer-'))).toEqual([]);
    }
  });

  it('refuses whiteouts and entries that name the parent of the root', async () => {
    const out = outside();
    fs.writeFileSync(path.join(out, 'keep'), 'x');
    for (const name of [dotdot(`${out}/.wh.keep`), `../.wh.${path.basename(out)}`]) {
      const { store, res } = pull(await layoutOf([{ entries: [{ path: name, content: '' }] }]));
      expectStatus(res, 1);
      expect(fs.existsSync(path.join(out, 'keep'))).toBe(true);
      expectUntouched(fs.mkdtempSync(path.join(out, 'empty-')), store);
    }
  });

  it('does not let a layer set overlayfs attributes of its own', async () => {
    const src = await layoutOf([{ entries: [{ path: 'dir/', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.kept': 'yes' } }] }]);
    const { store, res } = pull(src);
    expectStatus(res, 0);
    const top = layerPaths(store, src)[1];
    const { spawnSync } = await import('node:child_process');
    const get = spawnSync('getfattr', ['-d', '-m', '-', path.join(top, 'dir')], { encoding: 'utf8' });
    expect(get.stdout).toContain('user.kept="yes"');
    expect(get.stdout).not.toContain('trusted.overlay.redirect');
  });

  it('refuses a name that climbs out through a directory of its own ("a/../../b")', async () => {
    const src = await layoutOf([{ entries: [{ path: 'a/../../b', content: 'x' }] }]);
    const { res } = pull(src);
    expectStatus(res, 1);
    expect(res.stderr).toContain('leaves the root');
  });
});
