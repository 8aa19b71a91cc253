// Layer unpacking without root: path resolution that never leaves the root, flatten mode's
// whiteouts and opaque directories, compression, and hostile entries. (The overlay mode's
// character-device whiteouts and xattrs need root: test/integration/image-*.test.ts.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import * as tar from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readFileInRoot, resolveInRoot } from '../../src/host/rootfs';
import { cleanName, RootedTree } from '../../src/image/tree';
import { unpackLayer } from '../../src/image/unpack';
import { sniffCompression } from '../../src/image/compression';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-unpack-'));
  dirs.push(d);
  return d;
}

interface E {
  name: string;
  type?: tar.Header['type'];
  content?: string;
  linkname?: string;
  mode?: number;
  mtime?: Date;
}

async function tarOf(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? (e.content !== undefined ? 'file' : 'directory');
    const header = { name: e.name, type, linkname: e.linkname, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: e.mtime ?? new Date(1e12), size: e.content?.length ?? 0 };
    await new Promise<void>((resolve, reject) => {
      const written = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.content !== undefined) pack.entry(header, e.content, written);
      else pack.entry(header, written);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function layer(entries: E[], compress: (b: Buffer) => Buffer = (b) => b): Promise<string> {
  const file = path.join(tmp(), 'layer');
  fs.writeFileSync(file, compress(await tarOf(entries)));
  return file;
}

const apply = (blob: string, root: string) => unpackLayer(blob, root, { mode: 'flatten', what: 'layer', sameOwner: false });

describe('cleanName and RootedTree', () => {
  it('cleans names lexically and refuses to climb out', () => {
    expect(cleanName('./a//b/./c/')).toEqual(['a', 'b', 'c']);
    expect(cleanName('/abs/x')).toEqual(['abs', 'x']);
    expect(cleanName('a/../b')).toEqual(['b']);
    expect(cleanName('.')).toEqual([]);
    expect(() => cleanName('../x')).toThrow('the path leaves the root');
    expect(() => cleanName('a/../../x')).toThrow('the path leaves the root');
  });

  it('follows symlinks as if the root were /', () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'real'));
    fs.symlinkSync('/real', path.join(root, 'abs'));
    fs.symlinkSync('../../../../real', path.join(root, 'up'));
    fs.symlinkSync('loop2', path.join(root, 'loop1'));
    fs.symlinkSync('loop1', path.join(root, 'loop2'));
    fs.writeFileSync(path.join(root, 'file'), '');
    const tree = new RootedTree(root);
    expect(tree.resolveDir(['abs'], false)).toBe('real');
    expect(tree.resolveDir(['up', 'new'], true)).toBe('real/new');
    expect(fs.statSync(path.join(root, 'real', 'new')).isDirectory()).toBe(true);
    expect(tree.resolveDir(['missing'], false)).toBeUndefined();
    expect(() => tree.resolveDir(['loop1'], false)).toThrow('too many levels of symbolic links');
    expect(() => tree.resolveDir(['file', 'x'], true)).toThrow('"file" is not a directory');
  });

  it('reads files through symlinks without leaving the root', () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc', 'passwd.real'), 'inside\n');
    fs.symlinkSync('/etc/passwd.real', path.join(root, 'etc', 'passwd'));
    fs.symlinkSync('/etc/hostname', path.join(root, 'etc', 'host-link'));
    expect(readFileInRoot(root, '/etc/passwd')).toBe('inside\n');
    // /etc/hostname of the host exists, but the root has none.
    expect(readFileInRoot(root, '/etc/host-link')).toBeUndefined();
    expect(resolveInRoot(root, '/etc/../../etc/passwd')).toBe(path.join(root, 'etc', 'passwd.real'));
  });
});

