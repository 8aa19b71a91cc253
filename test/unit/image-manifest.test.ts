// Manifests, indexes, configs and platform selection.
import { describe, expect, it } from 'vitest';
import {
  hostPlatform,
  layerCompression,
  MEDIA,
  normalizePlatform,
  parseImageConfig,
  parseManifestDocument,
  parsePlatform,
  selectPlatform,
  type Index,
  type Platform,
} from '../../src/image/manifest';
import { DigestCounter, digestOf, isDigest } from '../../src/image/digest';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const desc = (c: string, platform?: Platform) => ({ mediaType: MEDIA.ociManifest, digest: d(c), size: 10, ...(platform ? { platform } : {}) });

describe('platforms', () => {
  it('parses and normalizes os/arch[/variant]', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'Linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64' })).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(() => parsePlatform('amd64')).toThrow('expected os/arch[/variant]');
    expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
  });

  const index: Index = {
    schemaVersion: 2,
    manifests: [
      desc('a', { os: 'linux', architecture: 'amd64' }),
      desc('b', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
      desc('c', { os: 'linux', architecture: 'arm', variant: 'v6' }),
      desc('e', { os: 'unknown', architecture: 'unknown' }),
    ],
  };

  it('picks the manifest for a platform, ignoring attestations', () => {
    expect(selectPlatform(index, parsePlatform('linux/amd64'), 'x').digest).toBe(d('a'));
    expect(selectPlatform(index, parsePlatform('linux/arm64'), 'x').digest).toBe(d('b'));
    expect(selectPlatform(index, parsePlatform('linux/arm/v6'), 'x').digest).toBe(d('c'));
  });

  it('lists what is available when nothing matches', () => {
    expect(() => selectPlatform(index, parsePlatform('linux/s390x'), 'img')).toThrow(
      'img: no image for platform linux/s390x; available: linux/amd64, linux/arm64, linux/arm/v6',
    );
    expect(() => selectPlatform(index, parsePlatform('linux/arm/v7'), 'img')).toThrow('no image for platform linux/arm/v7');
  });
});

describe('documents', () => {
  const manifest = { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, digest: d('1'), size: 3 }, layers: [{ mediaType: MEDIA.ociLayerGzip, digest: d('2'), size: 4 }] };

  it('tells manifests from indexes by media type or shape', () => {
    expect(parseManifestDocument(Buffer.from(JSON.stringify(manifest)), undefined, 'm').kind).toBe('manifest');
    const { mediaType: _, ...bare } = manifest;
    expect(parseManifestDocument(Buffer.from(JSON.stringify(bare)), MEDIA.dockerManifest, 'm').kind).toBe('manifest');
    expect(parseManifestDocument(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), 'application/json', 'i').kind).toBe('index');
    expect(parseManifestDocument(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerList, manifests: [] })), undefined, 'i').kind).toBe('index');
  });

  it('names what is wrong', () => {
    const bad = (doc: unknown, type?: string) => () => parseManifestDocument(Buffer.from(JSON.stringify(doc)), type, 'm');
    expect(bad({ schemaVersion: 1, name: 'x' })).toThrow('Docker schema 1 manifests are not supported');
    expect(bad({ ...manifest, layers: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }] })).toThrow('m.layers[0].digest: "sha256:zz" is not a digest');
    expect(bad({ ...manifest, config: { ...manifest.config, size: -1 } })).toThrow('m.config.size: -1 is not a non-negative integer');
    expect(bad(manifest, MEDIA.ociIndex)).toThrow('does not match');
    expect(() => parseManifestDocument(Buffer.from('{'), undefined, 'm')).toThrow('m: not valid JSON');
  });

  it('checks the config fields husk uses', () => {
    const ok = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [d('3')] }, config: { Cmd: ['a'] } };
    expect(parseImageConfig(Buffer.from(JSON.stringify(ok)), 'c').rootfs.diff_ids).toEqual([d('3')]);
    expect(() => parseImageConfig(Buffer.from(JSON.stringify({ ...ok, rootfs: {} })), 'c')).toThrow('c.rootfs.diff_ids: missing');
    expect(() => parseImageConfig(Buffer.from(JSON.stringify({ ...ok, config: { Cmd: 'sh' } })), 'c')).toThrow('c.config.Cmd: not an array of strings');
  });

  it('knows layer compressions by media type', () => {
    expect(layerCompression(MEDIA.ociLayerGzip)).toBe('gzip');
    expect(layerCompression(MEDIA.dockerLayerGzip)).toBe('gzip');
    expect(layerCompression(MEDIA.ociLayerZstd)).toBe('zstd');
    expect(layerCompression(MEDIA.ociLayerTar)).toBe('none');
    expect(() => layerCompression('application/x-foo')).toThrow('not supported');
  });
});

describe('digests', () => {
  it('checks size and digest as bytes stream', () => {
    const data = Buffer.from('hello world');
    const digest = digestOf(data);
    expect(isDigest(digest)).toBe(true);
    const ok = new DigestCounter(digest, data.length, 'blob');
    ok.update(data.subarray(0, 5));
    ok.update(data.subarray(5));
    expect(() => ok.check()).not.toThrow();
    const short = new DigestCounter(digest, data.length + 1, 'blob');
    short.update(data);
    expect(() => short.check()).toThrow('blob: size 11 bytes, but its descriptor gives 12');
    const long = new DigestCounter(digest, 3, 'blob');
    expect(() => long.update(data)).toThrow('more than the 3 bytes');
    const wrong = new DigestCounter(digestOf('other'), data.length, 'blob');
    wrong.update(data);
    expect(() => wrong.check()).toThrow(`blob: digest mismatch: got ${digest}`);
  });
});
