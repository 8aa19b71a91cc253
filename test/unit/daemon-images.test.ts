// The daemon's image side, without a daemon: dockerd's progress lines, Docker's short names,
// the reference filter's globs, X-Registry-Auth.
import { describe, expect, it } from 'vitest';
import { familiarString, globMatch, registryAuth } from '../../src/daemon/images';
import { LoadProgress, PullProgress, humanSize, layerId, progressText, type JsonMessage } from '../../src/daemon/imageProgress';

describe('progress text, as jsonmessage.JSONProgress.String renders it', () => {
  it.each([
    [0, 'B', '0B'],
    [512, 'B', '512B'],
    [1000, '', '1kB'],
    [65140, '', '65.14kB'],
    [1234567, '', '1.235MB'],
    [22058111, '', '22.06MB'],
    [5_840_000, '', '5.84MB'],
    [3 * 10 ** 9, '', '3GB'],
  ])('humanSize(%d)', (n, _unit, text) => expect(humanSize(n)).toBe(text));

  it('draws a 50-column bar and current/total', () => {
    expect(progressText(0, 100)).toBe(`[>${' '.repeat(50)}]       0B/100B`);
    expect(progressText(3018351, 22058111)).toBe(`[======>${' '.repeat(44)}]  3.018MB/22.06MB`);
    expect(progressText(100, 100)).toBe(`[${'='.repeat(50)}>]     100B/100B`);
    expect(progressText(0, 0)).toBe('');
    expect(progressText(2000, 0)).toBe('     2kB');
  });

  it('names a layer by the first 12 hex digits of its digest', () => {
    expect(layerId(`sha256:55258dcce027${'0'.repeat(52)}`)).toBe('55258dcce027');
  });
});

describe('PullProgress', () => {
  const digest = (c: string) => `sha256:${c.repeat(64)}`;

  function pull() {
    const sent: JsonMessage[] = [];
    let now = 0;
    const p = new PullProgress((m) => sent.push(m), { status: 'Pulling from a/b', id: '1' }, 100, () => now);
    return { p, sent, tick: (ms: number) => (now += ms) };
  }

  it('sends nothing until the first layer is announced', () => {
    const { p, sent } = pull();
    p.line('waiting for the image store');
    expect(sent).toEqual([]);
    expect(p.started).toBe(false);
  });

  it('says "Already exists" only for layers the store has, and the whole sequence for the others', async () => {
    const { p, sent, tick } = pull();
    p.item(digest('a'), 'a', 10);
    p.item(digest('b'), 'b', 1000);
    p.update(digest('a'), 10, 'exists');
    await Promise.resolve();
    p.update(digest('b'), 0, 'downloading');
    p.update(digest('b'), 100);
    tick(50);
    p.update(digest('b'), 200); // throttled
    tick(60);
    p.update(digest('b'), 300);
    p.update(digest('b'), 1000, 'downloaded');
    p.update(digest('b'), 1000, 'unpacking');
    p.update(digest('b'), 1000, 'done');
    const shown = sent.map((m) => `${m.id}: ${m.status}${m.progressDetail?.current !== undefined ? ` ${m.progressDetail.current}/${m.progressDetail.total}` : ''}`);
    expect(shown).toEqual([
      '1: Pulling from a/b',
      'aaaaaaaaaaaa: Already exists',
      'bbbbbbbbbbbb: Pulling fs layer',
      'bbbbbbbbbbbb: Downloading 0/1000',
      'bbbbbbbbbbbb: Downloading 300/1000',
      'bbbbbbbbbbbb: Verifying Checksum',
      'bbbbbbbbbbbb: Download complete',
      'bbbbbbbbbbbb: Extracting 1000/1000',
      'bbbbbbbbbbbb: Pull complete',
    ]);
    expect(sent[3].progress).toBe(progressText(0, 1000));
  });
});

describe("Docker's names", () => {
  it.each([
    ['docker.io/library/busybox:1', 'busybox:1'],
    ['docker.io/someone/app:latest', 'someone/app:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    [`127.0.0.1:5000/x@sha256:${'1'.repeat(64)}`, `127.0.0.1:5000/x@sha256:${'1'.repeat(64)}`],
  ])('familiarString(%s) is %s', (name, shown) => expect(familiarString(name)).toBe(shown));

  it('has no short form for a dangling image or a husk transport name', () => {
    expect(familiarString(`<none>@sha256:${'2'.repeat(64)}`)).toBeUndefined();
    expect(familiarString('oci:/tmp/layout:1')).toBeUndefined();
  });
});

describe("the reference filter's globs (Go's path.Match)", () => {
  it.each([
    ['busybox', 'busybox', true],
    ['busy*', 'busybox', true],
    ['*', 'a/b', false],
    ['*/*', 'a/b', true],
    ['*/husk/*:2', '127.0.0.1:5000/husk/probe:2', true],
    ['*/husk/*:2', '127.0.0.1:5000/husk/probe:1', false],
    ['b?sybox', 'busybox', true],
    ['[ab]x', 'bx', true],
    ['a.b', 'axb', false],
  ])('%s ~ %s: %s', (pattern, text, expected) => expect(globMatch(pattern, text)).toBe(expected));
});

describe('X-Registry-Auth', () => {
  const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

  it('takes the user name and password, or the identity token', () => {
    expect(registryAuth(encode({ username: 'u', password: 'p', serveraddress: 'r' }))).toEqual({ username: 'u', password: 'p', identityToken: undefined });
    expect(registryAuth(encode({ identitytoken: 't' }))).toMatchObject({ identityToken: 't' });
  });

  it('is anonymous when absent or empty, as the CLI sends it', () => {
    expect(registryAuth(undefined)).toBeNull();
    expect(registryAuth(encode({}))).toBeNull();
  });

  it('refuses what is not base64 JSON', () => {
    expect(() => registryAuth('!!!')).toThrow(/X-Registry-Auth/);
  });
});

describe('LoadProgress', () => {
  it('sends "Loading layer" with the bytes read, throttled, and the whole layer once read', () => {
    const sent: JsonMessage[] = [];
    let now = 1000;
    const p = new LoadProgress((m) => sent.push(m), 100, () => now);
    const digest = `sha256:${'c'.repeat(64)}`;
    p.item(digest, 'c', 500);
    p.update(digest, 0, 'downloading');
    p.update(digest, 100); // throttled
    now += 150;
    p.update(digest, 250);
    p.update(digest, 500, 'downloaded');
    p.update(digest, 500, 'done'); // already whole
    expect(sent.map((m) => `${m.id} ${m.status} ${m.progressDetail?.current}/${m.progressDetail?.total}`)).toEqual([
      'cccccccccccc Loading layer 0/500',
      'cccccccccccc Loading layer 250/500',
      'cccccccccccc Loading layer 500/500',
    ]);
  });
});