describe('unpackLayer (flatten)', () => {
  it('unpacks files, dirs, symlinks and hardlinks with modes and times, and reports the diffID', async () => {
    const root = tmp();
    const blob = await layer([
      { name: 'dir/' },
      { name: 'dir/file', content: 'hello', mode: 0o640, mtime: new Date(1_600_000_000_000) },
      { name: 'dir/link', type: 'symlink', linkname: 'file' },
      { name: 'dir/hard', type: 'link', linkname: 'dir/file' },
      { name: 'ro/', mode: 0o555 },
      { name: 'ro/inside', content: 'x' },
    ]);
    const res = await apply(blob, root);
    expect(res.entries).toBe(6);
    expect(res.contentSize).toBe(6);
    expect(res.diffID).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(fs.readFileSync(path.join(root, 'dir', 'file'), 'utf8')).toBe('hello');
    expect(fs.statSync(path.join(root, 'dir', 'file')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(root, 'dir', 'file')).mtimeMs).toBe(1_600_000_000_000);
    expect(fs.readlinkSync(path.join(root, 'dir', 'link'))).toBe('file');
    expect(fs.statSync(path.join(root, 'dir', 'hard')).ino).toBe(fs.statSync(path.join(root, 'dir', 'file')).ino);
    expect(fs.statSync(path.join(root, 'ro')).mode & 0o777).toBe(0o555);
    expect(fs.readFileSync(path.join(root, 'ro', 'inside'), 'utf8')).toBe('x');
  });

  it('reads gzip and zstd layers (by their bytes, whatever the name)', async () => {
    const entries = [{ name: 'f', content: 'compressed' }];
    const gz = await layer(entries, (b) => zlib.gzipSync(b));
    const r1 = tmp();
    const plain = await apply(await layer(entries), tmp());
    expect((await apply(gz, r1)).diffID).toBe(plain.diffID);
    expect(fs.readFileSync(path.join(r1, 'f'), 'utf8')).toBe('compressed');
    const zstd = spawnSync('zstd', ['-q', '-c'], { input: await tarOf(entries) });
    if (zstd.status === 0) {
      const file = path.join(tmp(), 'z');
      fs.writeFileSync(file, zstd.stdout);
      expect(sniffCompression(zstd.stdout)).toBe('zstd');
      const r2 = tmp();
      expect((await apply(file, r2)).diffID).toBe(plain.diffID);
      expect(fs.readFileSync(path.join(r2, 'f'), 'utf8')).toBe('compressed');
    }
  });

  it('checks the diffID when given, and names the layer when it differs', async () => {
    const blob = await layer([{ name: 'f', content: 'x' }]);
    await expect(unpackLayer(blob, tmp(), { mode: 'flatten', what: 'layer sha256:abc', sameOwner: false, diffID: `sha256:${'0'.repeat(64)}` })).rejects.toThrow(
      /layer sha256:abc: the uncompressed layer's digest is sha256:[a-f0-9]{64}, but the image config says sha256:0{64}/,
    );
  });

  it('applies whiteouts and opaque directories to what lower layers wrote, never to its own entries', async () => {
    const root = tmp();
    await apply(await layer([{ name: 'a/' }, { name: 'a/old', content: '1' }, { name: 'a/sub/' }, { name: 'a/sub/deep', content: '2' }, { name: 'gone', content: '3' }, { name: 'dir/' }, { name: 'dir/x', content: '4' }]), root);
    await apply(
      await layer([
        { name: 'a/' },
        { name: 'a/new', content: 'n' },
        { name: 'a/.wh..wh..opq', content: '' },
        { name: 'a/sub/' },
        { name: 'a/sub/fresh', content: 'f' },
        { name: '.wh.gone', content: '' },
        { name: 'same', content: 's' },
        { name: '.wh.same', content: '' },
        { name: '.wh.dir', content: '' },
        { name: '.wh.never-existed', content: '' },
      ]),
      root,
    );
    const ls = (p: string) => fs.readdirSync(path.join(root, p)).sort();
    expect(ls('')).toEqual(['a', 'same']);
    expect(ls('a')).toEqual(['new', 'sub']);
    expect(ls('a/sub')).toEqual(['fresh']);
  });

  it('replaces a symlink by a file instead of writing through it', async () => {
    const root = tmp();
    const victim = path.join(tmp(), 'victim');
    fs.writeFileSync(victim, 'original');
    await apply(await layer([{ name: 'f', type: 'symlink', linkname: victim }]), root);
    await apply(await layer([{ name: 'f', content: 'new' }]), root);
    expect(fs.readFileSync(victim, 'utf8')).toBe('original');
    expect(fs.readFileSync(path.join(root, 'f'), 'utf8')).toBe('new');
  });

  it('refuses hostile entries with a message naming them', async () => {
    const outside = tmp();
    await expect(apply(await layer([{ name: '../../escape', content: 'x' }]), tmp())).rejects.toThrow('layer: entry "../../escape": the path leaves the root with ".."');
    await expect(apply(await layer([{ name: 'h', type: 'link', linkname: path.join(outside, 'nothing') }]), tmp())).rejects.toThrow('is not in this layer');
    await expect(apply(await layer([{ name: 'd/' }, { name: 'h', type: 'link', linkname: 'd' }]), tmp())).rejects.toThrow('is a directory');
    const root = tmp();
    await apply(await layer([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/planted', content: 'x' }]), root);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.readFileSync(path.join(root, outside, 'planted'), 'utf8')).toBe('x');
  });

  it('fails on a truncated or corrupt stream', async () => {
    const good = await tarOf([{ name: 'f', content: 'x'.repeat(5000) }]);
    const file = path.join(tmp(), 't');
    fs.writeFileSync(file, good.subarray(0, 1024));
    await expect(apply(file, tmp())).rejects.toThrow(/layer: entry "f": Unexpected end of data/);
    fs.writeFileSync(file, zlib.gzipSync(good).subarray(0, 40));
    await expect(apply(file, tmp())).rejects.toThrow(/layer: gzip tar: unexpected end of file/);
    fs.writeFileSync(file, Buffer.alloc(512, 7));
    await expect(apply(file, tmp())).rejects.toThrow(/Invalid tar header/);
  });
});

/** Every node under root: type, mode, size, content or link target (what a user would see). */
function treeOf(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      const mtime = Math.round(st.mtimeMs);
      if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${r}/ ${mode}`);
        walk(r);
      } else out.push(`${r} ${mode} ${mtime} nlink=${st.nlink} ${fs.readFileSync(p, 'utf8')}`);
    }
  };
  walk('');
  return out;
}

// Overlay layers' files are made on the libuv pool in batches while the unpack reads on
// (fileBatches.ts). Whatever the order of entries, the result must be the one of the serial
// unpack: flatten mode into an empty directory writes every file itself, so it is the oracle.
describe('unpackLayer (overlay): files made on the pool keep the order of the tar', () => {
  async function both(entries: E[]): Promise<{ serial: string[] | Error; pool: string[] | Error }> {
    const blob = await layer(entries);
    const run = async (mode: 'flatten' | 'overlay') => {
      const root = tmp();
      try {
        await unpackLayer(blob, root, { mode, what: 'layer', sameOwner: false });
        return treeOf(root);
      } catch (err) {
        return err as Error;
      }
    };
    return { serial: await run('flatten'), pool: await run('overlay') };
  }

  const many = (dir: string, n: number, tag = ''): E[] =>
    Array.from({ length: n }, (_, i) => ({ name: `${dir}/f${i}`, content: `${dir}${i}${tag}`, mode: 0o600 + (i % 64), mtime: new Date(1e12 + i * 1000) }));

  it('writes many files (several batches) with their content, modes and times', async () => {
    const { serial, pool } = await both([{ name: 'a/' }, ...many('a', 150), { name: 'b/c/' }, ...many('b/c', 70)]);
    expect(serial).toBeInstanceOf(Array);
    expect((serial as string[]).length).toBe(223);
    expect(pool).toEqual(serial);
  });

  it('lets a later entry at the same path win: a file twice, a symlink over a file, a file over a symlink', async () => {
    const { serial, pool } = await both([
      ...many('d', 40),
      { name: 'd/f3', content: 'second' },
      { name: 'd/f5', type: 'symlink', linkname: 'f3' },
      { name: 'd/f7', type: 'symlink', linkname: '/nowhere' },
      { name: 'd/f7', content: 'over the link' },
    ]);
    expect(pool).toEqual(serial);
    expect(pool).toContain('d/f5 -> f3');
    expect((pool as string[]).find((l) => l.startsWith('d/f3 '))).toMatch(/second$/);
  });

  it('links to a file still being made, and refuses a path below a file as a directory', async () => {
    const linked = await both([...many('d', 10), { name: 'd/h', type: 'link', linkname: 'd/f9' }]);
    expect(linked.pool).toEqual(linked.serial);
    expect((linked.pool as string[]).find((l) => l.startsWith('d/h '))).toMatch(/nlink=2 d9$/);
    const below = await both([...many('d', 10), { name: 'd/f4/x', content: 'x' }]);
    expect(below.serial).toBeInstanceOf(Error);
    expect((below.pool as Error).message).toBe((below.serial as Error).message);
    expect((below.pool as Error).message).toContain('"d/f4" is not a directory');
  });

  it('replaces a directory of files being made by a file or by a symlink that later entries follow', async () => {
    const byFile = await both([...many('d', 50), { name: 'd', content: 'now a file' }, ...many('e', 5)]);
    expect(byFile.pool).toEqual(byFile.serial);
    expect(byFile.pool).toContain(`d 644 ${1e12} nlink=1 now a file`);
    const byLink = await both([{ name: 'real/' }, ...many('d', 50), { name: 'd', type: 'symlink', linkname: '/real' }, { name: 'd/through', content: 'inside' }]);
    expect(byLink.pool).toEqual(byLink.serial);
    expect((byLink.pool as string[]).find((l) => l.startsWith('real/through'))).toMatch(/inside$/);
  });
});
